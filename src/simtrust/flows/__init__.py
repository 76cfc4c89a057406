"""simtrust.flows: the flow pipeline that drives policy evaluation and detection.

Security-services layer, above :mod:`simtrust.policy` and
:mod:`simtrust.detect` (DESIGN.md "Layers"): record decoding (IPFIX RFC 7011,
NetFlow v9 RFC 3954), the UDP collector, partitioned ingestion over NATS
JetStream with exactly-once application per partition, pcap metering into flow
records and offline capture analysis. Policy and detection know nothing of
where flows come from; they are reached through their public surfaces only.
"""

from simtrust.flows._collector import FlowCollector
from simtrust.flows._columns import FlowColumns, ReceivedFlows
from simtrust.flows._ipfix import FlowDecoder
from simtrust.flows._meter import (
    ACTIVE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    Capture,
    DnsAnswer,
    FlowMeter,
    Packet,
    PcapError,
    decode_packet,
    iter_pcap,
    meter_packets,
    read_pcap,
)
from simtrust.flows._nats import (
    DEFAULT_FLOW_STREAM,
    DEFAULT_FLOW_SUBJECT,
    ConsumerStats,
    FlowConsumer,
    FlowPublisher,
    FlowStreamSettings,
    NatsUnavailable,
    ensure_flow_stream,
    flow_partition,
    parse_partitions,
    setup_flow_stream,
)
from simtrust.flows._nats_apply import ApplyResult, BatchApplier, Detection
from simtrust.flows._nats_codec import (
    BATCH_MAGIC,
    BATCH_VERSION,
    MAX_BATCH_RECORDS,
    BatchDecodeError,
    FlowBatch,
    MappedFlow,
    decode_batch,
    encode_batch,
)
from simtrust.flows._offline import (
    analyze,
    learn_baselines,
    load_subscribers,
    policy_alerts,
    replay,
)
from simtrust.flows._service import FlowResult, FlowService
from simtrust.flows._templates import SequenceState, Template, TemplateField

__all__ = [
    "ACTIVE_TIMEOUT_S",
    "BATCH_MAGIC",
    "BATCH_VERSION",
    "DEFAULT_FLOW_STREAM",
    "DEFAULT_FLOW_SUBJECT",
    "IDLE_TIMEOUT_S",
    "MAX_BATCH_RECORDS",
    "ApplyResult",
    "BatchApplier",
    "BatchDecodeError",
    "Capture",
    "ConsumerStats",
    "Detection",
    "DnsAnswer",
    "FlowBatch",
    "FlowCollector",
    "FlowColumns",
    "FlowConsumer",
    "FlowDecoder",
    "FlowMeter",
    "FlowPublisher",
    "FlowResult",
    "FlowService",
    "FlowStreamSettings",
    "MappedFlow",
    "NatsUnavailable",
    "Packet",
    "PcapError",
    "ReceivedFlows",
    "SequenceState",
    "Template",
    "TemplateField",
    "analyze",
    "decode_batch",
    "decode_packet",
    "encode_batch",
    "ensure_flow_stream",
    "flow_partition",
    "iter_pcap",
    "learn_baselines",
    "load_subscribers",
    "meter_packets",
    "parse_partitions",
    "policy_alerts",
    "read_pcap",
    "replay",
    "setup_flow_stream",
]
