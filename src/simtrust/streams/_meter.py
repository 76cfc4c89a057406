"""Trusted smart meters: signed cumulative readings, and clones caught by what they send.

A meter's readings travel on its channel as data frames whose payload is the
RFC 8785 canonical JSON ``{"meter", "register_wh", "at"}``: ``meter`` the
meter's DID, ``register_wh`` the cumulative energy register in watt-hours (an
integer, so gaps and rollbacks show), ``at`` the end of the metering interval
in seconds since the Unix epoch. The frame's signature is the meter key's (a
key in the meter's SIM, named by its device certificate).

:class:`MeterWatch` follows every meter and raises an alert that explains
itself when a meter is cloned: the same meter identity seen from two SIMs or
two devices, or its register going backwards (a replayed or copied meter). A
meter with an open alert fails the ``clean`` annotation, so its readings'
confidence drops.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simtrust.errors import DecodeError, InvalidInput
from simtrust.identity import canonicalize

__all__ = ["MeterAlert", "MeterReading", "MeterWatch", "decode_reading", "encode_reading"]


@dataclass(frozen=True, slots=True)
class MeterReading:
    meter: str
    register_wh: int
    at: int


def encode_reading(reading: MeterReading) -> bytes:
    if reading.register_wh < 0 or reading.at < 0:
        raise InvalidInput("register and time are non-negative")
    return canonicalize({"meter": reading.meter, "register_wh": reading.register_wh,
                         "at": reading.at})


def decode_reading(payload: bytes) -> MeterReading:
    """Parse a reading payload; :class:`DecodeError` if it is not one."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError("reading is not JSON") from exc
    if not isinstance(data, dict) or set(data) != {"meter", "register_wh", "at"}:
        raise DecodeError("a reading has exactly meter, register_wh and at")
    meter, register, at = data["meter"], data["register_wh"], data["at"]
    if not isinstance(meter, str) or not meter.startswith("did:"):
        raise DecodeError("meter must be a DID")
    for name, value in (("register_wh", register), ("at", at)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise DecodeError(f"{name} must be a non-negative 64-bit integer")
    return MeterReading(meter, register, at)


@dataclass(frozen=True, slots=True)
class MeterAlert:
    """A cloned or rolled-back meter, with what was seen."""

    meter: str
    kind: str  # "cloned-meter" or "register-rollback"
    explanation: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _State:
    register_wh: int
    at: int
    sims: set[str]
    devices: set[str]


class MeterWatch:
    """Per meter: last register, the SIMs and devices it came from; alerts on clones."""

    def __init__(self, on_alert: Callable[[MeterAlert], None] | None = None) -> None:
        self._meters: dict[str, _State] = {}
        self._open: dict[str, list[MeterAlert]] = {}
        self._on_alert = on_alert

    def load(self, meter: str, register_wh: int, at: int, sims: Iterable[str],
             devices: Iterable[str], alerts: Iterable[MeterAlert] = ()) -> None:
        """Resume a meter from stored state (its last register, origins, open alerts)."""
        self._meters[meter] = _State(register_wh, at, set(sims), set(devices))
        opened = list(alerts)
        if opened:
            self._open[meter] = opened
        else:
            self._open.pop(meter, None)

    def snapshot(self, meter: str) -> tuple[int, int, list[str], list[str]] | None:
        """(register_wh, at, SIMs, devices) of a meter seen before, for storing."""
        state = self._meters.get(meter)
        if state is None:
            return None
        return state.register_wh, state.at, sorted(state.sims), sorted(state.devices)

    def alerts(self, meter: str) -> list[MeterAlert]:
        return list(self._open.get(meter, []))

    def is_clean(self, meter: str) -> bool:
        return not self._open.get(meter)

    def _raise(self, alert: MeterAlert) -> None:
        self._open.setdefault(alert.meter, []).append(alert)
        if self._on_alert is not None:
            self._on_alert(alert)

    def observe(self, reading: MeterReading, sim: str, device: str) -> list[MeterAlert]:
        """Record one authentic reading that arrived from ``sim`` in ``device``."""
        state = self._meters.get(reading.meter)
        raised: list[MeterAlert] = []
        if state is None:
            self._meters[reading.meter] = _State(reading.register_wh, reading.at, {sim}, {device})
            return raised
        if sim not in state.sims or device not in state.devices:
            raised.append(MeterAlert(
                reading.meter, "cloned-meter",
                f"meter {reading.meter} reported from SIM {sim} in device {device}, but "
                f"earlier from SIM(s) {sorted(state.sims)} in device(s) {sorted(state.devices)}",
                {"sims": sorted(state.sims | {sim}), "devices": sorted(state.devices | {device})},
            ))
            state.sims.add(sim)
            state.devices.add(device)
        if reading.register_wh < state.register_wh:
            raised.append(MeterAlert(
                reading.meter, "register-rollback",
                f"meter {reading.meter}'s register went back from {state.register_wh} Wh "
                f"to {reading.register_wh} Wh",
                {"previous_wh": state.register_wh, "reported_wh": reading.register_wh,
                 "at": reading.at},
            ))
        elif reading.at >= state.at:
            state.register_wh, state.at = reading.register_wh, reading.at
        for alert in raised:
            self._raise(alert)
        return raised
