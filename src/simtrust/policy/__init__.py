"""simtrust.policy: destination/time/volume/rate/roaming policies and decisions.

The public surface: the policy model, the compiled evaluator, the address map,
the policy engine with its actions, the versioned store and the nftables
renderer. Flows reach it from :mod:`simtrust.flows` (decoding, collection,
partitioned ingestion); it stands on the base layer only.
"""

from simtrust.policy._actions import (
    ActionDispatcher,
    PolicyAlert,
    RecordingRemoveAction,
    RemoveAction,
)
from simtrust.policy._addressmap import AddressMap, AddressPoolExhausted
from simtrust.policy._engine import (
    AddressResolver,
    DeviceDirectory,
    FlowVerdict,
    PolicyEngine,
    StaticDirectory,
)
from simtrust.policy._evaluate import Decision, NameMap, PolicySet, UsageMeter, Violation
from simtrust.policy._model import (
    Action,
    Destination,
    DestinationRule,
    Policy,
    RateCapRule,
    RoamingRule,
    Rule,
    Scope,
    ScopeKind,
    TimeWindow,
    TimeWindowRule,
    VolumeCapRule,
    policy_from_dict,
    rule_from_dict,
)
from simtrust.policy._nft import (
    GatewayDevice,
    NftError,
    apply_ruleset,
    read_counters,
    render_ruleset,
    table_name,
)
from simtrust.policy._service import (
    LayeredAddresses,
    LayeredDirectory,
    PolicyService,
    build_policy_service,
)
from simtrust.policy._store import PolicyStore
from simtrust.policy._tunnel_gateway import TunnelApplyError, TunnelChange, TunnelGateway
from simtrust.policy._tunnel_store import TunnelStore, tunnel_psk_aad
from simtrust.policy._tunnel_sync import TunnelSync
from simtrust.policy._tunnel_watch import TunnelWatch
from simtrust.policy._tunnels import (
    TunnelAlert,
    TunnelSpec,
    install_tunnel_credentials,
    parse_list_sas,
    render_swanctl,
    render_tunnel_guard,
    tunnel_alerts,
)
from simtrust.policy._vici import TunnelEvent, TunnelEvents

__all__ = [
    "Action",
    "ActionDispatcher",
    "AddressMap",
    "AddressPoolExhausted",
    "AddressResolver",
    "Decision",
    "Destination",
    "DestinationRule",
    "DeviceDirectory",
    "FlowVerdict",
    "GatewayDevice",
    "LayeredAddresses",
    "LayeredDirectory",
    "NameMap",
    "NftError",
    "Policy",
    "PolicyAlert",
    "PolicyEngine",
    "PolicyService",
    "PolicySet",
    "PolicyStore",
    "RateCapRule",
    "RecordingRemoveAction",
    "RemoveAction",
    "RoamingRule",
    "Rule",
    "Scope",
    "ScopeKind",
    "StaticDirectory",
    "TimeWindow",
    "TimeWindowRule",
    "TunnelAlert",
    "TunnelApplyError",
    "TunnelChange",
    "TunnelEvent",
    "TunnelEvents",
    "TunnelGateway",
    "TunnelSpec",
    "TunnelStore",
    "TunnelSync",
    "TunnelWatch",
    "UsageMeter",
    "Violation",
    "VolumeCapRule",
    "apply_ruleset",
    "build_policy_service",
    "install_tunnel_credentials",
    "parse_list_sas",
    "policy_from_dict",
    "read_counters",
    "render_ruleset",
    "render_swanctl",
    "render_tunnel_guard",
    "rule_from_dict",
    "table_name",
    "tunnel_alerts",
    "tunnel_psk_aad",
]
