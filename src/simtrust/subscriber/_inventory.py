"""The subscriber inventory: tenants' SIMs, devices, device groups, APNs, attach policy.

K and OP/OPc (TOP/TOPc for TUAK) are sealed with the runtime keyring (envelope
encryption, AES-256-GCM) with an AAD naming the ICCID and the field, so a
sealed value copied to another row or field does not open. Life-cycle
transitions follow :data:`simtrust.subscriber.TRANSITIONS` and each one is an
audit record. Every write records a change (:class:`ChangeFeed`) and notifies
local listeners after its transaction, which keeps attach caches coherent.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simtrust.audit import AuditEntry, AuditLog
from simtrust.crypto import Keyring
from simtrust.domain import Iccid, Imei, ImeiSv, Imsi
from simtrust.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from simtrust.store import Database, TenantStore
from simtrust.subscriber._allocations import Allocations, parse_network
from simtrust.subscriber._changes import ChangeFeed
from simtrust.subscriber._model import (
    Algorithm,
    Apn,
    AttachPolicy,
    AuthMethod,
    BindingMode,
    Device,
    DeviceGroup,
    OpKind,
    Roaming,
    Sim,
    SimSecrets,
    SimState,
    SwapAction,
    TuakParams,
    UnknownDevice,
    check_transition,
)
from simtrust.subscriber._sqn import initial_sqn_state

__all__ = [
    "BULK_TARGETS",
    "BulkOutcome",
    "Inventory",
    "SimSpec",
    "missing_device",
    "missing_sim",
    "secret_aad",
]

Listener = Callable[[str, str], None]


def missing_sim(iccid: Iccid) -> NotFound:
    """The error for a SIM that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no SIM with ICCID {iccid}", iccid=iccid.value)


def missing_device(imei: Imei) -> NotFound:
    """The error for a device that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no device with IMEI {imei}", imei=imei.value)


def secret_aad(iccid: str, field_name: str) -> bytes:
    """AAD binding a sealed SIM secret to its ICCID and field (``k``, ``op``, ``opc``, ...)."""
    return f"simtrust/subscriber/sim/{iccid}/{field_name}".encode()


@dataclass(frozen=True, slots=True)
class SimSpec:
    """Everything needed to provision one SIM (the bulk importer builds these)."""

    iccid: Iccid
    imsi: Imsi
    secrets: SimSecrets = field(repr=False)
    amf: bytes = b"\x80\x00"
    tuak: TuakParams | None = None
    state: SimState = SimState.INVENTORY
    group_id: int | None = None
    apn: str | None = None
    static_ip: str | None = None
    binding_mode: BindingMode | None = None
    roaming: Roaming | None = None
    auth_method: AuthMethod = AuthMethod.FIVEG_AKA
    sqn_state: str = field(default_factory=initial_sqn_state)

    def __post_init__(self) -> None:
        if len(self.amf) != 2:
            raise InvalidInput("AMF must be 16 bits", field="amf")
        algorithm = self.secrets.op_kind.algorithm
        if algorithm is Algorithm.TUAK and self.tuak is None:
            object.__setattr__(self, "tuak", TuakParams())
        if algorithm is Algorithm.MILENAGE and self.tuak is not None:
            raise InvalidInput("TUAK parameters given for a MILENAGE SIM", field="tuak")
        if self.static_ip is not None:
            object.__setattr__(self, "static_ip", _address(self.static_ip))

    @property
    def algorithm(self) -> Algorithm:
        return self.secrets.op_kind.algorithm


#: States a bulk action may move SIMs to. Termination releases addresses and
#: bindings per SIM and is final, so it stays a one-SIM action.
BULK_TARGETS = frozenset({SimState.ACTIVE, SimState.SUSPENDED})
#: SIMs per statement of a bulk action (well under SQLite's bound-parameter limit).
_BULK_CHUNK = 500


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What one bulk call did: SIMs changed, and the ones left alone with why."""

    changed: int
    skipped: dict[str, str]


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError as exc:
        raise InvalidInput(f"not an IP address: {text!r}", field="static_ip") from exc


_SIM_COLUMNS = (
    "iccid, imsi, mnc_length, tenant_id, state, algorithm, algo_params, op_kind, amf,"
    " group_id, apn, static_ip, binding_mode, roaming, created_at, updated_at, auth_method"
)
_INSERT_SIM = (
    "INSERT INTO sub_sims (iccid, imsi, mnc_length, tenant_id, state, algorithm, algo_params,"
    " op_kind, k_sealed, op_sealed, amf, sqn_state, sqn_version, group_id, apn, static_ip,"
    " binding_mode, roaming, created_at, updated_at, auth_method)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?,?,?,?)"
)


def _sim_from_row(row: Sequence[Any]) -> Sim:
    algorithm = Algorithm(row[5])
    params = json.loads(row[6])
    return Sim(
        iccid=Iccid(str(row[0])),
        imsi=Imsi(str(row[1]), int(row[2])),
        tenant_id=str(row[3]),
        state=SimState(row[4]),
        algorithm=algorithm,
        tuak=TuakParams.from_json(params) if algorithm is Algorithm.TUAK else None,
        op_kind=OpKind(row[7]),
        amf=bytes.fromhex(str(row[8])),
        group_id=None if row[9] is None else int(row[9]),
        apn=None if row[10] is None else str(row[10]),
        static_ip=None if row[11] is None else str(row[11]),
        binding_mode=None if row[12] is None else BindingMode(row[12]),
        roaming=Roaming.from_text(row[13]),
        created_at=datetime.fromisoformat(str(row[14])),
        updated_at=datetime.fromisoformat(str(row[15])),
        auth_method=AuthMethod(row[16]),
    )


class Inventory:
    """SIMs, devices, groups, APNs and attach policy of every tenant, over one store."""

    __slots__ = ("_audit", "_clock", "_db", "_keyring", "_listeners", "_tenants", "allocations",
                 "changes")

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._tenants = TenantStore(db)
        self.allocations = Allocations(db, audit, clock)
        self._listeners: list[Listener] = []
        self.changes = ChangeFeed(db)

    def __repr__(self) -> str:
        return f"Inventory({self._db!r})"

    @property
    def db(self) -> Database:
        return self._db

    @property
    def audit(self) -> AuditLog:
        return self._audit

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def now(self) -> datetime:
        return self._clock()

    # -- change notification -------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, item)`` after each write of this process commits."""
        self._listeners.append(listener)

    def notify(self, kind: str, item: str) -> None:
        for listener in self._listeners:
            listener(kind, item)

    def _write(self, kind: str, item: str) -> None:
        self.changes.record(kind, item)

    def require_tenant(self, tenant_id: str) -> None:
        self._tenants.get_tenant(tenant_id)

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
        self._db.executemany(_INSERT_SIM, rows)

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
            self._check_group(tenant_id, spec.group_id)
        now = self._clock().isoformat()
        with self._db.transaction():
            self._check_unique(spec)
            if spec.static_ip is not None:
                self._check_static_ip(spec.static_ip, spec.iccid.value, spec.imsi.value)
            self._db.execute(_INSERT_SIM, self.seal_row(spec, tenant_id, now))
            self._write("sim", spec.imsi.value)
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
            f"SELECT {_SIM_COLUMNS} FROM sub_sims WHERE iccid = ?",
            (iccid.value,),
        )
        if row is None:
            raise missing_sim(iccid)
        return _sim_from_row(row)

    def find_sim(self, imsi: Imsi) -> Sim | None:
        row = self._db.query_one(
            f"SELECT {_SIM_COLUMNS} FROM sub_sims WHERE imsi = ?",
            (imsi.value,),
        )
        return None if row is None else _sim_from_row(row)

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
            f"SELECT {_SIM_COLUMNS} FROM sub_sims WHERE {' AND '.join(clauses)}"
            " ORDER BY iccid LIMIT ?"
        )
        return [_sim_from_row(r) for r in self._db.query(sql, [*params, limit])]

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
            self._write("sim", sim.imsi.value)
            released: list[str] = []
            if target is SimState.TERMINATED:
                # A terminated SIM gives back its address and device bindings.
                self._db.execute("DELETE FROM sub_leases WHERE imsi = ?", (sim.imsi.value,))
                self._write("lease", sim.imsi.value)
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
        of that tenant). The lowest ICCIDs go first; Conflict when the stock holds
        fewer, and nothing moves. :meth:`return_stock` undoes it.
        """
        if not 1 <= count <= 1_000_000:
            raise InvalidInput("count must be between 1 and 1000000", field="count")
        self.require_tenant(tenant_id)
        if apn is not None:
            self.get_apn(tenant_id, apn)
        moved: list[Sim] = []
        with self._db.transaction():
            rows = self._db.query(
                f"SELECT {_SIM_COLUMNS} FROM sub_sims WHERE tenant_id = ? AND state = ?"
                " ORDER BY iccid LIMIT ?", (stock_tenant, str(SimState.INVENTORY), count))
            if len(rows) < count:
                raise Conflict(f"the SIM stock holds {len(rows)} SIMs, {count} needed",
                               reason="stock-exhausted")
            now = self._clock().isoformat()
            for row in rows:
                sim = _sim_from_row(row)
                changed = self._db.execute(
                    "UPDATE sub_sims SET tenant_id = ?, state = ?, apn = ?, updated_at = ?"
                    " WHERE iccid = ? AND tenant_id = ? AND state = ?",
                    (tenant_id, str(SimState.ACTIVE), apn, now, sim.iccid.value, stock_tenant,
                     str(SimState.INVENTORY)))
                if changed != 1:
                    raise Conflict("the SIM stock changed concurrently; retry")
                self._write("sim", sim.imsi.value)
                moved.append(sim)
            self._audit.append(
                actor=actor, action="sim.allocate", subject=f"tenant:{tenant_id}",
                outcome="success", reason=reason, tenant_id=tenant_id,
                details={"from": stock_tenant, "count": count, "apn": apn,
                         "iccids": [sim.iccid.value for sim in moved]})
        for sim in moved:
            self.notify("sim", sim.imsi.value)
        return [sim.iccid for sim in moved]

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
                self._write("sim", sim.imsi.value)
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
            self._check_group(sim.tenant_id, group_id)
            values["group_id"] = group_id
        if apn is not None:
            self.get_apn(sim.tenant_id, apn)
            values["apn"] = apn
        if static_ip is not None:
            values["static_ip"] = _address(static_ip)
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
            self._write("sim", sim.imsi.value)
            self._audit.append(
                actor=actor, action="sim.update", subject=f"sim:{iccid}", outcome="success",
                tenant_id=sim.tenant_id,
                details=dict(values.items()),
            )
        self.notify("sim", sim.imsi.value)
        return self.get_sim(iccid)

    def _bulk_rows(
        self, iccids: Sequence[str], tenant_id: str | None
    ) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
        """(iccid, imsi, state, tenant) of each listed SIM the caller may see, and the misses."""
        found: list[tuple[str, str, str, str]] = []
        for start in range(0, len(iccids), _BULK_CHUNK):
            chunk = list(iccids[start:start + _BULK_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.query(
                f"SELECT iccid, imsi, state, tenant_id FROM sub_sims WHERE iccid IN ({marks})",
                chunk,
            )
            found.extend((str(a), str(b), str(c), str(d)) for a, b, c, d in rows
                         if tenant_id is None or d == tenant_id)
        seen = {row[0] for row in found}
        # Another tenant's SIM is reported exactly like a missing one.
        return found, {i: "no such SIM" for i in iccids if i not in seen}

    def transition_many(
        self, iccids: Sequence[str], target: SimState, *, actor: str, reason: str = "",
        tenant_id: str | None = None,
    ) -> BulkOutcome:
        """Move many SIMs to ``target`` in one transaction, one audit record per SIM.

        ``tenant_id`` limits the action to that tenant's SIMs (others count as
        missing). A SIM whose life cycle forbids the move, or already in
        ``target``, is skipped with the reason; the rest change together.
        """
        if target not in BULK_TARGETS:
            raise InvalidInput(f"bulk actions cannot move SIMs to {target}", field="state")
        rows, skipped = self._bulk_rows(iccids, tenant_id)
        updates: list[tuple[str, str, str, str]] = []
        entries: list[AuditEntry] = []
        now = self._clock()
        stamp = now.isoformat()
        for iccid, imsi, state, owner in rows:
            current = SimState(state)
            if current is target:
                skipped[iccid] = f"already {target}"
                continue
            try:
                check_transition(current, target)
            except InvalidTransition as exc:
                skipped[iccid] = exc.detail
                continue
            updates.append((str(target), stamp, iccid, state))
            entries.append(AuditEntry(
                actor, "sim.transition", f"sim:{iccid}", "success",
                reason or f"{current}->{target}", owner,
                {"from": state, "to": str(target), "imsi": imsi, "bulk": True}, now,
            ))
        if updates:
            with self._db.transaction():
                self._db.executemany(
                    "UPDATE sub_sims SET state = ?, updated_at = ? WHERE iccid = ? AND state = ?",
                    updates,
                )
                self._write("sim", "*")
                self._audit.append_many(entries)
            self.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)

    def move_group_many(
        self, iccids: Sequence[str], group_id: int, *, actor: str,
        tenant_id: str | None = None,
    ) -> BulkOutcome:
        """Put many SIMs in device group ``group_id`` (SIMs of the group's tenant only)."""
        group = self.get_group(group_id)
        if tenant_id is not None and group.tenant_id != tenant_id:
            raise NotFound(f"no device group {group_id}", group_id=group_id)
        rows, skipped = self._bulk_rows(iccids, tenant_id)
        updates: list[tuple[int, str, str]] = []
        entries: list[AuditEntry] = []
        now = self._clock()
        for iccid, _imsi, _state, owner in rows:
            if owner != group.tenant_id:
                skipped[iccid] = "the group belongs to another tenant"
                continue
            updates.append((group_id, now.isoformat(), iccid))
            entries.append(AuditEntry(actor, "sim.update", f"sim:{iccid}", "success", "",
                                      owner, {"group_id": group_id, "bulk": True}, now))
        if updates:
            with self._db.transaction():
                self._db.executemany(
                    "UPDATE sub_sims SET group_id = ?, updated_at = ? WHERE iccid = ?", updates)
                self._write("sim", "*")
                self._audit.append_many(entries)
            self.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)

    def apply_policy_many(
        self, iccids: Sequence[str], *, actor: str, binding_mode: BindingMode | None = None,
        roaming: Roaming | None = None, tenant_id: str | None = None,
    ) -> BulkOutcome:
        """Set the attach policy (binding mode, roaming rule) of many SIMs in one transaction.

        The same change as :meth:`update_sim` for each SIM, one audit record per SIM:
        a new binding mode drops the SIM's bindings (learned again on next use).
        ``tenant_id`` limits the action to that tenant's SIMs (others count as missing).
        """
        values: dict[str, str] = {}
        if binding_mode is not None:
            values["binding_mode"] = str(binding_mode)
        if roaming is not None:
            values["roaming"] = roaming.to_text()
        if not values:
            raise InvalidInput("choose a binding mode or a roaming rule to apply",
                               field="binding_mode")
        rows, skipped = self._bulk_rows(iccids, tenant_id)
        now = self._clock()
        assignments = ", ".join(f"{name} = ?" for name in values)
        updates = [(*values.values(), now.isoformat(), iccid) for iccid, _i, _s, _t in rows]
        entries = [AuditEntry(actor, "sim.update", f"sim:{iccid}", "success", "", owner,
                              {**values, "bulk": True}, now)
                   for iccid, _imsi, _state, owner in rows]
        if updates:
            with self._db.transaction():
                self._db.executemany(
                    f"UPDATE sub_sims SET {assignments}, updated_at = ? WHERE iccid = ?",
                    updates)
                if "binding_mode" in values:
                    for start in range(0, len(rows), _BULK_CHUNK):
                        chunk = [r[0] for r in rows[start:start + _BULK_CHUNK]]
                        marks = ",".join("?" * len(chunk))
                        self._db.execute(
                            f"DELETE FROM sub_bindings WHERE iccid IN ({marks})", chunk)
                self._write("sim", "*")
                self._audit.append_many(entries)
            self.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)

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
            self._write("binding", iccid.value)
            for imei in imeis:
                self._write("binding-imei", imei)
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

    def open_secrets(self, iccid: Iccid) -> SimSecrets:
        """Unseal K and OP/OPc of a SIM (only the AuC calls this)."""
        row = self._db.query_one(
            "SELECT op_kind, k_sealed, op_sealed FROM sub_sims WHERE iccid = ?", (iccid.value,)
        )
        if row is None:
            raise missing_sim(iccid)
        kind = OpKind(row[0])
        k = self._keyring.open(bytes(row[1]), secret_aad(iccid.value, "k"))
        op = self._keyring.open(bytes(row[2]), secret_aad(iccid.value, str(kind)))
        return SimSecrets(k, op, kind)

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
        self.require_tenant(tenant_id)
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("group name must be 1-200 characters", field="name")
        with self._db.transaction():
            if self._db.query_one(
                "SELECT id FROM sub_groups WHERE tenant_id = ? AND name = ?", (tenant_id, name)
            ):
                raise Conflict(f"group {name!r} exists", tenant_id=tenant_id)
            group_id = self._db.insert_returning_id(
                "INSERT INTO sub_groups (tenant_id, name, binding_mode, swap_action, roaming,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    name,
                    str(binding_mode) if binding_mode else None,
                    str(swap_action) if swap_action else None,
                    roaming.to_text() if roaming else None,
                    self._clock().isoformat(),
                ),
            )
            self._write("group", str(group_id))
            self._audit.append(
                actor=actor, action="group.create", subject=f"group:{group_id}",
                outcome="success", tenant_id=tenant_id, details={"name": name},
            )
        self.notify("group", str(group_id))
        return self.get_group(group_id)

    def get_group(self, group_id: int) -> DeviceGroup:
        row = self._db.query_one(
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
        rows = self._db.query(
            "SELECT id FROM sub_groups WHERE tenant_id = ? ORDER BY id", (tenant_id,)
        )
        return [self.get_group(int(r[0])) for r in rows]

    def _check_group(self, tenant_id: str, group_id: int) -> None:
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
        self.require_tenant(tenant_id)
        if imeisv is not None and imeisv.imei != imei:
            raise InvalidInput("IMEISV belongs to another IMEI", field="imeisv")
        if group_id is not None:
            self._check_group(tenant_id, group_id)
        with self._db.transaction():
            # Devices are per tenant (docs/decisions/api-tenant-existence.md): only the
            # tenant's own inventory is checked, so another tenant's is never revealed.
            if self._db.query_one("SELECT imei FROM sub_devices WHERE tenant_id = ? AND imei = ?",
                                  (tenant_id, imei.value)):
                raise Conflict("a device with this IMEI exists", imei=imei.value)
            self._db.execute(
                "INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id, label,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    imei.value,
                    imeisv.value if imeisv else None,
                    imei.tac.value,
                    tenant_id,
                    group_id,
                    label[:200],
                    self._clock().isoformat(),
                ),
            )
            self._write("device", imei.value)
            self._audit.append(
                actor=actor, action="device.register", subject=f"device:{imei}",
                outcome="success", tenant_id=tenant_id,
            )
        self.notify("device", imei.value)
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
        row = self._db.query_one(sql + " ORDER BY tenant_id LIMIT 1", params)
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
        rows = self._db.query(
            "SELECT imei FROM sub_devices WHERE tenant_id = ? AND imei > ? ORDER BY imei LIMIT ?",
            (tenant_id, after, limit),
        )
        return [self.get_device(Imei(str(r[0])), tenant_id) for r in rows]

    # -- APNs ----------------------------------------------------------------

    def create_apn(
        self, tenant_id: str, name: str, *, actor: str, pool: str | None = None,
        own_allocation: bool = False,
    ) -> Apn:
        """Create a tenant's APN; its pool must lie in the tenant's networks
        (``own_allocation``) or outside every other tenant's (the operator)."""
        self.require_tenant(tenant_id)
        name = name.strip().lower()
        if not name or len(name) > 100 or not all(c.isalnum() or c in "-." for c in name):
            raise InvalidInput("APN name must be letters, digits, '-' and '.'", field="name")
        network = None
        if pool is not None:
            network = parse_network(pool, "pool")
            self.allocations.check_pool(tenant_id, network, own=own_allocation)
        with self._db.transaction():
            if self._db.query_one(
                "SELECT id FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name)
            ):
                raise Conflict(f"APN {name!r} exists", tenant_id=tenant_id)
            self._db.execute(
                "INSERT INTO sub_apns (tenant_id, name, pool, created_at) VALUES (?, ?, ?, ?)",
                (tenant_id, name, str(network) if network else None, self._clock().isoformat()),
            )
            self._audit.append(
                actor=actor, action="apn.create", subject=f"apn:{tenant_id}/{name}",
                outcome="success", tenant_id=tenant_id,
                details={"pool": str(network) if network else None},
            )
        return Apn(tenant_id, name, network)

    def delete_apn(self, tenant_id: str, name: str, *, actor: str, reason: str = "") -> None:
        """Remove an APN no SIM uses (Conflict otherwise); NotFound if there is none."""
        self.get_apn(tenant_id, name)
        with self._db.transaction():
            if self._db.query_one(
                "SELECT 1 FROM sub_sims WHERE tenant_id = ? AND apn = ?", (tenant_id, name)
            ):
                raise Conflict(f"APN {name!r} is in use by SIMs", tenant_id=tenant_id)
            self._db.execute(
                "DELETE FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name))
            self._audit.append(
                actor=actor, action="apn.delete", subject=f"apn:{tenant_id}/{name}",
                outcome="success", reason=reason, tenant_id=tenant_id)

    def get_apn(self, tenant_id: str, name: str) -> Apn:
        row = self._db.query_one(
            "SELECT pool FROM sub_apns WHERE tenant_id = ? AND name = ?", (tenant_id, name)
        )
        if row is None:
            raise NotFound(f"no APN {name!r}", tenant_id=tenant_id)
        return Apn(tenant_id, name, None if row[0] is None else ipaddress.ip_network(row[0]))

    def list_apns(self, tenant_id: str) -> list[Apn]:
        rows = self._db.query(
            "SELECT name FROM sub_apns WHERE tenant_id = ? ORDER BY name", (tenant_id,)
        )
        return [self.get_apn(tenant_id, str(r[0])) for r in rows]

    # -- attach policy ---------------------------------------------------------

    def policy(self, tenant_id: str) -> AttachPolicy:
        """The tenant's attach policy (defaults when none was set)."""
        row = self._db.query_one(
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
        self.require_tenant(policy.tenant_id)
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
            self._clock().isoformat(),
            policy.tenant_id,
        )
        with self._db.transaction():
            changed = self._db.execute(
                "UPDATE sub_policies SET binding_mode = ?, swap_action = ?, unknown_device = ?,"
                " roaming = ?, webhook_url = ?, updated_at = ? WHERE tenant_id = ?",
                values,
            )
            if changed == 0:
                self._db.execute(
                    "INSERT INTO sub_policies (binding_mode, swap_action, unknown_device,"
                    " roaming, webhook_url, updated_at, tenant_id) VALUES (?,?,?,?,?,?,?)",
                    values,
                )
            self._write("policy", policy.tenant_id)
            self._audit.append(
                actor=actor, action="attach-policy.set", subject=f"tenant:{policy.tenant_id}",
                outcome="success", tenant_id=policy.tenant_id,
                details={k: v for k, v in policy.to_json().items() if k != "webhook_url"},
            )
        self.notify("policy", policy.tenant_id)
        return self.policy(policy.tenant_id)
