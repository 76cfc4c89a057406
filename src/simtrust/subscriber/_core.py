"""What every part of the inventory shares: the store, audit log, keyring, clock, change feed.

Every write records a change (:class:`~simtrust.subscriber._changes.ChangeFeed`)
inside its transaction and notifies local listeners after it commits, which
keeps attach caches coherent across processes and within one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.store import Database, TenantStore
from simtrust.subscriber._allocations import Allocations
from simtrust.subscriber._changes import ChangeFeed

__all__ = ["InventoryCore", "Listener"]

Listener = Callable[[str, str], None]


class InventoryCore:
    """The store, audit log, keyring, clock and change feed the inventory's parts share."""

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
        return f"{type(self).__name__}({self._db!r})"

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
        """The inventory clock's time."""
        return self._clock()

    # -- change notification -------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, item)`` after each write of this process commits."""
        self._listeners.append(listener)

    def notify(self, kind: str, item: str) -> None:
        """Tell this process's listeners about a committed change."""
        for listener in self._listeners:
            listener(kind, item)

    def record_change(self, kind: str, item: str) -> None:
        """Record a change of ``kind`` to ``item`` (inside the writer's transaction)."""
        self.changes.record(kind, item)

    def require_tenant(self, tenant_id: str) -> None:
        """NotFound unless the tenant exists."""
        self._tenants.get_tenant(tenant_id)
