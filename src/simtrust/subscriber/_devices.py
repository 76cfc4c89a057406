"""Devices and device groups of the inventory.

A device is known by its IMEI (3GPP TS 23.003 §6.2) per tenant: the same IMEI
may be in two tenants' inventories, and a check for an existing device looks at
the caller's own only (``docs/decisions/api-tenant-existence.md``). A device
group carries the binding mode, swap action and roaming rule its SIMs inherit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simtrust.domain import Imei, ImeiSv
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.subscriber._core import InventoryCore
from simtrust.subscriber._model import BindingMode, Device, DeviceGroup, Roaming, SwapAction
from simtrust.subscriber._sim_rows import missing_device

__all__ = ["DeviceRegistry"]


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
        sql = ("SELECT imei, imeisv, tenant_id, group_id, label, created_at"
               " FROM sub_devices WHERE imei = ?")
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
