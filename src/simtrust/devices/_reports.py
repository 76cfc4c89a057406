"""What devices report over LwM2M feeds the fraud checks (issue 21: "what a device reports
(IMEI, firmware version, radio, location) feeds the inventory, binding and fraud checks").

- A Register or Update whose endpoint name carries an IMEI (Core §7.3.1
  ``urn:imei-imsi:``/``urn:imei:``) is a ``location`` :class:`~simtrust.detect.SimEvent`
  with that IMEI: the equipment detectors see the SIM in that device.
- A Location object value (/6/0/0 latitude, /6/0/1 longitude, Core Appendix E.7) read,
  notified or sent is a ``location`` event with that position (impossible travel).

- A registered IMEI that is not among the IMEIs the inventory binds the SIM to (when it
  binds it to any) raises the device alert ``imei-not-bound`` (:func:`check_bindings`).

The observer runs on the servers' loop; it is the runtime's ``detect.observe_sim``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

from simtrust.detect import SimEvent
from simtrust.devices._objects import Path, Value
from simtrust.devices._server import DeviceManager, Registration
from simtrust.domain import imsi_digits
from simtrust.errors import SimtrustError

__all__ = ["check_bindings", "feed_fraud_checks"]


def _coordinate(value: Value | None, bound: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and -bound <= number <= bound else None


def feed_fraud_checks(manager: DeviceManager, observe: Callable[[SimEvent], object],
                      clock: Callable[[], datetime]) -> None:
    """Subscribe ``observe`` to the manager's registrations and reports."""

    def emit(reg: Registration, lat: float | None = None, lon: float | None = None) -> None:
        try:
            event = SimEvent(clock().timestamp(), imsi_digits(reg.imsi), "location",
                             imei=reg.imei or "", tenant=reg.tenant_id, lat=lat, lon=lon)
        except SimtrustError:
            return
        observe(event)

    def registered(kind: str, reg: Registration) -> None:
        if kind in ("registered", "updated") and reg.imei:
            emit(reg)

    def reported(reg: Registration, values: Mapping[Path, Value]) -> None:
        lat = _coordinate(values.get((6, 0, 0)), 90.0)
        lon = _coordinate(values.get((6, 0, 1)), 180.0)
        if lat is not None and lon is not None:
            emit(reg, lat=lat, lon=lon)

    manager.listeners.append(registered)
    manager.report_listeners.append(reported)


def check_bindings(manager: DeviceManager, bound_imeis: Callable[[str], list[str]]) -> None:
    """Alert ``imei-not-bound`` when a SIM registers from a device the inventory does not
    bind it to (``bound_imeis(iccid)``: the inventory's bindings, empty when unbound)."""

    def registered(kind: str, reg: Registration) -> None:
        if kind != "registered" or not reg.imei:
            return
        bound = bound_imeis(reg.iccid)
        if bound and reg.imei[:14] not in {imei[:14] for imei in bound}:
            manager.alert("imei-not-bound", reg,
                          f"SIM {reg.imsi} registered from IMEI {reg.imei}, bound to "
                          f"{', '.join(sorted(bound))}",
                          {"imei": reg.imei, "bound_imeis": sorted(bound), "iccid": reg.iccid})

    manager.listeners.append(registered)
