"""What a device reports about its firmware and radio goes onto its inventory record
(issue 21: "what a device reports (IMEI, firmware version, radio, location) feeds the
inventory"): Device object 3, Connectivity Monitoring object 4 and Firmware Update object 5
(OMA-TS-LightweightM2M_Core-V1_1_1 Appendix E.4, E.5, E.6) read, notified or sent.

The inventory owns device records (the subscriber package); this module only maps LwM2M
resources to the inventory's field names and hands the reports over through ``write``,
which the composition root binds to ``subscriber.DeviceRegistry.record_reports``. The CoAP
loop never waits for the store: reports are merged per (tenant, IMEI) in memory and a
writer thread commits whatever gathered meanwhile in one durable transaction (group
commit). A report is written only for a registration that names an IMEI (Core §7.3.1
``urn:imei``/``urn:imei-imsi`` endpoint names): the IMEI is what the record is keyed by.
Reports lost with the process are re-read the next time the device is read, notified or
sends; the record holds the last value written, never a made-up one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from simtrust.devices._objects import Path, Value
from simtrust.devices._server import DeviceManager, Registration

__all__ = ["REPORTED_RESOURCES", "ReportWriter", "record_device_reports"]

log = logging.getLogger(__name__)

#: LwM2M resource (object, resource) -> the inventory's reported field name.
REPORTED_RESOURCES: dict[tuple[int, int], str] = {
    (3, 0): "manufacturer", (3, 1): "model", (3, 2): "serial_number",
    (3, 3): "firmware_version", (3, 9): "battery_level", (3, 17): "device_type",
    (3, 18): "hardware_version", (3, 19): "software_version",
    (4, 0): "network_bearer", (4, 2): "signal_strength_dbm", (4, 3): "link_quality",
    (4, 4): "ip_addresses", (4, 7): "apns", (4, 8): "cell_id", (4, 9): "mnc",
    (4, 10): "mcc",
    (5, 3): "firmware_state", (5, 5): "firmware_update_result",
    (5, 6): "firmware_package_name", (5, 7): "firmware_package_version",
}
_LISTS = {"ip_addresses", "apns"}
# Built once: a ``bool | bytes`` union in an isinstance call is built on every call.
_SKIPPED = (bool, bytes)
_TEXT_OR_INT = (str, int)

#: ``(tenant id, IMEI, fields, when)`` as handed to ``write``.
Report = tuple[str, str, dict[str, Any], datetime]


def reported_fields(values: Mapping[Path, Value]) -> dict[str, Any]:
    """The inventory fields in a set of LwM2M values (instance 0 of objects 3, 4, 5; the
    resource instances of a multiple resource in order, as one list)."""
    fields: dict[str, Any] = {}
    lists: dict[str, list[tuple[int, str]]] = {}
    for path, value in values.items():
        if len(path) < 3 or path[1] != 0 or isinstance(value, _SKIPPED):
            continue
        name = REPORTED_RESOURCES.get((path[0], path[2]))
        if name is None:
            continue
        if name in _LISTS:
            if len(path) == 4 and isinstance(value, str):
                lists.setdefault(name, []).append((path[3], value))
        elif isinstance(value, _TEXT_OR_INT) and not isinstance(value, float):
            fields[name] = value
        elif isinstance(value, float) and value.is_integer():
            fields[name] = int(value)  # SenML-JSON numbers arrive as floats
    for name, items in lists.items():
        fields[name] = [text for _i, text in sorted(items)]
    return fields


class ReportWriter:
    """Gathers reports off the CoAP loop and writes them in batches on its own thread."""

    def __init__(self, write: Callable[[Sequence[Report]], object]) -> None:
        self._write = write
        self._pending: dict[tuple[str, str], Report] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, tenant_id: str, imei: str, fields: Mapping[str, Any],
               at: datetime) -> None:
        with self._lock:
            before = self._pending.get((tenant_id, imei))
            merged = {**before[2], **fields} if before is not None else dict(fields)
            self._pending[(tenant_id, imei)] = (tenant_id, imei, merged, at)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="devices-records")
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Write everything submitted so far (durable when it returns)."""
        with self._flushing:
            with self._lock:
                batch = list(self._pending.values())
            if not batch:
                return
            self._write(batch)
            with self._lock:
                for report in batch:
                    key = (report[0], report[1])
                    if self._pending.get(key) is report:
                        del self._pending[key]

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for the next round; the store may be back by then
                log.exception("writing device reports to the inventory failed; kept")


def record_device_reports(manager: DeviceManager, writer: ReportWriter,
                          clock: Callable[[], datetime]) -> None:
    """Hand what registered devices report from objects 3, 4 and 5 to ``writer``."""

    def reported(reg: Registration, values: Mapping[Path, Value]) -> None:
        if not reg.imei:
            return
        fields = reported_fields(values)
        if fields:
            writer.submit(reg.tenant_id, reg.imei, fields, clock())

    manager.report_listeners.append(reported)
