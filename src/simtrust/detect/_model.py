"""The values detection speaks in: alerts, attach events and the device a flow belongs to.

An :class:`Alert` explains itself (DESIGN.md "Detect"): its ``evidence`` names
the feature, the baseline it was held against, the observed and expected values
and how far off the observation is. Times are UNIX epoch seconds; the JSON form
writes them as ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simtrust.domain import ImsiDigits

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AttachEvent",
    "DeviceRef",
    "iso_utc",
]

ALERT_KINDS = ("beacon", "ddos", "destination", "scan", "sim-swap", "time", "volume")


def iso_utc(ts: float) -> str:
    """ISO 8601 UTC with millisecond precision, e.g. ``2026-11-21T20:15:03.120Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """Which SIM an address belongs to, its device group (cohort) and its tenant."""

    imsi: ImsiDigits
    device_group: str = ""
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class AttachEvent:
    """A SIM attached from a device: the subscriber service emits one per attach."""

    at: float
    imsi: ImsiDigits
    imei: str
    tenant: str = ""
    device_group: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One detection. ``at`` is the time of the first evidence, ``raised_at`` when it fired."""

    kind: str
    imsi: ImsiDigits
    at: float
    raised_at: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    device_group: str = ""
    tenant: str = ""
    severity: str = "high"

    @property
    def source(self) -> str:
        return "detect"

    @property
    def tenant_id(self) -> str:
        return self.tenant

    @property
    def webhook_url(self) -> str | None:
        return None

    def document(self) -> dict[str, Any]:
        """The JSON form :mod:`simtrust.alerts` sinks deliver (:meth:`to_json`)."""
        return self.to_json()

    def to_json(self) -> dict[str, Any]:
        """The wire form used by the CLI, the audit log and MQTT."""
        return {
            "imsi": self.imsi,
            "kind": self.kind,
            "at": iso_utc(self.at),
            "raised_at": iso_utc(self.raised_at),
            "severity": self.severity,
            "device_group": self.device_group,
            "tenant": self.tenant,
            "summary": self.summary,
            "evidence": self.evidence,
        }
