"""Bulk actions on many SIMs at once: life-cycle moves, device group, attach policy.

Each action runs in one transaction with one audit record per SIM
(``docs/subscriber.md``); a SIM the caller may not see is reported exactly
like a missing one (``docs/decisions/api-tenant-existence.md``), and a SIM the
action cannot apply to is skipped with the reason rather than failing the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simtrust.audit import AuditEntry
from simtrust.errors import InvalidInput, InvalidTransition, NotFound
from simtrust.subscriber._core import InventoryCore
from simtrust.subscriber._devices import DeviceRegistry
from simtrust.subscriber._model import BindingMode, Roaming, SimState, check_transition

__all__ = ["BULK_TARGETS", "BulkActions", "BulkOutcome"]

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


class BulkActions:
    """The bulk SIM actions of the inventory (``Inventory.transition_many`` and friends)."""

    __slots__ = ("_core", "_devices")

    def __init__(self, core: InventoryCore, devices: DeviceRegistry) -> None:
        self._core = core
        self._devices = devices

    def __repr__(self) -> str:
        return f"BulkActions({self._core!r})"

    def _bulk_rows(
        self, iccids: Sequence[str], tenant_id: str | None
    ) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
        """(iccid, imsi, state, tenant) of each listed SIM the caller may see, and the misses."""
        found: list[tuple[str, str, str, str]] = []
        for start in range(0, len(iccids), _BULK_CHUNK):
            chunk = list(iccids[start:start + _BULK_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._core.db.query(
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
        now = self._core.now()
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
            with self._core.db.transaction():
                self._core.db.executemany(
                    "UPDATE sub_sims SET state = ?, updated_at = ? WHERE iccid = ? AND state = ?",
                    updates,
                )
                self._core.record_change("sim", "*")
                self._core.audit.append_many(entries)
            self._core.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)

    def move_group_many(
        self, iccids: Sequence[str], group_id: int, *, actor: str,
        tenant_id: str | None = None,
    ) -> BulkOutcome:
        """Put many SIMs in device group ``group_id`` (SIMs of the group's tenant only)."""
        group = self._devices.get_group(group_id)
        if tenant_id is not None and group.tenant_id != tenant_id:
            raise NotFound(f"no device group {group_id}", group_id=group_id)
        rows, skipped = self._bulk_rows(iccids, tenant_id)
        updates: list[tuple[int, str, str]] = []
        entries: list[AuditEntry] = []
        now = self._core.now()
        for iccid, _imsi, _state, owner in rows:
            if owner != group.tenant_id:
                skipped[iccid] = "the group belongs to another tenant"
                continue
            updates.append((group_id, now.isoformat(), iccid))
            entries.append(AuditEntry(actor, "sim.update", f"sim:{iccid}", "success", "",
                                      owner, {"group_id": group_id, "bulk": True}, now))
        if updates:
            with self._core.db.transaction():
                self._core.db.executemany(
                    "UPDATE sub_sims SET group_id = ?, updated_at = ? WHERE iccid = ?", updates)
                self._core.record_change("sim", "*")
                self._core.audit.append_many(entries)
            self._core.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)

    def apply_policy_many(
        self, iccids: Sequence[str], *, actor: str, binding_mode: BindingMode | None = None,
        roaming: Roaming | None = None, tenant_id: str | None = None,
    ) -> BulkOutcome:
        """Set the attach policy (binding mode, roaming rule) of many SIMs in one transaction.

        The same change as :meth:`Inventory.update_sim` for each SIM, one audit record per SIM:
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
        now = self._core.now()
        assignments = ", ".join(f"{name} = ?" for name in values)
        updates = [(*values.values(), now.isoformat(), iccid) for iccid, _i, _s, _t in rows]
        entries = [AuditEntry(actor, "sim.update", f"sim:{iccid}", "success", "", owner,
                              {**values, "bulk": True}, now)
                   for iccid, _imsi, _state, owner in rows]
        if updates:
            with self._core.db.transaction():
                self._core.db.executemany(
                    f"UPDATE sub_sims SET {assignments}, updated_at = ? WHERE iccid = ?",
                    updates)
                if "binding_mode" in values:
                    for start in range(0, len(rows), _BULK_CHUNK):
                        chunk = [r[0] for r in rows[start:start + _BULK_CHUNK]]
                        marks = ",".join("?" * len(chunk))
                        self._core.db.execute(
                            f"DELETE FROM sub_bindings WHERE iccid IN ({marks})", chunk)
                self._core.record_change("sim", "*")
                self._core.audit.append_many(entries)
            self._core.notify("sim", "*")
        return BulkOutcome(len(updates), skipped)
