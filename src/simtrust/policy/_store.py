"""Versioned policy storage over :class:`simtrust.store.Database`.

Each change of the policy at (tenant, scope) is a new row with the next
version number; old versions stay readable and a deletion is a new, inactive
version. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlparse

from simtrust.alerts import AuditWriter
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.policy._model import Policy, Scope, policy_from_dict
from simtrust.store import Database

__all__ = ["PolicyStore"]


def _now() -> datetime:
    return datetime.now(UTC)


class PolicyStore:
    """Read and write policy versions; ``on_change`` hears of every new version."""

    def __init__(self, db: Database, audit: AuditWriter | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self.on_change: list[Callable[[Policy], None]] = []
        self._webhooks: dict[str, str | None] = {}

    def put(self, policy: Policy, *, actor: str) -> Policy:
        """Store ``policy`` as the next version of its (tenant, scope); return it numbered."""
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT MAX(version) FROM policy_versions WHERE tenant_id = ? AND scope = ?",
                (policy.tenant_id, policy.scope.key))
            previous = int(row[0]) if row and row[0] is not None else 0
            stored = replace(policy, version=previous + 1)
            body = json.dumps(stored.to_dict(), sort_keys=True)
            try:
                self._db.execute(
                    "INSERT INTO policy_versions (tenant_id, scope, version, active, body, actor,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (stored.tenant_id, stored.scope.key, stored.version, int(stored.active), body,
                     actor, self._clock().isoformat()))
            except Conflict:
                raise Conflict("policy changed concurrently; retry",
                               policy=stored.key) from None
            if self._audit is not None:
                self._audit.append(
                    actor=actor, action="policy.change" if stored.active else "policy.delete",
                    subject=f"policy:{stored.key}", outcome="success",
                    reason=f"version {stored.version}", tenant_id=stored.tenant_id,
                    details={"version": stored.version, "previous": previous,
                             "rules": len(stored.rules)})
        for listener in self.on_change:
            listener(stored)
        return stored

    def delete(self, tenant_id: str, scope: Scope, *, actor: str) -> Policy:
        """Deactivate the policy: a new, inactive, empty version."""
        current = self.get(tenant_id, scope)
        if not current.active:
            raise NotFound(f"no active policy {current.key}")
        return self.put(Policy(tenant_id, scope, (), active=False), actor=actor)

    def get(self, tenant_id: str, scope: Scope, version: int | None = None) -> Policy:
        """The latest (or the given) version; raises :class:`NotFound`."""
        if version is None:
            row = self._db.query_one(
                "SELECT body FROM policy_versions WHERE tenant_id = ? AND scope = ?"
                " ORDER BY version DESC LIMIT 1", (tenant_id, scope.key))
        else:
            row = self._db.query_one(
                "SELECT body FROM policy_versions WHERE tenant_id = ? AND scope = ?"
                " AND version = ?", (tenant_id, scope.key, version))
        if row is None:
            raise NotFound(f"no policy {tenant_id}/{scope.key}"
                           + (f" version {version}" if version else ""))
        return policy_from_dict(json.loads(str(row[0])))

    def history(self, tenant_id: str, scope: Scope) -> list[tuple[Policy, str, str]]:
        """Every version, oldest first, with who made it and when."""
        rows = self._db.query(
            "SELECT body, actor, created_at FROM policy_versions WHERE tenant_id = ? AND scope = ?"
            " ORDER BY version", (tenant_id, scope.key))
        return [(policy_from_dict(json.loads(str(b))), str(a), str(c)) for b, a, c in rows]

    def set_webhook(self, tenant_id: str, url: str | None, *, actor: str) -> None:
        """Set (or clear, with None) where ``alert`` actions of the tenant are POSTed."""
        if url is not None and not url.startswith(("https://", "http://")):
            raise InvalidInput("webhook URL must be http(s)://", field="webhook_url")
        if url is not None and len(url) > 2048:
            raise InvalidInput("webhook URL too long", field="webhook_url")
        with self._db.transaction():
            self._db.execute("DELETE FROM policy_alert_targets WHERE tenant_id = ?", (tenant_id,))
            self._db.execute(
                "INSERT INTO policy_alert_targets (tenant_id, webhook_url, updated_at)"
                " VALUES (?, ?, ?)", (tenant_id, url, self._clock().isoformat()))
            if self._audit is not None:
                host = urlparse(url).netloc if url else None
                self._audit.append(actor=actor, action="policy.webhook",
                                   subject=f"tenant:{tenant_id}", outcome="success",
                                   reason="set" if url else "cleared", tenant_id=tenant_id,
                                   details={"host": host})
        self._webhooks.pop(tenant_id, None)

    def webhook(self, tenant_id: str) -> str | None:
        """The tenant's webhook URL (cached; this process's writes refresh it)."""
        if tenant_id in self._webhooks:
            return self._webhooks[tenant_id]
        row = self._db.query_one(
            "SELECT webhook_url FROM policy_alert_targets WHERE tenant_id = ?", (tenant_id,))
        url = None if row is None or row[0] is None else str(row[0])
        self._webhooks[tenant_id] = url
        return url

    def current(self, tenant_id: str | None = None) -> list[Policy]:
        """The latest version of each (tenant, scope) that is active."""
        sql = ("SELECT p.body FROM policy_versions p JOIN (SELECT tenant_id, scope,"
               " MAX(version) AS v FROM policy_versions GROUP BY tenant_id, scope) m"
               " ON p.tenant_id = m.tenant_id AND p.scope = m.scope AND p.version = m.v"
               " WHERE p.active = 1")
        params: tuple[str, ...] = ()
        if tenant_id is not None:
            sql += " AND p.tenant_id = ?"
            params = (tenant_id,)
        rows = self._db.query(sql + " ORDER BY p.tenant_id, p.scope", params)
        return [policy_from_dict(json.loads(str(r[0]))) for r in rows]
