"""The subscriber inventory: tenants' SIMs, devices, device groups, APNs, attach policy.

K and OP/OPc (TOP/TOPc for TUAK) are sealed with the runtime keyring (envelope
encryption, AES-256-GCM) with an AAD naming the ICCID and the field, so a
sealed value copied to another row or field does not open. Life-cycle
transitions follow :data:`simtrust.subscriber.TRANSITIONS` and each one is an
audit record. Every write records a change (:class:`ChangeFeed`) and notifies
local listeners after its transaction, which keeps attach caches coherent.

This module holds the SIM life cycle (provisioning, transitions, stock
moves, attach settings, bindings, sealed secrets and SQN state); the other
parts are :class:`~simtrust.subscriber._devices.DeviceRegistry` (devices and
groups), :class:`~simtrust.subscriber._apns.ApnCatalog` (APNs and attach
policy) and :class:`~simtrust.subscriber._bulk.BulkActions`, each over the
shared :class:`~simtrust.subscriber._core.InventoryCore`. Their methods are
reached through the :class:`Inventory` as well, which is what callers use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.domain import Iccid, Imsi
from simtrust.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from simtrust.store import Database
from simtrust.subscriber._allocations import AllocationIndex
from simtrust.subscriber._apns import ApnCatalog
from simtrust.subscriber._bulk import BULK_TARGETS, BulkActions, BulkOutcome
from simtrust.subscriber._core import InventoryCore
from simtrust.subscriber._devices import DeviceRegistry
from simtrust.subscriber._model import (
    AuthMethod,
    BindingMode,
    OpKind,
    Roaming,
    Sim,
    SimSecrets,
    SimState,
    check_transition,
)
from simtrust.subscriber._sim_rows import (
    AUTH_ROW_SEALED,
    INSERT_SIM,
    SIM_COLUMNS,
    SimSpec,
    missing_device,
    missing_sim,
    parse_address,
    secret_aad,
    sim_from_row,
)

__all__ = [
    "BULK_TARGETS",
    "BulkOutcome",
    "Inventory",
    "SimSpec",
    "missing_device",
    "missing_sim",
    "secret_aad",
]


class Inventory(InventoryCore):
    """SIMs, devices, groups, APNs and attach policy of every tenant, over one store.

    The SIM life cycle is here; ``devices``, ``apns`` and ``bulk`` are the other
    parts, whose methods are also attributes of the inventory itself.
    """

    __slots__ = (
        "add_device", "apns", "apply_policy_many", "bulk", "create_apn", "create_group",
        "delete_apn", "devices", "find_device", "get_apn", "get_device", "get_group",
        "list_apns", "list_devices", "list_groups", "move_group_many", "policy", "set_policy",
        "transition_many",
    )

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(db, keyring, audit, clock)
        self.devices = DeviceRegistry(self)
        self.apns = ApnCatalog(self)
        self.bulk = BulkActions(self, self.devices)
        self.create_group = self.devices.create_group
        self.get_group = self.devices.get_group
        self.list_groups = self.devices.list_groups
        self.add_device = self.devices.add_device
        self.find_device = self.devices.find_device
        self.get_device = self.devices.get_device
        self.list_devices = self.devices.list_devices
        self.create_apn = self.apns.create_apn
        self.delete_apn = self.apns.delete_apn
        self.get_apn = self.apns.get_apn
        self.list_apns = self.apns.list_apns
        self.policy = self.apns.policy
        self.set_policy = self.apns.set_policy
        self.transition_many = self.bulk.transition_many
        self.move_group_many = self.bulk.move_group_many
        self.apply_policy_many = self.bulk.apply_policy_many

    # -- SIMs ----------------------------------------------------------------


    def seal_row(self, spec: SimSpec, tenant_id: str, now: str) -> tuple[Any, ...]:
        """The ``sub_sims`` row of ``spec`` with its secrets sealed (used by bulk import)."""
        iccid = spec.iccid.value
        kind = spec.secrets.op_kind
        return (
            iccid,
            spec.imsi.value,
            spec.imsi.mnc_length,
            tenant_id,
            str(spec.state),
            str(spec.algorithm),
            json.dumps(spec.tuak.to_json() if spec.tuak else {}),
            str(kind),
            self._keyring.seal(spec.secrets.k, secret_aad(iccid, "k")),
            self._keyring.seal(spec.secrets.op, secret_aad(iccid, str(kind))),
            spec.amf.hex(),
            spec.sqn_state,
            spec.group_id,
            spec.apn,
            spec.static_ip,
            str(spec.binding_mode) if spec.binding_mode else None,
            spec.roaming.to_text() if spec.roaming else None,
            now,
            now,
            str(spec.auth_method),
        )

    def insert_sealed_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows built by :meth:`seal_row` (inside the caller's transaction)."""
        self._db.executemany(INSERT_SIM, rows)

    def add_sim(
        self, tenant_id: str, spec: SimSpec, *, actor: str, own_allocation: bool = False
    ) -> Sim:
        """Provision one SIM; Conflict if its ICCID, IMSI or static address is taken.

        ``own_allocation`` (a tenant's own request): both identifiers must lie in the
        tenant's ranges and the static address in its networks (PermissionDenied
        otherwise, checked before anything else); without it (the operator) none may
        lie in another tenant's ranges or networks.
        """
        self.require_tenant(tenant_id)
        self.allocations.check(tenant_id, spec.iccid.value, spec.imsi.value,
                               own=own_allocation)
        if spec.static_ip is not None:
            self.allocations.check_address(tenant_id, spec.static_ip, own=own_allocation)
        if spec.group_id is not None:
            self.devices.check_group(tenant_id, spec.group_id)
        now = self._clock().isoformat()
        with self._db.transaction():
            self._check_unique(spec)
            if spec.static_ip is not None:
                self._check_static_ip(spec.static_ip, spec.iccid.value, spec.imsi.value)
            self._db.execute(INSERT_SIM, self.seal_row(spec, tenant_id, now))
            self.record_change("sim", spec.imsi.value)
            self._audit.append(
                actor=actor,
                action="sim.provision",
                subject=f"sim:{spec.iccid}",
                outcome="success",
                tenant_id=tenant_id,
                details={"imsi": spec.imsi.value, "state": str(spec.state),
                         "algorithm": str(spec.algorithm), "op_kind": str(spec.secrets.op_kind)},
            )
        self.notify("sim", spec.imsi.value)
        return self.get_sim(spec.iccid)

    def _check_static_ip(self, address: str, iccid: str, imsi: str) -> None:
        """Conflict if another SIM has ``address`` as its static address or leases it."""
        taken = self._db.query_one(
            "SELECT 1 FROM sub_sims WHERE static_ip = ? AND iccid <> ?", (address, iccid)
        ) or self._db.query_one(
            "SELECT 1 FROM sub_leases WHERE address = ? AND imsi <> ?", (address, imsi)
        )
        if taken is not None:
            raise Conflict(f"address {address} is assigned to another SIM", field="static_ip")

    def _check_unique(self, spec: SimSpec) -> None:
        row = self._db.query_one(
            "SELECT iccid, imsi FROM sub_sims WHERE iccid = ? OR imsi = ?",
            (spec.iccid.value, spec.imsi.value),
        )
        if row is not None:
            which = "ICCID" if row[0] == spec.iccid.value else "IMSI"
            raise Conflict(f"a SIM with this {which} exists", iccid=spec.iccid.value)

    def get_sim(self, iccid: Iccid) -> Sim:
        row = self._db.query_one(
            f"SELECT {SIM_COLUMNS} FROM sub_sims WHERE iccid = ?",
            (iccid.value,),
        )
        if row is None:
            raise missing_sim(iccid)
        return sim_from_row(row)

    def find_sim(self, imsi: Imsi) -> Sim | None:
        row = self._db.query_one(
            f"SELECT {SIM_COLUMNS} FROM sub_sims WHERE imsi = ?",
            (imsi.value,),
        )
        return None if row is None else sim_from_row(row)

    def sim_standing(self, imsi: str) -> tuple[str, str, str, int | None] | None:
        """(ICCID, tenant, state value, group id) of the SIM with IMSI ``imsi``, read now
        from the store: what an LwM2M registration checks, without building a :class:`Sim`
        (four columns instead of seventeen, no row conversion;
        docs/decisions/devices-throughput.md). Not cached: a SIM suspended a moment ago is
        read as suspended."""
        row = self._db.query_one(
            "SELECT iccid, tenant_id, state, group_id FROM sub_sims WHERE imsi = ?", (imsi,))
        if row is None:
            return None
        return (str(row[0]), str(row[1]), str(row[2]),
                None if row[3] is None else int(row[3]))

    def get_sim_by_imsi(self, imsi: Imsi) -> Sim:
        sim = self.find_sim(imsi)
        if sim is None:
            raise NotFound(f"no SIM with IMSI {imsi}", imsi=imsi.value)
        return sim

    def list_sims(
        self,
        tenant_id: str | None = None,
        *,
        state: SimState | None = None,
        after: str = "",
        limit: int = 100,
    ) -> list[Sim]:
        """SIMs ordered by ICCID, after ``after`` (keyset pagination), at most ``limit``."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", field="limit")
        clauses = ["iccid > ?"]
        params: list[Any] = [after]
        if tenant_id is not None:
            clauses.append("tenant_id = ?")
            params.append(tenant_id)
        if state is not None:
            clauses.append("state = ?")
            params.append(str(state))
        sql = (
            f"SELECT {SIM_COLUMNS} FROM sub_sims WHERE {' AND '.join(clauses)}"
            " ORDER BY iccid LIMIT ?"
        )
        return [sim_from_row(r) for r in self._db.query(sql, [*params, limit])]

    def count_sims(self, tenant_id: str | None = None) -> dict[str, int]:
        """Number of SIMs per life-cycle state."""
        sql = "SELECT state, COUNT(*) FROM sub_sims"
        params: tuple[Any, ...] = ()
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params = (tenant_id,)
        counts = {str(s): 0 for s in SimState}
        for state, n in self._db.query(sql + " GROUP BY state", params):
            counts[str(state)] = int(n)
        return counts

    def transition(
        self, iccid: Iccid, target: SimState, *, actor: str, reason: str = ""
    ) -> Sim:
        """Move a SIM to ``target`` if the life cycle permits it; audited either way."""
        sim = self.get_sim(iccid)
        try:
            check_transition(sim.state, target)
        except InvalidTransition:
            self._audit.append(
                actor=actor, action="sim.transition", subject=f"sim:{iccid}",
                outcome="failure", reason="not-permitted", tenant_id=sim.tenant_id,
                details={"from": str(sim.state), "to": str(target), "note": reason},
            )
            raise
        with self._db.transaction():
            now = self._clock().isoformat()
            changed = self._db.execute(
                "UPDATE sub_sims SET state = ?, updated_at = ? WHERE iccid = ? AND state = ?",
                (str(target), now, iccid.value, str(sim.state)),
            )
            if changed != 1:
                raise Conflict("SIM state changed concurrently; retry", iccid=iccid.value)
            self.record_change("sim", sim.imsi.value)
            released: list[str] = []
            if target is SimState.TERMINATED:
                # A terminated SIM gives back its address and device bindings.
                self._db.execute("DELETE FROM sub_leases WHERE imsi = ?", (sim.imsi.value,))
                self.record_change("lease", sim.imsi.value)
                released = self.clear_bindings(iccid)
            self._audit.append(
                actor=actor, action="sim.transition", subject=f"sim:{iccid}",
                outcome="success", reason=reason or f"{sim.state}->{target}",
                tenant_id=sim.tenant_id,
                details={"from": str(sim.state), "to": str(target), "imsi": sim.imsi.value,
                         **({"released_bindings": released} if released else {})},
            )
        self.notify("sim", sim.imsi.value)
        if target is SimState.TERMINATED:
            self.notify("lease", sim.imsi.value)
        return self.get_sim(iccid)

    def allocate_stock(
        self, stock_tenant: str, tenant_id: str, count: int, *, actor: str,
        apn: str | None = None, reason: str = "",
    ) -> list[Iccid]:
        """Move ``count`` SIMs in ``inventory`` state from ``stock_tenant`` to ``tenant_id``.

        The SIMs become ``active`` for the new tenant (on ``apn`` when given, an APN
        of that tenant), outside any device group. The lowest ICCIDs that may go to
        the tenant go first (:meth:`_transferable`); Conflict when the stock holds
        fewer, and nothing moves. :meth:`return_stock` undoes it.
        """
        if not 1 <= count <= 1_000_000:
            raise InvalidInput("count must be between 1 and 1000000", field="count")
        self.require_tenant(tenant_id)
        if apn is not None:
            self.apns.get_apn(tenant_id, apn)
        index = self.allocations.index()
        moved: list[Sim] = []
        with self._db.transaction():
            after = ""
            while len(moved) < count:
                rows = self._db.query(
                    f"SELECT {SIM_COLUMNS} FROM sub_sims WHERE tenant_id = ? AND state = ?"
                    " AND iccid > ? ORDER BY iccid LIMIT ?",
                    (stock_tenant, str(SimState.INVENTORY), after, max(count, 500)))
                if not rows:
                    break
                for row in rows:
                    sim = sim_from_row(row)
                    after = sim.iccid.value
                    if self._transferable(index, sim, tenant_id):
                        moved.append(sim)
                        if len(moved) == count:
                            break
            if len(moved) < count:
                raise Conflict(f"the SIM stock holds {len(moved)} SIMs for this tenant,"
                               f" {count} needed", reason="stock-exhausted")
            now = self._clock().isoformat()
            for sim in moved:
                changed = self._db.execute(
                    "UPDATE sub_sims SET tenant_id = ?, state = ?, apn = ?, group_id = NULL,"
                    " updated_at = ? WHERE iccid = ? AND tenant_id = ? AND state = ?",
                    (tenant_id, str(SimState.ACTIVE), apn, now, sim.iccid.value, stock_tenant,
                     str(SimState.INVENTORY)))
                if changed != 1:
                    raise Conflict("the SIM stock changed concurrently; retry")
                self._db.execute("DELETE FROM sub_leases WHERE imsi = ?", (sim.imsi.value,))
                self.record_change("sim", sim.imsi.value)
            self._audit.append(
                actor=actor, action="sim.allocate", subject=f"tenant:{tenant_id}",
                outcome="success", reason=reason, tenant_id=tenant_id,
                details={"from": stock_tenant, "count": count, "apn": apn,
                         "iccids": [sim.iccid.value for sim in moved]})
        for sim in moved:
            self.notify("sim", sim.imsi.value)
        return [sim.iccid for sim in moved]

    @staticmethod
    def _transferable(index: AllocationIndex, sim: Sim, tenant_id: str) -> bool:
        """Whether a stock SIM may become ``tenant_id``'s (docs/decisions/market-stock-transfer.md).

        Its ICCID and IMSI may not lie in another tenant's ranges (the rule the
        operator provisions by, which keeps ranges from covering another tenant's
        SIMs), and a static address it carries must lie in ``tenant_id``'s own
        networks (the order is the tenant's request, as for an ordered APN pool).
        The answer depends on the stock and the buyer's allocation, never on which
        identifiers the buyer named: it names none.
        """
        if index.refusal(tenant_id, sim.iccid.value, sim.imsi.value, own=False) is not None:
            return False
        return sim.static_ip is None or index.address_refusal(
            tenant_id, sim.static_ip, own=True) is None

    def return_stock(
        self, iccids: Sequence[Iccid], tenant_id: str, stock_tenant: str, *, actor: str,
        reason: str = "",
    ) -> None:
        """Give SIMs that :meth:`allocate_stock` moved to ``tenant_id`` back to the stock.

        Only SIMs still ``active`` and unbound qualify (Conflict otherwise, nothing
        moves): one a device has used is not stock any more.
        """
        sims = [self.get_sim(iccid) for iccid in iccids]
        with self._db.transaction():
            now = self._clock().isoformat()
            for sim in sims:
                if sim.tenant_id != tenant_id or sim.state is not SimState.ACTIVE \
                        or self.bindings(sim.iccid):
                    raise Conflict(f"SIM {sim.iccid} is in use and cannot go back to stock",
                                   iccid=sim.iccid.value)
                self._db.execute(
                    "UPDATE sub_sims SET tenant_id = ?, state = ?, apn = NULL, updated_at = ?"
                    " WHERE iccid = ?",
                    (stock_tenant, str(SimState.INVENTORY), now, sim.iccid.value))
                self._db.execute("DELETE FROM sub_leases WHERE imsi = ?", (sim.imsi.value,))
                self.record_change("sim", sim.imsi.value)
            self._audit.append(
                actor=actor, action="sim.release", subject=f"tenant:{tenant_id}",
                outcome="success", reason=reason, tenant_id=tenant_id,
                details={"to": stock_tenant, "iccids": [s.iccid.value for s in sims]})
        for sim in sims:
            self.notify("sim", sim.imsi.value)

    def update_sim(
        self,
        iccid: Iccid,
        *,
        actor: str,
        group_id: int | None = None,
        apn: str | None = None,
        static_ip: str | None = None,
        binding_mode: BindingMode | None = None,
        roaming: Roaming | None = None,
        auth_method: AuthMethod | None = None,
        clear: Sequence[str] = (),
        own_allocation: bool = False,
    ) -> Sim:
        """Change attach settings of a SIM (``clear`` names settings to reset to inherit).

        Changing the binding mode drops the SIM's existing bindings: they were
        learned under the old mode and are learned again on next use. A static
        address is checked against the allocations as in :meth:`add_sim`.
        """
        settable = {"group_id", "apn", "static_ip", "binding_mode", "roaming"}
        unknown = set(clear) - settable
        if unknown:
            raise InvalidInput(f"cannot clear {sorted(unknown)}", field="clear")
        sim = self.get_sim(iccid)
        values: dict[str, Any] = {}
        if group_id is not None:
            self.devices.check_group(sim.tenant_id, group_id)
            values["group_id"] = group_id
        if apn is not None:
            self.apns.get_apn(sim.tenant_id, apn)
            values["apn"] = apn
        if static_ip is not None:
            values["static_ip"] = parse_address(static_ip)
            self.allocations.check_address(sim.tenant_id, values["static_ip"],
                                           own=own_allocation)
        if binding_mode is not None:
            values["binding_mode"] = str(binding_mode)
        if roaming is not None:
            values["roaming"] = roaming.to_text()
        if auth_method is not None:
            values["auth_method"] = str(auth_method)
        for name in clear:
            values[name] = None
        if not values:
            return sim
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._db.transaction():
            if values.get("static_ip") is not None:
                self._check_static_ip(str(values["static_ip"]), sim.iccid.value,
                                      sim.imsi.value)
            self._db.execute(
                f"UPDATE sub_sims SET {assignments}, updated_at = ? WHERE iccid = ?",
                [*values.values(), self._clock().isoformat(), iccid.value],
            )
            if "binding_mode" in values:
                self.clear_bindings(iccid)
            if "static_ip" in values:
                self._db.execute("DELETE FROM sub_leases WHERE imsi = ?", (sim.imsi.value,))
            self.record_change("sim", sim.imsi.value)
            self._audit.append(
                actor=actor, action="sim.update", subject=f"sim:{iccid}", outcome="success",
                tenant_id=sim.tenant_id,
                details=dict(values.items()),
            )
        self.notify("sim", sim.imsi.value)
        return self.get_sim(iccid)

    def bindings(self, iccid: Iccid) -> list[dict[str, str]]:
        """The IMEIs a SIM is bound to, with mode and time."""
        rows = self._db.query(
            "SELECT imei, mode, bound_at FROM sub_bindings WHERE iccid = ? ORDER BY bound_at",
            (iccid.value,),
        )
        return [{"imei": str(i), "mode": str(m), "bound_at": str(t)} for i, m, t in rows]

    def clear_bindings(self, iccid: Iccid, *, actor: str | None = None) -> list[str]:
        """Drop every IMEI binding of a SIM; return the IMEIs it was bound to.

        With ``actor`` the reset is audited (an operator confirming a device swap);
        without, it is part of a change the caller audits.
        """
        with self._db.transaction():
            imeis = [str(r[0]) for r in self._db.query(
                "SELECT imei FROM sub_bindings WHERE iccid = ?", (iccid.value,)
            )]
            self._db.execute("DELETE FROM sub_bindings WHERE iccid = ?", (iccid.value,))
            self.record_change("binding", iccid.value)
            for imei in imeis:
                self.record_change("binding-imei", imei)
            if actor is not None:
                row = self._db.query_one(
                    "SELECT tenant_id FROM sub_sims WHERE iccid = ?", (iccid.value,)
                )
                self._audit.append(
                    actor=actor, action="binding.reset", subject=f"sim:{iccid}",
                    outcome="success", tenant_id=None if row is None else str(row[0]),
                    details={"imeis": imeis},
                )
        self.notify("binding", iccid.value)
        for imei in imeis:
            self.notify("binding-imei", imei)
        return imeis

    def find_sim_secrets(self, imsi: Imsi) -> tuple[Sim, SimSecrets] | None:
        """A SIM and its unsealed K and OP/OPc from one read (the AuC's lookup per request)."""
        row = self._db.query_one(
            f"SELECT {SIM_COLUMNS}, k_sealed, op_sealed FROM sub_sims WHERE imsi = ?",
            (imsi.value,),
        )
        if row is None:
            return None
        sim = sim_from_row(row)
        return sim, self._unseal(sim.iccid.value, sim.op_kind, row[-2], row[-1])

    def auth_rows(self, imsis: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Per IMSI found: its row of :data:`SIM_COLUMNS`, sealed K and OP/OPc, SQN state
        and SQN version (:data:`AUTH_ROW_SEALED`, :data:`AUTH_ROW_SQN`), read for many
        IMSIs in one query (the AuC's lookup for a batch; :meth:`unseal_row` opens it)."""
        unique = list(dict.fromkeys(imsis))
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            for row in self._db.query(
                f"SELECT {SIM_COLUMNS}, k_sealed, op_sealed, sqn_state, sqn_version"
                f" FROM sub_sims WHERE imsi IN ({','.join('?' * len(chunk))})", chunk,
            ):
                found[str(row[1])] = tuple(row)
        return found

    def unseal_row(self, sim: Sim, row: Sequence[Any]) -> SimSecrets:
        """K and OP/OPc of ``sim`` from its :meth:`auth_rows` row (only the AuC calls this)."""
        return self._unseal(sim.iccid.value, sim.op_kind, row[AUTH_ROW_SEALED],
                            row[AUTH_ROW_SEALED + 1])

    def _unseal(self, iccid: str, kind: OpKind, k_sealed: bytes, op_sealed: bytes) -> SimSecrets:
        k = self._keyring.open(bytes(k_sealed), secret_aad(iccid, "k"))
        op = self._keyring.open(bytes(op_sealed), secret_aad(iccid, str(kind)))
        return SimSecrets(k, op, kind)

    def open_secrets(self, iccid: Iccid) -> SimSecrets:
        """Unseal K and OP/OPc of a SIM (only the AuC calls this)."""
        row = self._db.query_one(
            "SELECT op_kind, k_sealed, op_sealed FROM sub_sims WHERE iccid = ?", (iccid.value,)
        )
        if row is None:
            raise missing_sim(iccid)
        return self._unseal(iccid.value, OpKind(row[0]), row[1], row[2])

    # -- SQN state (read and compare-and-swap; the AuC service drives it) ------

    def sqn_state(self, iccid: Iccid) -> tuple[str, int]:
        """(serialized SQN state, version) of a SIM."""
        row = self._db.query_one(
            "SELECT sqn_state, sqn_version FROM sub_sims WHERE iccid = ?", (iccid.value,)
        )
        if row is None:
            raise missing_sim(iccid)
        return str(row[0]), int(row[1])

    def swap_sqn_state(self, iccid: Iccid, state: str, expected_version: int) -> bool:
        """Store ``state`` if the version is still ``expected_version``; False if it moved."""
        changed = self._db.execute(
            "UPDATE sub_sims SET sqn_state = ?, sqn_version = sqn_version + 1"
            " WHERE iccid = ? AND sqn_version = ?",
            (state, iccid.value, expected_version),
        )
        return changed == 1

    def swap_sqn_states(self, swaps: Sequence[tuple[str, str, int]]) -> int:
        """:meth:`swap_sqn_state` for (ICCID, state, expected version) in order, in one
        statement batch; the number of SIMs swapped (each swap changes at most one row,
        so ``len(swaps)`` means every one of them held)."""
        return self._db.executemany_count(
            "UPDATE sub_sims SET sqn_state = ?, sqn_version = sqn_version + 1"
            " WHERE iccid = ? AND sqn_version = ?",
            [(state, iccid, version) for iccid, state, version in swaps],
        )
