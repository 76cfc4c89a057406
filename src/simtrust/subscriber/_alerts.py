"""Attach alerts (SIM swap) as :mod:`simtrust.alerts` delivers them.

Alerts leave the decision path through an :class:`~simtrust.alerts.AlertDispatcher`
(a queue and one worker thread): the tenant's webhook receives the JSON document
and the MQTT broker the settings name gets it on ``simtrust/alerts/<tenant>/<imsi>``
(QoS 1). A slow or absent receiver never slows attach decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simtrust.alerts import alert_topic

__all__ = ["SwapAlert"]


@dataclass(frozen=True, slots=True)
class SwapAlert:
    """A SIM seen in a new device (``sim-in-new-device``) or a bound device with
    another SIM (``device-with-new-sim``); ``action`` is what the decision did."""

    kind: str
    tenant_id: str
    imsi: str
    iccid: str
    imei: str
    bound_to: list[str]
    serving_plmn: str
    action: str
    reason: str
    at: str
    webhook_url: str | None = field(default=None, compare=False)

    @property
    def source(self) -> str:
        return "attach"

    @property
    def summary(self) -> str:
        return self.reason

    @property
    def topic(self) -> str:
        return alert_topic(self)

    def document(self) -> dict[str, Any]:
        """The JSON form delivered by every sink."""
        return self.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "simtrust.attach.sim-swap",
            "kind": self.kind,
            "tenant_id": self.tenant_id,
            "imsi": self.imsi,
            "iccid": self.iccid,
            "imei": self.imei,
            "bound_to": self.bound_to,
            "serving_plmn": self.serving_plmn,
            "action": self.action,
            "reason": self.reason,
            "at": self.at,
        }
