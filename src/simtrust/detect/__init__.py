"""simtrust.detect: device-behaviour detection over flow records (DESIGN.md "Detect").

Pcap metering into :class:`~simtrust.domain.FlowRecord`, per-device and
per-cohort baselines, the streaming :class:`Detector` (scan, DDoS, beacon,
volume, time of day, new destination, SIM in a new device), alert sinks, the
attack generator (:mod:`simtrust.detect.attacks`) and the evaluation harness
(:mod:`simtrust.detect.evaluation`).
"""

from simtrust.detect._baseline import FEATURES, Baseline
from simtrust.detect._engine import Detector, Thresholds
from simtrust.detect._model import ALERT_KINDS, Alert, AttachEvent, DeviceRef, iso_utc
from simtrust.detect._service import DetectionService

__all__ = [
    "ALERT_KINDS",
    "FEATURES",
    "Alert",
    "AttachEvent",
    "Baseline",
    "DetectionService",
    "Detector",
    "DeviceRef",
    "Thresholds",
    "iso_utc",
]
