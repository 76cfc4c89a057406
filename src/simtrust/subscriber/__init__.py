"""Subscriber security core: identifiers, SIM/device inventory, AuC service, attach decisions.

Typed identifiers (IMSI, ICCID, IMEI, IMEISV, TAC, PLMN) per TS 23.003 and
ITU-T E.118; the inventory with sealed K/OPc and the SIM life cycle; bulk import
of SIM-vendor files; the AuC with persisted SQN state (the pure algorithms live
in :mod:`simtrust.subscriber.auc`); attach decisions with IMEI–ICCID binding,
blocklist and roaming rules; the address map flows are attributed with.
"""

from simtrust.domain import (
    THREE_DIGIT_MNC_MCCS,
    Iccid,
    Imei,
    ImeiSv,
    Imsi,
    Plmn,
    Tac,
    luhn_check_digit,
    parse_equipment,
)
from simtrust.subscriber._addresses import AddressBook, Lease
from simtrust.subscriber._alerts import SwapAlert
from simtrust.subscriber._allocations import (
    AddressAllocation,
    AllocationIndex,
    Allocations,
    SimAllocation,
)
from simtrust.subscriber._attach import AttachDecision, AttachEngine, DeferredDecisions, Reason
from simtrust.subscriber._auc_service import AuthService, aka_functions
from simtrust.subscriber._blocklist import Blocklist, BlocklistEntry, BlockMatch, missing_block
from simtrust.subscriber._decision_log import DecisionRow, decision_history
from simtrust.subscriber._directory import SubscriberDirectory
from simtrust.subscriber._errors import ImportRejected, NotImplementedHere, RowError
from simtrust.subscriber._hn_keys import HomeNetworkKey, HomeNetworkKeys
from simtrust.subscriber._hss import (
    ApnProfile,
    AuthInfo,
    AuthQuery,
    EirService,
    EquipmentCheck,
    EquipmentStatus,
    HssEvent,
    HssOutcome,
    HssService,
    LocationUpdate,
    ServingNode,
    SubscriptionProfile,
    equipment_from_terminal,
)
from simtrust.subscriber._import import HEADER_ALIASES, ImportSummary, SimImporter, count_rows
from simtrust.subscriber._inventory import (
    BULK_TARGETS,
    BulkOutcome,
    Inventory,
    SimSpec,
    missing_device,
    missing_sim,
)
from simtrust.subscriber._model import (
    TRANSITIONS,
    Algorithm,
    Apn,
    AttachPolicy,
    AuthMethod,
    BindingMode,
    Device,
    DeviceGroup,
    OpKind,
    Roaming,
    Sim,
    SimSecrets,
    SimState,
    SwapAction,
    TuakParams,
    UnknownDevice,
    check_transition,
)
from simtrust.subscriber._services import SubscriberServices, SuspendSim, build_services
from simtrust.subscriber._udm import UdmService

__all__ = [
    "BULK_TARGETS",
    "HEADER_ALIASES",
    "THREE_DIGIT_MNC_MCCS",
    "TRANSITIONS",
    "AddressAllocation",
    "AddressBook",
    "Algorithm",
    "AllocationIndex",
    "Allocations",
    "Apn",
    "ApnProfile",
    "AttachDecision",
    "AttachEngine",
    "AttachPolicy",
    "AuthInfo",
    "AuthMethod",
    "AuthQuery",
    "AuthService",
    "BindingMode",
    "BlockMatch",
    "Blocklist",
    "BlocklistEntry",
    "BulkOutcome",
    "DecisionRow",
    "DeferredDecisions",
    "Device",
    "DeviceGroup",
    "EirService",
    "EquipmentCheck",
    "EquipmentStatus",
    "HomeNetworkKey",
    "HomeNetworkKeys",
    "HssEvent",
    "HssOutcome",
    "HssService",
    "Iccid",
    "Imei",
    "ImeiSv",
    "ImportRejected",
    "ImportSummary",
    "Imsi",
    "Inventory",
    "Lease",
    "LocationUpdate",
    "NotImplementedHere",
    "OpKind",
    "Plmn",
    "Reason",
    "Roaming",
    "RowError",
    "ServingNode",
    "Sim",
    "SimAllocation",
    "SimImporter",
    "SimSecrets",
    "SimSpec",
    "SimState",
    "SubscriberDirectory",
    "SubscriberServices",
    "SubscriptionProfile",
    "SuspendSim",
    "SwapAction",
    "SwapAlert",
    "Tac",
    "TuakParams",
    "UdmService",
    "UnknownDevice",
    "aka_functions",
    "build_services",
    "check_transition",
    "count_rows",
    "decision_history",
    "equipment_from_terminal",
    "luhn_check_digit",
    "missing_block",
    "missing_device",
    "missing_sim",
    "parse_equipment",
]
