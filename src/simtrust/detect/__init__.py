"""simtrust.detect: device-behaviour detection over flow records (DESIGN.md "Detect").

Per-device and per-cohort baselines, the streaming :class:`Detector` (scan,
DDoS, beacon, volume, time of day, new destination, SIM in a new device) over
:class:`~simtrust.domain.FlowRecord`, and the :class:`DetectionService` that
delivers its alerts to :mod:`simtrust.alerts` sinks. The fraud detectors
(:class:`FraudDetector`: impossible travel, cloned SIM, equipment, usage,
phone-like use of data-only SIMs) read one
per-SIM :class:`SimEvent` stream, and its alerts explain themselves the same way;
:class:`StormGuard` rate-limits authentication and attach per tenant, TAC
and cell against signalling storms. Flows come from
:mod:`simtrust.flows` (collectors, pcap metering, offline analysis); the
attack generator and evaluation harness live in :mod:`simtrust.testing.detect`
(test gear, never imported by product code).
"""

from simtrust.detect._baseline import FEATURES, Baseline, prefix_of
from simtrust.detect._cases import VERDICTS, FraudCases
from simtrust.detect._engine import Detector, Thresholds
from simtrust.detect._eventlog import EventFollower, QueuedSimEventLog, SimEventLog
from simtrust.detect._events import (
    LOCATION,
    MAX_DESTINATIONS,
    SESSION_KINDS,
    VOICE_KINDS,
    SessionRow,
    session_event,
)
from simtrust.detect._fraud import (
    EVENT_KINDS,
    FRAUD_ALERT_KINDS,
    FraudDetector,
    FraudThresholds,
    Place,
    SimEvent,
    country_places,
    great_circle_km,
)
from simtrust.detect._model import ALERT_KINDS, Alert, AttachEvent, DeviceRef, iso_utc
from simtrust.detect._records import (
    RECORD_FIELDS,
    UsageRecord,
    parse_usage_records,
    usage_events,
    usage_record,
)
from simtrust.detect._service import DetectionService
from simtrust.detect._storm import (
    Admission,
    BackOff,
    BucketRate,
    StormGuard,
    StormLimits,
    backoff_answer,
    storm_guard_from,
)
from simtrust.detect._tac import TacAllocations, TacDatabaseFile, parse_tac_csv, rbi_table
from simtrust.detect._voice import VoiceTally, voice_flow_kind

__all__ = [
    "ALERT_KINDS",
    "EVENT_KINDS",
    "FEATURES",
    "FRAUD_ALERT_KINDS",
    "LOCATION",
    "MAX_DESTINATIONS",
    "RECORD_FIELDS",
    "SESSION_KINDS",
    "VERDICTS",
    "VOICE_KINDS",
    "Admission",
    "Alert",
    "AttachEvent",
    "BackOff",
    "Baseline",
    "BucketRate",
    "DetectionService",
    "Detector",
    "DeviceRef",
    "EventFollower",
    "FraudCases",
    "FraudDetector",
    "FraudThresholds",
    "Place",
    "QueuedSimEventLog",
    "SessionRow",
    "SimEvent",
    "SimEventLog",
    "StormGuard",
    "StormLimits",
    "TacAllocations",
    "TacDatabaseFile",
    "Thresholds",
    "UsageRecord",
    "VoiceTally",
    "backoff_answer",
    "country_places",
    "great_circle_km",
    "iso_utc",
    "parse_tac_csv",
    "parse_usage_records",
    "prefix_of",
    "rbi_table",
    "session_event",
    "storm_guard_from",
    "usage_events",
    "usage_record",
    "voice_flow_kind",
]
