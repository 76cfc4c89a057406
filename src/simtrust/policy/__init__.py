"""simtrust.policy: destination/time/volume/rate/roaming policies, decisions, flow ingestion.

The public surface: the policy model, the compiled evaluator, the IPFIX /
NetFlow v9 decoder and collector, the address map, the policy engine with its
actions, the versioned store and the nftables renderer.
"""

from simtrust.policy._actions import (
    ActionDispatcher,
    AlertSink,
    AuditSink,
    MemoryAlertSink,
    MqttAlertSink,
    PolicyAlert,
    RecordingRemoveAction,
    RemoveAction,
    TenantWebhookSink,
    WebhookAlertSink,
)
from simtrust.policy._addressmap import AddressMap, AddressPoolExhausted
from simtrust.policy._collector import FlowCollector
from simtrust.policy._engine import (
    AddressResolver,
    DeviceDirectory,
    FlowVerdict,
    PolicyEngine,
    StaticDirectory,
)
from simtrust.policy._evaluate import Decision, NameMap, PolicySet, UsageMeter, Violation
from simtrust.policy._ipfix import FlowDecoder, SequenceState, Template, TemplateField
from simtrust.policy._model import (
    Action,
    Destination,
    DestinationRule,
    DeviceContext,
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
    InventoryDirectory,
    PolicyService,
    SuspendSim,
    build_policy_service,
    policy_service,
)
from simtrust.policy._store import PolicyStore
from simtrust.policy.flow import PROTO_ICMP, PROTO_TCP, PROTO_UDP, FlowRecord

__all__ = [
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "Action",
    "ActionDispatcher",
    "AddressMap",
    "AddressPoolExhausted",
    "AddressResolver",
    "AlertSink",
    "AuditSink",
    "Decision",
    "Destination",
    "DestinationRule",
    "DeviceContext",
    "DeviceDirectory",
    "FlowCollector",
    "FlowDecoder",
    "FlowRecord",
    "FlowVerdict",
    "GatewayDevice",
    "InventoryDirectory",
    "MemoryAlertSink",
    "MqttAlertSink",
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
    "SequenceState",
    "StaticDirectory",
    "SuspendSim",
    "Template",
    "TemplateField",
    "TenantWebhookSink",
    "TimeWindow",
    "TimeWindowRule",
    "UsageMeter",
    "Violation",
    "VolumeCapRule",
    "WebhookAlertSink",
    "apply_ruleset",
    "build_policy_service",
    "policy_from_dict",
    "policy_service",
    "read_counters",
    "render_ruleset",
    "rule_from_dict",
    "table_name",
]
