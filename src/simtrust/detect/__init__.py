"""simtrust.detect: device-behaviour detection over flow records (DESIGN.md "Detect").

Pcap metering into :class:`~simtrust.policy.flow.FlowRecord`, per-device and
per-cohort baselines, the streaming :class:`Detector` (scan, DDoS, beacon,
volume, time of day, new destination, SIM in a new device), alert sinks, the
attack generator (:mod:`simtrust.detect.attacks`) and the evaluation harness
(:mod:`simtrust.detect.evaluation`).
"""

from simtrust.detect._baseline import FEATURES, Baseline
from simtrust.detect._engine import Detector, Thresholds
from simtrust.detect._meter import (
    ACTIVE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    Capture,
    DnsAnswer,
    FlowMeter,
    PcapError,
    read_pcap,
)
from simtrust.detect._model import ALERT_KINDS, Alert, AttachEvent, DeviceRef, iso_utc
from simtrust.detect._offline import (
    analyze,
    learn_baselines,
    load_subscribers,
    policy_alerts,
    replay,
)
from simtrust.detect._service import DetectionService, detection_service
from simtrust.detect._sinks import (
    AlertSink,
    AuditSink,
    FanoutSink,
    MemorySink,
    MqttSink,
    alert_topic,
)

__all__ = [
    "ACTIVE_TIMEOUT_S",
    "ALERT_KINDS",
    "FEATURES",
    "IDLE_TIMEOUT_S",
    "Alert",
    "AlertSink",
    "AttachEvent",
    "AuditSink",
    "Baseline",
    "Capture",
    "DetectionService",
    "Detector",
    "DeviceRef",
    "DnsAnswer",
    "FanoutSink",
    "FlowMeter",
    "MemorySink",
    "MqttSink",
    "PcapError",
    "Thresholds",
    "alert_topic",
    "analyze",
    "detection_service",
    "iso_utc",
    "learn_baselines",
    "load_subscribers",
    "policy_alerts",
    "read_pcap",
    "replay",
]
