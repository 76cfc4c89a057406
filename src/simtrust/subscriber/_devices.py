"""Devices and device groups of the inventory.

A device is known by its IMEI (3GPP TS 23.003 §6.2) per tenant: the same IMEI
may be in two tenants' inventories, and a check for an existing device looks at
the caller's own only (``docs/decisions/api-tenant-existence.md``). A device
group carries the binding mode, swap action and roaming rule its SIMs inherit.

What a device reports about itself (firmware and radio, e.g. over LwM2M objects 3, 4 and
5) is kept on its record (:meth:`DeviceRegistry.record_reports`), merged field by field
over the closed vocabulary :data:`REPORTED_FIELDS`; a device the tenant has not listed yet
is listed by its first report (``docs/decisions/devices-reported-inventory.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from simtrust.domain import Imei, ImeiSv
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.subscriber._core import InventoryCore
from simtrust.subscriber._model import BindingMode, Device, DeviceGroup, Roaming, SwapAction
from simtrust.subscriber._sim_rows import missing_device

__all__ = ["REPORTED_FIELDS", "DeviceRegistry", "DeviceReport"]

#: Fields a device may report, with their JSON type: ``str``, ``int``, ``float`` or
#: ``list`` (of strings, e.g. several IP addresses). Anything else is dropped.
REPORTED_FIELDS: dict[str, type] = {
    "manufacturer": str, "model": str, "serial_number": str, "device_type": str,
    "firmware_version": str, "hardware_version": str, "software_version": str,
    "network_bearer": int, "signal_strength_dbm": int, "link_quality": int,
    "cell_id": int, "mcc": int, "mnc": int, "ip_addresses": list, "apns": list,
    "firmware_state": int, "firmware_update_result": int,
    "firmware_package_name": str, "firmware_package_version": str, "battery_level": int,
}
_MAX_TEXT = 255
_MAX_ITEMS = 16

#: ``(tenant id, IMEI, reported fields, when)``.
DeviceReport = tuple[str, Imei, Mapping[str, Any], datetime]


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of :data:`REPORTED_FIELDS` with a value of their type, text bounded."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        kind = REPORTED_FIELDS.get(name)
        if kind is None or isinstance(value, bool):
            continue
        if kind is str and isinstance(value, str):
            out[name] = value[:_MAX_TEXT]
        elif kind is int and isinstance(value, int) and -(2**63) <= value < 2**63:
            out[name] = value
        elif kind is list and isinstance(value, list | tuple):
            out[name] = [v[:_MAX_TEXT] for v in value[:_MAX_ITEMS] if isinstance(v, str)]
    return out


class DeviceRegistry:
    """Device groups and devices of every tenant (reached as ``Inventory.devices``)."""

    __slots__ = ("_core",)

    def __init__(self, core: InventoryCore) -> None:
        self._core = core

    def __repr__(self) -> str:
        return f"DeviceRegistry({self._core!r})"

    # -- groups --------------------------------------------------------------

    def create_group(
        self,
        tenant_id: str,
        name: str,
        *,
        actor: str,
        binding_mode: BindingMode | None = None,
        swap_action: SwapAction | None = None,
        roaming: Roaming | None = None,
    ) -> DeviceGroup:
        self._core.require_tenant(tenant_id)
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("group name must be 1-200 characters", field="name")
        with self._core.db.transaction():
            if self._core.db.query_one(
                "SELECT id FROM sub_groups WHERE tenant_id = ? AND name = ?", (tenant_id, name)
            ):
                raise Conflict(f"group {name!r} exists", tenant_id=tenant_id)
            group_id = self._core.db.insert_returning_id(
                "INSERT INTO sub_groups (tenant_id, name, binding_mode, swap_action, roaming,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    name,
                    str(binding_mode) if binding_mode else None,
                    str(swap_action) if swap_action else None,
                    roaming.to_text() if roaming else None,
                    self._core.now().isoformat(),
                ),
            )
            self._core.record_change("group", str(group_id))
            self._core.audit.append(
                actor=actor, action="group.create", subject=f"group:{group_id}",
                outcome="success", tenant_id=tenant_id, details={"name": name},
            )
        self._core.notify("group", str(group_id))
        return self.get_group(group_id)

    def get_group(self, group_id: int) -> DeviceGroup:
        row = self._core.db.query_one(
            "SELECT id, tenant_id, name, binding_mode, swap_action, roaming"
            " FROM sub_groups WHERE id = ?",
            (group_id,),
        )
        if row is None:
            raise NotFound(f"no device group {group_id}", group_id=group_id)
        return DeviceGroup(
            id=int(row[0]),
            tenant_id=str(row[1]),
            name=str(row[2]),
            binding_mode=None if row[3] is None else BindingMode(row[3]),
            swap_action=None if row[4] is None else SwapAction(row[4]),
            roaming=Roaming.from_text(row[5]),
        )

    def list_groups(self, tenant_id: str) -> list[DeviceGroup]:
        rows = self._core.db.query(
            "SELECT id FROM sub_groups WHERE tenant_id = ? ORDER BY id", (tenant_id,)
        )
        return [self.get_group(int(r[0])) for r in rows]

    def check_group(self, tenant_id: str, group_id: int) -> None:
        """NotFound unless ``group_id`` is a group of ``tenant_id`` (another's is missing)."""
        if self.get_group(group_id).tenant_id != tenant_id:
            raise NotFound(f"no device group {group_id}", group_id=group_id)

    # -- devices -------------------------------------------------------------

    def add_device(
        self,
        tenant_id: str,
        imei: Imei,
        *,
        actor: str,
        imeisv: ImeiSv | None = None,
        group_id: int | None = None,
        label: str = "",
    ) -> Device:
        self._core.require_tenant(tenant_id)
        if imeisv is not None and imeisv.imei != imei:
            raise InvalidInput("IMEISV belongs to another IMEI", field="imeisv")
        if group_id is not None:
            self.check_group(tenant_id, group_id)
        with self._core.db.transaction():
            # Devices are per tenant (docs/decisions/api-tenant-existence.md): only the
            # tenant's own inventory is checked, so another tenant's is never revealed.
            if self._core.db.query_one(
                "SELECT imei FROM sub_devices WHERE tenant_id = ? AND imei = ?",
                (tenant_id, imei.value),
            ):
                raise Conflict("a device with this IMEI exists", imei=imei.value)
            self._core.db.execute(
                "INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id, label,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    imei.value,
                    imeisv.value if imeisv else None,
                    imei.tac.value,
                    tenant_id,
                    group_id,
                    label[:200],
                    self._core.now().isoformat(),
                ),
            )
            self._core.record_change("device", imei.value)
            self._core.audit.append(
                actor=actor, action="device.register", subject=f"device:{imei}",
                outcome="success", tenant_id=tenant_id,
            )
        self._core.notify("device", imei.value)
        return self.get_device(imei, tenant_id)

    def find_device(self, imei: Imei, tenant_id: str | None = None) -> Device | None:
        """The device in ``tenant_id``'s inventory; without a tenant (the operator's
        view), the first of the tenants' records of this IMEI by tenant id."""
        sql = ("SELECT imei, imeisv, tenant_id, group_id, label, created_at, reported,"
               " reported_at FROM sub_devices WHERE imei = ?")
        params: list[Any] = [imei.value]
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id)
        row = self._core.db.query_one(sql + " ORDER BY tenant_id LIMIT 1", params)
        if row is None:
            return None
        return Device(
            imei=Imei(str(row[0])),
            imeisv=None if row[1] is None else ImeiSv(str(row[1])),
            tenant_id=str(row[2]),
            group_id=None if row[3] is None else int(row[3]),
            label=str(row[4]),
            created_at=datetime.fromisoformat(str(row[5])),
            reported=json.loads(str(row[6])) if row[6] else {},
            reported_at=None if row[7] is None else datetime.fromisoformat(str(row[7])),
        )

    def get_device(self, imei: Imei, tenant_id: str | None = None) -> Device:
        device = self.find_device(imei, tenant_id)
        if device is None:
            raise missing_device(imei)
        return device

    def list_devices(self, tenant_id: str, *, after: str = "", limit: int = 100) -> list[Device]:
        rows = self._core.db.query(
            "SELECT imei FROM sub_devices WHERE tenant_id = ? AND imei > ? ORDER BY imei LIMIT ?",
            (tenant_id, after, limit),
        )
        return [self.get_device(Imei(str(r[0])), tenant_id) for r in rows]

    # -- what devices report -------------------------------------------------

    def record_reports(self, reports: Iterable[DeviceReport], *, actor: str) -> int:
        """Merge each report into the tenant's record of that IMEI, in one durable
        transaction; a tenant's first report of an IMEI lists the device (audited
        ``device.discover``). A report older than the stored one is skipped. Returns the
        number of records written."""
        written = 0
        discovered: list[str] = []
        with self._core.db.transaction(durable=True):
            for tenant_id, imei, fields, at in reports:
                clean = _clean(fields)
                if not clean:
                    continue
                row = self._core.db.query_one(
                    "SELECT reported, reported_at FROM sub_devices"
                    " WHERE tenant_id = ? AND imei = ?", (tenant_id, imei.value))
                if row is None:
                    self._core.db.execute(
                        "INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id,"
                        " label, created_at, reported, reported_at)"
                        " VALUES (?, NULL, ?, ?, NULL, '', ?, ?, ?)",
                        (imei.value, imei.tac.value, tenant_id, self._core.now().isoformat(),
                         json.dumps(clean, sort_keys=True), at.isoformat()))
                    self._core.record_change("device", imei.value)
                    self._core.audit.append(
                        actor=actor, action="device.discover", subject=f"device:{imei}",
                        outcome="success", tenant_id=tenant_id)
                    discovered.append(imei.value)
                else:
                    if row[1] is not None and datetime.fromisoformat(str(row[1])) > at:
                        continue
                    merged = json.loads(str(row[0])) if row[0] else {}
                    merged.update(clean)
                    self._core.db.execute(
                        "UPDATE sub_devices SET reported = ?, reported_at = ?"
                        " WHERE tenant_id = ? AND imei = ?",
                        (json.dumps(merged, sort_keys=True), at.isoformat(), tenant_id,
                         imei.value))
                written += 1
        for imei_value in discovered:
            self._core.notify("device", imei_value)
        return written
