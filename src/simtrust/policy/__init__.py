"""simtrust.policy: destination/time/volume/rate/roaming policies, decisions, flow ingestion.

The public surface: the policy model, the compiled evaluator, the IPFIX /
NetFlow v9 decoder and collector, the address map, the policy engine with its
actions, the versioned store and the nftables renderer.
"""

from simtrust.policy._addressmap import AddressMap, AddressPoolExhausted
from simtrust.policy._collector import FlowCollector
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
from simtrust.policy.flow import PROTO_ICMP, PROTO_TCP, PROTO_UDP, FlowRecord

__all__ = [
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "Action",
    "AddressMap",
    "AddressPoolExhausted",
    "Decision",
    "Destination",
    "DestinationRule",
    "DeviceContext",
    "FlowCollector",
    "FlowDecoder",
    "FlowRecord",
    "NameMap",
    "Policy",
    "PolicySet",
    "RateCapRule",
    "RoamingRule",
    "Rule",
    "Scope",
    "ScopeKind",
    "SequenceState",
    "Template",
    "TemplateField",
    "TimeWindow",
    "TimeWindowRule",
    "UsageMeter",
    "Violation",
    "VolumeCapRule",
    "policy_from_dict",
    "rule_from_dict",
]
