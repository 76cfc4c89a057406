"""Who pays an energy interval: a claim kept in the interval's row, so that every process
sharing the store settles an interval exactly once (docs/decisions/streams-energy-market.md).

A settler takes an interval with one conditional ``UPDATE`` (``cleared → paying``,
or a ``paying`` interval whose holder is gone), writing its claim id and a lease
end; every later write of the payment plan is conditional on the claim still
being its own, so a settler that lost its claim stops before it signs another
transfer. A holder is gone when the lease ended, when it was a process of this
host that no longer runs, or a claim of this process no longer in use (a
settlement that died with an exception). Plans are computed under a per-tenant
guard row written first in the transaction (a row lock in PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so two settlements of one
tenant never count the same deposit twice.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.errors import Conflict
from simtrust.store import Database

__all__ = ["LEASE_SECONDS", "ClaimLost", "SettleClaims"]

#: How long a claim holds without a write of its plan before another settler may take it.
LEASE_SECONDS = 120

_HOST = socket.gethostname()


class ClaimLost(Conflict):
    """Another settler took the interval over: stop, change nothing."""


_active: set[str] = set()
_active_lock = threading.Lock()


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_gone(payer: str | None, lease_until: int | None, now: int) -> bool:
    """Whether a ``paying`` interval's claim may be taken over."""
    if payer is None or lease_until is None or lease_until <= now:
        return True
    host, _, rest = payer.partition("/")
    pid_text, _, _ = rest.partition("/")
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _active_lock:
            return payer not in _active
    return not _pid_running(pid)


class SettleClaims:
    """Claims on the ``energy_intervals`` rows of one store."""

    __slots__ = ("_clock", "_db")

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    def __repr__(self) -> str:
        return f"SettleClaims({self._db!r})"

    def _lease(self) -> int:
        return int(self._clock().timestamp()) + LEASE_SECONDS

    @staticmethod
    def _new() -> str:
        claim = f"{_HOST}/{os.getpid()}/{uuid.uuid4().hex}"
        with _active_lock:
            _active.add(claim)
        return claim

    @staticmethod
    def release(claim: str) -> None:
        """This process no longer works on ``claim`` (it finished, or gave up)."""
        with _active_lock:
            _active.discard(claim)

    def guard_tenant(self, tenant: str) -> None:
        """Inside a transaction: serialise settlement planning of ``tenant`` (first write)."""
        self._db.execute(
            "INSERT INTO energy_settle_guard (tenant_id, plans) VALUES (?, 0)"
            " ON CONFLICT (tenant_id) DO NOTHING", (tenant,))
        self._db.execute("UPDATE energy_settle_guard SET plans = plans + 1 WHERE tenant_id = ?",
                         (tenant,))

    def take_cleared(self, tenant: str, start: int, plan: dict[str, Any]) -> str:
        """``cleared → paying`` with ``plan`` under a new claim; Conflict if another won."""
        claim = self._new()
        changed = self._db.execute(
            "UPDATE energy_intervals SET status = 'paying', payments = ?, payer = ?,"
            " lease_until = ? WHERE tenant_id = ? AND interval_start = ? AND status = 'cleared'",
            (json.dumps(plan), claim, self._lease(), tenant, start))
        if changed == 0:
            self.release(claim)
            raise Conflict("the interval is being settled already")
        return claim

    def take_paying(self, tenant: str, start: int) -> tuple[str, dict[str, Any]] | None:
        """Take over a ``paying`` interval whose holder is gone: (claim, plan as stored after
        the take), or None while its holder may still be paying."""
        row = self._db.query_one(
            "SELECT payer, lease_until FROM energy_intervals WHERE tenant_id = ? AND"
            " interval_start = ? AND status = 'paying'", (tenant, start))
        if row is None:
            return None
        payer = None if row[0] is None else str(row[0])
        lease = None if row[1] is None else int(row[1])
        if not holder_gone(payer, lease, int(self._clock().timestamp())):
            return None
        claim = self._new()
        same = "payer IS NULL" if payer is None else "payer = ?"
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE energy_intervals SET payer = ?, lease_until = ? WHERE tenant_id = ?"
                f" AND interval_start = ? AND status = 'paying' AND {same}",
                (claim, self._lease(), tenant, start, *(() if payer is None else (payer,))))
            found = self._db.query_one(
                "SELECT payments FROM energy_intervals WHERE tenant_id = ? AND"
                " interval_start = ? AND payer = ?", (tenant, start, claim))
        if changed == 0 or found is None:
            self.release(claim)
            return None
        return claim, json.loads(found[0])

    def save(self, tenant: str, start: int, claim: str, plan: dict[str, Any]) -> None:
        """Store the plan's progress and renew the lease, only while the claim holds."""
        with self._db.transaction(durable=True):
            changed = self._db.execute(
                "UPDATE energy_intervals SET payments = ?, lease_until = ? WHERE tenant_id = ?"
                " AND interval_start = ? AND status = 'paying' AND payer = ?",
                (json.dumps(plan), self._lease(), tenant, start, claim))
        if changed == 0:
            raise ClaimLost("another settler took this interval over")
