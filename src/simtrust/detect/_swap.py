"""SIM in a new device: the IMEIs each IMSI attached from (issue 6 §5).

A known IMSI attaching from an IMEI it was never seen with raises
``sim-swap``; another IMEI within 24 h suggests a clone, a different TAC a
different device model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from simtrust.detect._baseline import Baseline
from simtrust.detect._device import DeviceState
from simtrust.detect._explain import Explainer
from simtrust.detect._model import Alert, AttachEvent

__all__ = ["SwapWatch"]


class SwapWatch:
    """IMEIs seen per IMSI, seeded from the device baselines."""

    __slots__ = ("_explain", "_imeis")

    def __init__(self, explain: Explainer) -> None:
        self._explain = explain
        self._imeis: dict[str, dict[str, float]] = {}

    def observe(self, ev: AttachEvent, dev: DeviceState,
                device_base: Mapping[str, Baseline]) -> list[Alert]:
        """Account an attach; a known IMSI in a device with another IMEI raises ``sim-swap``."""
        seen = self._imeis.get(ev.imsi)
        if seen is None:
            seen = self._imeis[ev.imsi] = {}
            base = device_base.get(ev.imsi)
            if base is not None:
                seen.update(dict.fromkeys(base.imeis, -math.inf))
        if dev.learn is not None:
            dev.learn.imeis.add(ev.imei)
        out: list[Alert] = []
        if seen and ev.imei not in seen and dev.learn is None:
            recent = {i: t for i, t in seen.items() if ev.at - t <= 86_400.0}
            pattern = "clone-suspected" if len(recent) >= 1 else "swap"
            prev = sorted(seen)
            tac_changed = all(i[:8] != ev.imei[:8] for i in prev)
            evidence = {
                "feature": "imei_for_imsi",
                "baseline": f"device:{ev.imsi}",
                "observed": ev.imei,
                "expected": prev,
                "tac_changed": tac_changed,
                "pattern": pattern,
                "previous_seen_within_24h": sorted(recent),
            }
            out += self._explain.alert(
                dev,
                "sim-swap",
                ev.imei,
                ev.at,
                ev.at,
                f"SIM {ev.imsi} attached from a new device (IMEI {ev.imei}"
                f"{', different model' if tac_changed else ''})",
                evidence,
            )
        seen[ev.imei] = ev.at
        return out
