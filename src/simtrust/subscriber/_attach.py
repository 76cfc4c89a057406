"""Attach decisions: may this SIM, in this equipment, attach in this serving network?

The checks, in order (the first failing one decides): the SIM is known and in a
state that may attach (``active``, or ``test``); the equipment is not on the
blocklist (IMEI, then TAC ranges); the serving PLMN is the home PLMN or one the
SIM's roaming rule permits; the IMEI–ICCID binding (docs/subscriber.md,
"Binding"): exact pair > IMEI-only > ICCID-only > policy for unknowns. A SIM in
another device than the one it is locked to is a SIM-swap event: an audit
record, an alert (webhook, MQTT) and the tenant's action (deny,
allow-and-alert, suspend).

Decisions run from an in-memory cache of SIMs, bindings, devices, groups,
policies and the blocklist. Writes go through the store; local writes drop the
cached items at once, and the change feed (``sub_changes``) is polled every
``sync_interval`` seconds for writes of other processes.

Acknowledged means durable: a decision is returned only once its audit record is
on disk (docs/decisions/attach-durable-audit.md). Plain decisions go through a
group commit (:class:`simtrust.store.GroupCommit`): decisions made at the same
time share one transaction and one fsync, written as ``attach.decisions`` batch
records in ``batch`` mode or one record each in ``record`` mode
(:mod:`._decision_log`); decisions that change state are their own record,
appended durably in the transaction of their change. A caller deciding a burst
of requests on one thread wraps them in :meth:`AttachEngine.deferred_audit`:
their records join the group commit as one submission when the block ends,
and the block ends only once they are on disk (the caller answers after it).
:meth:`AttachEngine.decide_held` decides from memory alone for an event loop, or
declines (a cache miss or a write); its rows are stored later the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from simtrust.alerts import AlertDispatcher
from simtrust.audit import AuditEntry
from simtrust.domain import Iccid, Imei, ImeiSv, Imsi, Plmn, parse_equipment
from simtrust.errors import Conflict, InvalidInput, SimtrustError
from simtrust.store import GroupCommit
from simtrust.subscriber._addresses import AddressBook
from simtrust.subscriber._alerts import SwapAlert
from simtrust.subscriber._blocklist import Blocklist, BlocklistIndex
from simtrust.subscriber._changes import OVERLAP
from simtrust.subscriber._decision import STATE_REASON, AttachDecision, Reason
from simtrust.subscriber._decision_log import (
    DecisionRecorder,
    DecisionRow,
    batch_entries,
    record_entry,
    store_decisions,
)
from simtrust.subscriber._inventory import Inventory
from simtrust.subscriber._model import (
    AttachPolicy,
    BindingMode,
    DeviceGroup,
    SimState,
    SwapAction,
    UnknownDevice,
)
from simtrust.subscriber._sim_view import SimView, read_views

__all__ = ["AttachDecision", "AttachEngine", "Reason"]


_MISSING: Any = object()
# the decisions of a deferred_audit block held for commit_deferred, and their rows
DeferredDecisions = tuple[list[tuple[str, DecisionRow]], list[AttachDecision]]


class _WouldBlock(Exception):
    """Deciding needs the store (a cache miss, a write, the change feed due)."""


class _FeedDue(_WouldBlock):
    """The change feed is due: raised before the decision is counted."""


class AttachEngine:
    """Decides attaches from a coherent cache; audit group-committed before each answer."""

    def __init__(
        self,
        inventory: Inventory,
        blocklist: Blocklist,
        addresses: AddressBook,
        alerts: AlertDispatcher[SwapAlert],
        *,
        clock: Callable[[], datetime] | None = None,
        audit_mode: Literal["batch", "record"] = "batch",
        sync_interval: float = 0.5,
        max_cached: int = 500_000,
    ) -> None:
        self._inv = inventory
        self._blocklist = blocklist
        self.addresses = addresses
        self.alerts = alerts
        self._clock = clock or inventory.now
        if audit_mode not in ("batch", "record"):
            raise InvalidInput("audit_mode must be batch or record", field="audit_mode")
        self._audit_mode = audit_mode
        self._audit: GroupCommit[tuple[str, DecisionRow]] = GroupCommit(self._write_audit)
        self._sync_interval = sync_interval
        self._max_cached = max_cached
        self._sims: dict[str, SimView | None] = {}
        self._sim_bindings: dict[str, dict[str, BindingMode]] = {}
        self._dev_bindings: dict[str, dict[str, BindingMode]] = {}
        self._devices: dict[str, dict[str, int | None]] = {}
        self._groups: dict[int, DeviceGroup] = {}
        self._policies: dict[str, AttachPolicy] = {}
        self._index: BlocklistIndex | None = None
        self._serving: dict[str, str] = {}
        self._bind_lock = threading.RLock()
        self._seen_seq = inventory.changes.head()
        self._applied: set[int] = set()
        self._next_sync = time.monotonic() + sync_interval
        self.decisions = 0
        self._listeners: list[Callable[[AttachDecision], None]] = []
        self._recorders: list[DecisionRecorder] = []
        self._deferred = threading.local()
        inventory.subscribe(self._on_change)

    def __repr__(self) -> str:
        return f"AttachEngine(cached_sims={len(self._sims)}, audit={self._audit!r})"

    def add_listener(self, listener: Callable[[AttachDecision], None]) -> None:
        """Call ``listener(decision)`` after each recorded decision (not dry runs).

        The seam for services above this layer (streams annotate the data of the
        SIM); a listener runs on the deciding thread, so it must be quick.
        """
        self._listeners.append(listener)

    def add_recorder(self, recorder: DecisionRecorder) -> None:
        """Call ``recorder(rows)`` with recorded decisions' rows (not dry runs) inside the
        transaction that stores their audit records: what it writes commits with them."""
        self._recorders.append(recorder)

    # -- the decision ----------------------------------------------------------

    def decide(
        self,
        imsi: Imsi | str,
        equipment: Imei | ImeiSv | str,
        serving_plmn: Plmn | str,
        *,
        actor: str = "attach",
        dry_run: bool = False,
    ) -> AttachDecision:
        """Decide one attach. ``dry_run`` evaluates without binding, actions, alerts or audit."""
        imsi_v = imsi if isinstance(imsi, Imsi) else Imsi(imsi)
        if isinstance(equipment, str):
            equipment = parse_equipment(equipment)
        imei = equipment.imei if isinstance(equipment, ImeiSv) else equipment
        plmn = serving_plmn if isinstance(serving_plmn, Plmn) else Plmn.parse(serving_plmn)
        if time.monotonic() >= self._next_sync:
            if getattr(self._deferred, "inline", False):
                raise _FeedDue
            self.sync()
        for _attempt in range(3):
            try:
                return self._decide(imsi_v.value, imei, plmn, actor, dry_run)
            except Conflict:
                # Another writer bound this SIM or device between our read and write.
                self._drop_bindings(imsi_v.value, imei.value)
        return self._decide(imsi_v.value, imei, plmn, actor, dry_run)

    def decide_held(
        self, imsi: Imsi | str, equipment: Imei | ImeiSv | str, serving_plmn: Plmn | str,
        *, actor: str = "attach", dry_run: bool = False,
    ) -> tuple[AttachDecision, DeferredDecisions] | None:
        """:meth:`decide` from memory alone, for a thread that must not wait (an event
        loop): the decision and its audit rows, not yet stored (store them with
        :meth:`commit_deferred`, answer after it). None, with nothing done, when
        deciding needs the store (a cache miss, a binding, a SIM swap, a new lease,
        the change feed due): decide that one with :meth:`decide` on a thread."""
        held: list[DeferredDecisions] = []
        local = self._deferred
        local.inline = True
        try:
            with self.deferred_audit(held):
                decision = self.decide(imsi, equipment, serving_plmn, actor=actor,
                                       dry_run=dry_run)
        except _WouldBlock as declined:
            if not isinstance(declined, _FeedDue):
                self.decisions -= 1  # counted by _decide
            return None
        finally:
            local.inline = False
        return decision, held[0]

    def _may_block(self, needed: bool = True) -> None:
        """Stop a decision of :meth:`decide_held` where it would use the store."""
        if needed and getattr(self._deferred, "inline", False):
            raise _WouldBlock

    def _decide(
        self, imsi: str, imei: Imei, plmn: Plmn, actor: str, dry_run: bool
    ) -> AttachDecision:
        self.decisions += 1
        imei_s = imei.value
        sim = self._sim(imsi)
        if sim is None:
            return self._done(actor, dry_run, False, Reason.UNKNOWN_SIM,
                              "no SIM with this IMSI", imsi, imei_s, plmn)
        base = (imsi, imei_s, plmn)
        if sim.state is not SimState.ACTIVE and sim.state is not SimState.TEST:
            return self._done(actor, dry_run, False, STATE_REASON[sim.state],
                              f"SIM is {sim.state}", *base, sim)
        index = self._index if self._index is not None else self._load_index()
        blocked = index.match(imei_s[:14], sim.tenant_id)
        if blocked is not None:
            reason = Reason.IMEI_BLOCKED if blocked.kind == "imei" else Reason.TAC_BLOCKED
            return self._done(actor, dry_run, False, reason,
                              f"equipment blocklisted ({blocked.reason}, entry {blocked.entry_id})",
                              *base, sim)
        policy = self._policy(sim.tenant_id)
        group = self._group(sim.group_id) if sim.group_id is not None else None
        roaming = sim.roaming or (group.roaming if group else None) or policy.roaming
        if not roaming.permits(sim.home, plmn):
            return self._done(actor, dry_run, False, Reason.ROAMING,
                              f"roaming in {plmn} is not permitted", *base, sim)
        mode = sim.binding_mode or (group.binding_mode if group else None) or policy.binding_mode
        sim_bound = self._bindings_of_sim(sim.iccid)
        # 1. exact pair: this SIM and this device are bound to each other.
        if imei_s in sim_bound:
            return self._allow(actor, dry_run, Reason.OK, "bound pair", sim, imei_s, plmn)
        dev_bound = self._bindings_of_device(imei_s)
        # 2. IMEI-only: the device is locked to another SIM.
        locking = sorted(c for c, m in dev_bound.items() if m.locks_device and c != sim.iccid)
        if locking:
            event = self._swap_event(actor, dry_run, "device-with-new-sim", sim, imei_s, plmn,
                                     locking, "deny", policy)
            return self._done(actor, dry_run, False, Reason.DEVICE_BOUND,
                              "device is bound to another SIM", *base, sim, swap=True,
                              sync=event)
        # 3. ICCID-only: this SIM is locked to another device (SIM swap).
        locked_to = sorted(d for d, m in sim_bound.items() if m.locks_sim)
        if locked_to:
            action = (group.swap_action if group else None) or policy.swap_action
            return self._sim_swap(actor, dry_run, action, sim, imei_s, plmn, locked_to, policy)
        # 4. policy for unknowns.
        holders = self._device(imei_s)  # tenant -> group of each inventory listing it
        if not holders and policy.unknown_device is UnknownDevice.DENY:
            return self._done(actor, dry_run, False, Reason.UNKNOWN_DEVICE,
                              "device not in the tenant's inventory", *base, sim)
        if holders and sim.tenant_id not in holders:
            return self._done(actor, dry_run, False, Reason.FOREIGN_DEVICE,
                              "device belongs to another tenant", *base, sim)
        event = None
        if sim_bound:
            # Seen before in another device that does not lock it: still a swap event.
            event = self._swap_event(actor, dry_run, "sim-in-new-device", sim, imei_s, plmn,
                                     sorted(sim_bound), "allow", policy)
        if mode is BindingMode.NONE or sim.state is SimState.TEST:
            reason = Reason.OK_TEST if sim.state is SimState.TEST else Reason.OK
            return self._allow(actor, dry_run, reason, "no binding applies", sim, imei_s, plmn,
                               swap=bool(sim_bound), sync=event)
        if mode is BindingMode.EXACT_PAIR and dev_bound:
            return self._done(actor, dry_run, False, Reason.DEVICE_BOUND,
                              "exact-pair binding needs a device bound to no other SIM",
                              *base, sim, sync=event)
        if dry_run:
            return self._allow(actor, dry_run, Reason.WOULD_BIND, f"would bind ({mode})",
                               sim, imei_s, plmn)
        return self._bind(actor, mode, sim, imei_s, plmn, swap=bool(sim_bound), event=event)

    # -- outcomes --------------------------------------------------------------
    #
    # ``sync`` holds audit records that must be appended with the decision's own
    # record, at once and in one transaction (swap events, new bindings); plain
    # decisions join the group commit. Either way the record is on disk before
    # the decision is returned.

    def _allow(
        self, actor: str, dry_run: bool, reason: Reason, detail: str, sim: SimView,
        imei: str, plmn: Plmn, *, swap: bool = False, sync: list[AuditEntry] | None = None,
    ) -> AttachDecision:
        address = None
        if not dry_run and getattr(self._deferred, "inline", False):
            held, address = self.addresses.held_lease(sim.imsi, sim.apn, sim.static_ip)
            self._may_block(not held)
        elif not dry_run:
            try:
                address = self.addresses.assign(sim.imsi, sim.tenant_id, sim.apn, sim.static_ip)
            except SimtrustError as exc:
                return self._done(actor, dry_run, False, Reason.ADDRESS, exc.detail,
                                  sim.imsi, imei, plmn, sim, sync=sync)
        else:
            self._may_block()
            address = self.addresses.address_of(sim.imsi)
        return self._done(actor, dry_run, True, reason, detail, sim.imsi, imei, plmn, sim,
                          address=address, swap=swap, sync=sync)

    def _done(
        self, actor: str, dry_run: bool, allowed: bool, reason: Reason, detail: str,
        imsi: str, imei: str, plmn: Plmn, sim: SimView | None = None, *,
        address: str | None = None, swap: bool = False, sync: list[AuditEntry] | None = None,
    ) -> AttachDecision:
        decision = AttachDecision(
            allowed, str(reason), detail, imsi, imei, str(plmn),
            sim.iccid if sim else None, sim.tenant_id if sim else None, address, swap,
        )
        if dry_run:
            return decision
        if allowed:
            self._serving[imsi] = plmn.mcc
        row: DecisionRow = (
            self._clock().isoformat(), decision.tenant_id, decision.iccid, imsi, imei,
            decision.serving_plmn, "allow" if allowed else "deny", str(reason), address,
        )
        if sync is not None or self._inv.db.in_transaction:
            # Inside a transaction (a new binding) the record commits with it; the
            # group's leader could not take the store while this thread holds it.
            store_decisions(self._inv.db, self._inv.audit,
                            [*(sync or []), record_entry(actor, row)], [row], self._recorders)
        else:
            rows: list[tuple[str, DecisionRow]] | None = getattr(self._deferred, "rows", None)
            if rows is not None:
                rows.append((actor, row))
                self._deferred.decisions.append(decision)
                return decision
            self._audit.submit((actor, row))
        for listener in self._listeners:
            listener(decision)
        return decision

    @contextmanager
    def deferred_audit(self, held: list[DeferredDecisions] | None = None) -> Iterator[None]:
        """Plain decisions made on this thread in the block join the group commit as one
        submission when it ends; the block ends once they are on disk (answer them after
        it; if it raises, answer none). State changes are stored at once, as always;
        listeners hear of deferred decisions after the commit; nested blocks join.
        With ``held`` the block's decisions are appended to it instead, not yet stored:
        :meth:`commit_deferred` stores them later (on any thread)."""
        local = self._deferred
        if getattr(local, "rows", None) is not None:
            yield
            return
        local.rows = []
        local.decisions = []
        try:
            yield
        finally:
            rows, decisions = local.rows, local.decisions
            local.rows = local.decisions = None
        if held is None:
            self.commit_deferred([(rows, decisions)])
        else:
            held.append((rows, decisions))

    def commit_deferred(self, held: Sequence[DeferredDecisions]) -> None:
        """Store held blocks' decisions in one group-commit submission (returns once they
        are on disk), then tell the listeners."""
        self._audit.submit_many([row for rows, _decisions in held for row in rows])
        for _rows, decisions in held:
            for decision in decisions:
                for listener in self._listeners:
                    listener(decision)

    def _bind(
        self, actor: str, mode: BindingMode, sim: SimView, imei: str, plmn: Plmn, *,
        swap: bool, event: list[AuditEntry] | None,
    ) -> AttachDecision:
        self._may_block()
        inv = self._inv
        bound = AuditEntry(
            actor=actor, action="binding.create", subject=f"sim:{sim.iccid}",
            outcome="success", reason=str(mode), tenant_id=sim.tenant_id,
            details={"imei": imei, "mode": str(mode)}, at=self._clock(),
        )
        # Lease first, in its own transaction: the address book takes its lock before
        # the store's, so holding the store inside it here could deadlock.
        try:
            address = self.addresses.assign(sim.imsi, sim.tenant_id, sim.apn, sim.static_ip)
        except SimtrustError as exc:
            return self._done(actor, False, False, Reason.ADDRESS, exc.detail, sim.imsi, imei,
                              plmn, sim, sync=event)
        with self._bind_lock, inv.db.transaction(durable=True):
            inv.db.execute(
                "INSERT INTO sub_bindings (iccid, imei, mode, sim_lock, dev_lock, bound_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sim.iccid, imei, str(mode),
                 sim.iccid if mode.locks_sim else None,
                 imei if mode.locks_device else None,
                 self._clock().isoformat()),
            )
            inv.changes.record("binding", sim.iccid)
            inv.changes.record("binding-imei", imei)
            decision = self._done(actor, False, True, Reason.OK_BOUND,
                                  f"bound on first use ({mode})", sim.imsi, imei, plmn, sim,
                                  address=address, swap=swap, sync=[*(event or []), bound])
        self._drop_bindings(sim.imsi, imei, iccid=sim.iccid)
        return decision

    def _sim_swap(
        self, actor: str, dry_run: bool, action: SwapAction, sim: SimView, imei: str,
        plmn: Plmn, locked_to: list[str], policy: AttachPolicy,
    ) -> AttachDecision:
        base = (sim.imsi, imei, plmn)
        event = self._swap_event(actor, dry_run, "sim-in-new-device", sim, imei, plmn,
                                 locked_to, str(action), policy)
        if action is SwapAction.ALLOW_AND_ALERT:
            return self._allow(actor, dry_run, Reason.OK_SWAP_ALERTED,
                               "SIM is bound to another device; allowed and alerted",
                               sim, imei, plmn, swap=True, sync=event)
        if action is SwapAction.SUSPEND and not dry_run:
            self._inv.transition(Iccid(sim.iccid), SimState.SUSPENDED, actor=actor,
                                 reason="sim-swap")
            return self._done(actor, dry_run, False, Reason.SIM_SWAP_SUSPENDED,
                              "SIM is bound to another device; SIM suspended",
                              *base, sim, swap=True, sync=event)
        return self._done(actor, dry_run, False, Reason.SIM_SWAP,
                          "SIM is bound to another device", *base, sim, swap=True, sync=event)

    def _swap_event(
        self, actor: str, dry_run: bool, kind: str, sim: SimView, imei: str, plmn: Plmn,
        bound_to: list[str], action: str, policy: AttachPolicy,
    ) -> list[AuditEntry] | None:
        """Submit the alert; return its audit record (appended with the decision)."""
        if dry_run:
            return None
        self._may_block()
        at = self._clock()
        self.alerts.submit(SwapAlert(
            kind=kind, tenant_id=sim.tenant_id, imsi=sim.imsi, iccid=sim.iccid, imei=imei,
            bound_to=bound_to, serving_plmn=str(plmn), action=action,
            reason=kind, at=at.isoformat(), webhook_url=policy.webhook_url,
        ))
        return [AuditEntry(
            actor=actor, action="attach.sim-swap", subject=f"sim:{sim.iccid}",
            outcome="alert", reason=kind, tenant_id=sim.tenant_id,
            details={"imsi": sim.imsi, "imei": imei, "bound_to": bound_to,
                     "plmn": str(plmn), "action": action},
            at=at,
        )]

    # -- audit group commit -------------------------------------------------------

    @property
    def group_commit(self) -> GroupCommit[tuple[str, DecisionRow]]:
        """The group commit of plain decisions (its ``batches``/``items`` counters)."""
        return self._audit

    def _write_audit(self, queued: Sequence[tuple[str, DecisionRow]]) -> None:
        """Write decisions made at the same time: one transaction, one fsync."""
        if self._audit_mode == "batch":
            entries = batch_entries(queued)
        else:
            entries = [record_entry(actor, row) for actor, row in queued]
        store_decisions(self._inv.db, self._inv.audit, entries,
                        [row for _actor, row in queued], self._recorders)

    # -- cache -------------------------------------------------------------------

    def sim_view(self, imsi: str) -> SimView | None:
        """The cached view of a SIM (tenant, state, APN, group, ...), or None."""
        return self._sim(imsi)

    def may_roam(self, imsi: str, plmn: Plmn) -> bool:
        """Whether the SIM's roaming rule (SIM, else group, else tenant) permits ``plmn``."""
        sim = self._sim(imsi)
        if sim is None:
            return False
        group = self._group(sim.group_id) if sim.group_id is not None else None
        roaming = (sim.roaming or (group.roaming if group else None)
                   or self._policy(sim.tenant_id).roaming)
        return roaming.permits(sim.home, plmn)

    def blocklist_index(self) -> BlocklistIndex:
        """The cached blocklist snapshot (reloaded after blocklist writes)."""
        return self._index if self._index is not None else self._load_index()

    def group_name(self, group_id: int | None) -> str | None:
        return None if group_id is None else self._group(group_id).name

    def serving_mcc(self, imsi: str) -> str | None:
        """The MCC of the network the SIM last attached in (allowed), as seen here."""
        return self._serving.get(imsi)

    def _sim(self, imsi: str) -> SimView | None:
        view = self._sims.get(imsi, _MISSING)
        if view is _MISSING:
            self._may_block()
            view = self._keep_views(read_views(self._inv.db, [imsi]))[imsi]
        return view  # type: ignore[no-any-return]

    def load_views(self, imsis: Sequence[str]) -> None:
        """Cache the views of those of ``imsis`` not cached, read in one query."""
        missing = [i for i in imsis if i not in self._sims]
        if missing:
            self._keep_views(read_views(self._inv.db, missing))

    def _keep_views(self, loaded: dict[str, SimView | None]) -> dict[str, SimView | None]:
        if len(self._sims) + len(loaded) > self._max_cached:
            self._sims.clear()
        self._sims.update(loaded)
        return loaded

    def _bindings_of_sim(self, iccid: str) -> dict[str, BindingMode]:
        found = self._sim_bindings.get(iccid)
        if found is None:
            self._may_block()
            found = {str(i): BindingMode(m) for i, m in self._inv.db.query(
                "SELECT imei, mode FROM sub_bindings WHERE iccid = ?", (iccid,)
            )}
            if len(self._sim_bindings) >= self._max_cached:
                self._sim_bindings.clear()
            self._sim_bindings[iccid] = found
        return found

    def _bindings_of_device(self, imei: str) -> dict[str, BindingMode]:
        found = self._dev_bindings.get(imei)
        if found is None:
            self._may_block()
            found = {str(c): BindingMode(m) for c, m in self._inv.db.query(
                "SELECT iccid, mode FROM sub_bindings WHERE imei = ?", (imei,)
            )}
            if len(self._dev_bindings) >= self._max_cached:
                self._dev_bindings.clear()
            self._dev_bindings[imei] = found
        return found

    def _device(self, imei: str) -> dict[str, int | None]:
        found = self._devices.get(imei)
        if found is not None:
            return found
        self._may_block()
        value = {str(t): None if g is None else int(g) for t, g in self._inv.db.query(
            "SELECT tenant_id, group_id FROM sub_devices WHERE imei = ?", (imei,)
        )}
        if len(self._devices) >= self._max_cached:
            self._devices.clear()
        self._devices[imei] = value
        return value

    def _group(self, group_id: int) -> DeviceGroup:
        group = self._groups.get(group_id)
        if group is None:
            self._may_block()
            group = self._groups[group_id] = self._inv.get_group(group_id)
        return group

    def _policy(self, tenant_id: str) -> AttachPolicy:
        policy = self._policies.get(tenant_id)
        if policy is None:
            self._may_block()
            policy = self._policies[tenant_id] = self._inv.policy(tenant_id)
        return policy

    def _load_index(self) -> BlocklistIndex:
        self._may_block()
        index = self._index = self._blocklist.index()
        return index

    def _drop_bindings(self, imsi: str, imei: str, *, iccid: str | None = None) -> None:
        view = self._sims.get(imsi)
        if iccid is None and view is not None:
            iccid = view.iccid
        if iccid is not None:
            self._sim_bindings.pop(iccid, None)
        self._dev_bindings.pop(imei, None)

    def _on_change(self, kind: str, item: str) -> None:
        if kind == "sim":
            if item == "*":
                self._sims.clear()
            else:
                self._sims.pop(item, None)
                self.addresses.forget(item)
        elif kind == "binding":
            self._sim_bindings.pop(item, None)
        elif kind == "binding-imei":
            self._dev_bindings.pop(item, None)
        elif kind == "device":
            self._devices.pop(item, None)
        elif kind == "group":
            self._groups.pop(int(item), None)
        elif kind == "policy":
            self._policies.pop(item, None)
        elif kind == "blocklist":
            self._index = None
        elif kind == "lease":
            self.addresses.forget(item, remote=True)

    def invalidate(self) -> None:
        """Drop every cached item (the next decisions reload from the store)."""
        self._sims.clear()
        self._sim_bindings.clear()
        self._dev_bindings.clear()
        self._devices.clear()
        self._groups.clear()
        self._policies.clear()
        self._index = None
        self.addresses.forget_all()

    def sync(self) -> int:
        """Apply changes other processes made since the last sync; return how many."""
        self._next_sync = time.monotonic() + self._sync_interval
        changes, reload_all = self._inv.changes.since(self._seen_seq)
        if reload_all:
            self.invalidate()
        applied = 0
        for seq, kind, item in changes:
            # The feed re-reads a window behind our position; apply each change once.
            if seq in self._applied:
                continue
            self._applied.add(seq)
            self._on_change(kind, item)
            self._seen_seq = max(self._seen_seq, seq)
            applied += 1
        horizon = self._seen_seq - 2 * OVERLAP
        if len(self._applied) > 4 * OVERLAP:
            self._applied = {seq for seq in self._applied if seq > horizon}
        return applied
