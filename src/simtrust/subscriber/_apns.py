"""APNs and attach policy of each tenant.

An APN (3GPP TS 23.003 §9) may carry an address pool, which must lie in the
tenant's operator-assigned networks or outside every other tenant's
(``docs/decisions/subscriber-address-allocations.md``). The attach policy is
the tenant-wide default that device groups and SIMs override.
"""

from __future__ import annotations

import ipaddress

from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.subscriber._allocations import parse_network
from simtrust.subscriber._core import InventoryCore
from simtrust.subscriber._model import (
    Apn,
    AttachPolicy,
    BindingMode,
    Roaming,
    SwapAction,
    UnknownDevice,
)

__all__ = ["ApnCatalog"]


class ApnCatalog:
    """APNs and attach policies of every tenant (reached as ``Inventory.apns``)."""

    __slots__ = ("_core",)

    def __init__(self, core: InventoryCore) -> None:
        self._core = core

    def __repr__(self) -> str:
        return f"ApnCatalog({self._core!r})"

    # -- APNs ----------------------------------------------------------------

    def create_apn(
        self, tenant_id: str, name: str, *, actor: str, pool: str | None = None,
        own_allocation: bool = False,
    ) -> Apn:
        """Create a tenant's APN; its pool must lie in the tenant's networks
        (``own_allocation``) or outside every other tenant's (the operator)."""
        self._core.require_tenant(tenant_id)
        name = name.strip().lower()
        if not name or len(name) > 100 or not all(c.isalnum() or c in "-." for c in name):
            raise InvalidInput("APN name must be letters, digits, '-' and '.'", field="name")
        network = None
        if pool is not None:
            network = parse_network(pool, "pool")
            self._core.allocations.check_pool(tenant_id, network, own=own_allocation)
        with self._core.db.transaction():
            if self._core.db.query_one(
                "SELECT id FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name)
            ):
                raise Conflict(f"APN {name!r} exists", tenant_id=tenant_id)
            self._core.db.execute(
                "INSERT INTO sub_apns (tenant_id, name, pool, created_at) VALUES (?, ?, ?, ?)",
                (tenant_id, name, str(network) if network else None, self._core.now().isoformat()),
            )
            self._core.audit.append(
                actor=actor, action="apn.create", subject=f"apn:{tenant_id}/{name}",
                outcome="success", tenant_id=tenant_id,
                details={"pool": str(network) if network else None},
            )
        return Apn(tenant_id, name, network)

    def delete_apn(self, tenant_id: str, name: str, *, actor: str, reason: str = "") -> None:
        """Remove an APN no SIM uses (Conflict otherwise); NotFound if there is none."""
        self.get_apn(tenant_id, name)
        with self._core.db.transaction():
            if self._core.db.query_one(
                "SELECT 1 FROM sub_sims WHERE tenant_id = ? AND apn = ?", (tenant_id, name)
            ):
                raise Conflict(f"APN {name!r} is in use by SIMs", tenant_id=tenant_id)
            self._core.db.execute(
                "DELETE FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name))
            self._core.audit.append(
                actor=actor, action="apn.delete", subject=f"apn:{tenant_id}/{name}",
                outcome="success", reason=reason, tenant_id=tenant_id)

    def get_apn(self, tenant_id: str, name: str) -> Apn:
        row = self._core.db.query_one(
            "SELECT pool FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name)
        )
        if row is None:
            raise NotFound(f"no APN {name!r}", tenant_id=tenant_id)
        return Apn(tenant_id, name, None if row[0] is None else ipaddress.ip_network(row[0]))

    def list_apns(self, tenant_id: str) -> list[Apn]:
        rows = self._core.db.query(
            "SELECT name FROM sub_apns WHERE tenant_id = ? ORDER BY name", (tenant_id,)
        )
        return [self.get_apn(tenant_id, str(r[0])) for r in rows]

    # -- attach policy ---------------------------------------------------------

    def policy(self, tenant_id: str) -> AttachPolicy:
        """The tenant's attach policy (defaults when none was set)."""
        row = self._core.db.query_one(
            "SELECT binding_mode, swap_action, unknown_device, roaming, webhook_url"
            " FROM sub_policies WHERE tenant_id = ?",
            (tenant_id,),
        )
        if row is None:
            return AttachPolicy(tenant_id)
        return AttachPolicy(
            tenant_id=tenant_id,
            binding_mode=BindingMode(row[0]),
            swap_action=SwapAction(row[1]),
            unknown_device=UnknownDevice(row[2]),
            roaming=Roaming.from_text(row[3]) or Roaming(),
            webhook_url=None if row[4] is None else str(row[4]),
        )

    def set_policy(self, policy: AttachPolicy, *, actor: str) -> AttachPolicy:
        self._core.require_tenant(policy.tenant_id)
        if policy.webhook_url is not None and not policy.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidInput("webhook URL must be http(s)", field="webhook_url")
        values = (
            str(policy.binding_mode),
            str(policy.swap_action),
            str(policy.unknown_device),
            policy.roaming.to_text(),
            policy.webhook_url,
            self._core.now().isoformat(),
            policy.tenant_id,
        )
        with self._core.db.transaction():
            changed = self._core.db.execute(
                "UPDATE sub_policies SET binding_mode = ?, swap_action = ?, unknown_device = ?,"
                " roaming = ?, webhook_url = ?, updated_at = ? WHERE tenant_id = ?",
                values,
            )
            if changed == 0:
                self._core.db.execute(
                    "INSERT INTO sub_policies (binding_mode, swap_action, unknown_device,"
                    " roaming, webhook_url, updated_at, tenant_id) VALUES (?,?,?,?,?,?,?)",
                    values,
                )
            self._core.record_change("policy", policy.tenant_id)
            self._core.audit.append(
                actor=actor, action="attach-policy.set", subject=f"tenant:{policy.tenant_id}",
                outcome="success", tenant_id=policy.tenant_id,
                details={k: v for k, v in policy.to_json().items() if k != "webhook_url"},
            )
        self._core.notify("policy", policy.tenant_id)
        return self.policy(policy.tenant_id)
