"""The answer of an attach decision: its stable reason codes and the decision itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simtrust.subscriber._model import SimState

__all__ = ["STATE_REASON", "AttachDecision", "Reason"]


class Reason(StrEnum):
    """Stable reason codes of attach decisions."""

    OK = "ok"
    OK_TEST = "ok-test-state"
    OK_BOUND = "ok-first-use-bound"
    OK_SWAP_ALERTED = "ok-sim-swap-alerted"
    WOULD_BIND = "ok-would-bind"
    UNKNOWN_SIM = "unknown-sim"
    SIM_INVENTORY = "sim-inventory"
    SIM_SUSPENDED = "sim-suspended"
    SIM_TERMINATED = "sim-terminated"
    IMEI_BLOCKED = "imei-blocklisted"
    TAC_BLOCKED = "tac-blocklisted"
    ROAMING = "roaming-not-permitted"
    DEVICE_BOUND = "device-bound-to-other-sim"
    SIM_SWAP = "sim-swap"
    SIM_SWAP_SUSPENDED = "sim-swap-suspended"
    UNKNOWN_DEVICE = "unknown-device"
    FOREIGN_DEVICE = "device-of-other-tenant"
    ADDRESS = "address-unavailable"


STATE_REASON = {
    SimState.INVENTORY: Reason.SIM_INVENTORY,
    SimState.SUSPENDED: Reason.SIM_SUSPENDED,
    SimState.TERMINATED: Reason.SIM_TERMINATED,
}


@dataclass(frozen=True, slots=True)
class AttachDecision:
    """The answer: ``allowed`` with a stable ``reason`` code and a sentence."""

    allowed: bool
    reason: str
    detail: str
    imsi: str
    imei: str
    serving_plmn: str
    iccid: str | None = None
    tenant_id: str | None = None
    address: str | None = None
    swap: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "decision": "allow" if self.allowed else "deny",
            "reason": self.reason,
            "detail": self.detail,
            "imsi": self.imsi,
            "imei": self.imei,
            "serving_plmn": self.serving_plmn,
            "iccid": self.iccid,
            "tenant_id": self.tenant_id,
            "address": self.address,
            "swap": self.swap,
        }
