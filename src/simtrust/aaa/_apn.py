"""Per-APN access settings and second-level credentials (TS 29.061 §16.3).

An enterprise APN may ask for a user name and password beyond the SIM
(``auth``: ``none``, ``pap``, ``chap`` or ``any`` of the two) and sets the
Session-Timeout the gateway receives. Passwords are sealed at rest (CHAP needs
the clear password, RFC 1994 §4.1, so a one-way hash cannot serve) and compared
in constant time.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.store import Database

__all__ = ["AUTH_METHODS", "DEFAULT_SESSION_TIMEOUT", "ApnAccess", "ApnAccessStore"]

AUTH_METHODS = ("none", "pap", "chap", "any")
DEFAULT_SESSION_TIMEOUT = 86_400


@dataclass(frozen=True, slots=True)
class ApnAccess:
    tenant_id: str
    apn: str
    auth: str = "none"
    session_timeout: int = DEFAULT_SESSION_TIMEOUT

    def to_json(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "apn": self.apn, "auth": self.auth,
                "session_timeout": self.session_timeout}


class ApnAccessStore:
    """Reads and writes APN access settings and users; settings cached per (tenant, APN)."""

    def __init__(self, db: Database, keyring: Keyring, audit: AuditLog,
                 clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._cache: dict[tuple[str, str], ApnAccess] = {}
        self._users: dict[tuple[str, str, str], bytes | None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApnAccessStore(cached={len(self._cache)})"

    def access(self, tenant_id: str, apn: str) -> ApnAccess:
        key = (tenant_id, apn)
        hit = self._cache.get(key)
        if hit is None:
            row = self._db.query_one(
                "SELECT auth, session_timeout FROM aaa_apn_access WHERE tenant_id = ? AND apn = ?",
                key,
            )
            hit = ApnAccess(tenant_id, apn) if row is None else ApnAccess(
                tenant_id, apn, str(row[0]), int(row[1]))
            self._cache[key] = hit
        return hit

    def set_access(self, tenant_id: str, apn: str, *, actor: str, auth: str | None = None,
                   session_timeout: int | None = None) -> ApnAccess:
        current = self.access(tenant_id, apn)
        auth = current.auth if auth is None else auth.strip().lower()
        if auth not in AUTH_METHODS:
            raise InvalidInput(f"auth must be one of {', '.join(AUTH_METHODS)}", field="auth")
        timeout = current.session_timeout if session_timeout is None else int(session_timeout)
        if not 0 < timeout <= 2**31 - 1:
            raise InvalidInput("session_timeout must be 1..2147483647 seconds",
                               field="session_timeout")
        now = self._clock().isoformat()
        with self._db.transaction():
            changed = self._db.execute(
                "UPDATE aaa_apn_access SET auth = ?, session_timeout = ?, updated_at = ?"
                " WHERE tenant_id = ? AND apn = ?", (auth, timeout, now, tenant_id, apn))
            if changed == 0:
                self._db.execute(
                    "INSERT INTO aaa_apn_access (auth, session_timeout, updated_at, tenant_id, apn)"
                    " VALUES (?, ?, ?, ?, ?)", (auth, timeout, now, tenant_id, apn))
            self._audit.append(
                actor=actor, action="apn-access.set", subject=f"apn:{tenant_id}/{apn}",
                outcome="success", tenant_id=tenant_id,
                details={"auth": auth, "session_timeout": timeout},
            )
        self._cache.pop((tenant_id, apn), None)
        return self.access(tenant_id, apn)

    def remove_access(self, tenant_id: str, apn: str, *, actor: str) -> None:
        """Forget an APN's settings and users (the APN is going away)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM aaa_apn_access WHERE tenant_id = ? AND apn = ?",
                             (tenant_id, apn))
            self._db.execute("DELETE FROM aaa_apn_users WHERE tenant_id = ? AND apn = ?",
                             (tenant_id, apn))
            self._audit.append(
                actor=actor, action="apn-access.remove", subject=f"apn:{tenant_id}/{apn}",
                outcome="success", tenant_id=tenant_id)
        self._cache.pop((tenant_id, apn), None)
        for key in [k for k in self._users if k[:2] == (tenant_id, apn)]:
            self._users.pop(key, None)

    def add_user(self, tenant_id: str, apn: str, username: str, password: str, *,
                 actor: str) -> None:
        name = username.strip()
        if not 1 <= len(name.encode()) <= 253:
            raise InvalidInput("user name must be 1..253 octets", field="username")
        raw = password.encode("utf-8")
        if not 1 <= len(raw) <= 128:
            raise InvalidInput("password must be 1..128 octets", field="password")
        sealed = self._keyring.seal(raw, _aad(tenant_id, apn, name))
        with self._db.transaction():
            if self._db.query_one(
                "SELECT id FROM aaa_apn_users WHERE tenant_id = ? AND apn = ? AND username = ?",
                (tenant_id, apn, name),
            ):
                raise Conflict(f"user {name!r} exists on APN {apn!r}", apn=apn)
            self._db.execute(
                "INSERT INTO aaa_apn_users (tenant_id, apn, username, password_sealed, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (tenant_id, apn, name, sealed, self._clock().isoformat()),
            )
            self._audit.append(
                actor=actor, action="apn-user.create", subject=f"apn:{tenant_id}/{apn}",
                outcome="success", tenant_id=tenant_id, details={"username": name},
            )
        self._users.pop((tenant_id, apn, name), None)

    def remove_user(self, tenant_id: str, apn: str, username: str, *, actor: str) -> None:
        with self._db.transaction():
            gone = self._db.execute(
                "DELETE FROM aaa_apn_users WHERE tenant_id = ? AND apn = ? AND username = ?",
                (tenant_id, apn, username),
            )
            if gone == 0:
                raise NotFound(f"no user {username!r} on APN {apn!r}", apn=apn)
            self._audit.append(
                actor=actor, action="apn-user.remove", subject=f"apn:{tenant_id}/{apn}",
                outcome="success", tenant_id=tenant_id, details={"username": username},
            )
        self._users.pop((tenant_id, apn, username), None)

    def users(self, tenant_id: str, apn: str) -> list[str]:
        rows = self._db.query(
            "SELECT username FROM aaa_apn_users WHERE tenant_id = ? AND apn = ? ORDER BY username",
            (tenant_id, apn),
        )
        return [str(r[0]) for r in rows]

    def password(self, tenant_id: str, apn: str, username: str) -> bytes | None:
        """The clear password of a user (in memory only), or None."""
        key = (tenant_id, apn, username)
        if key in self._users:
            return self._users[key]
        row = self._db.query_one(
            "SELECT password_sealed FROM aaa_apn_users WHERE tenant_id = ? AND apn = ?"
            " AND username = ?", key,
        )
        value = None if row is None else self._keyring.open(bytes(row[0]),
                                                             _aad(tenant_id, apn, username))
        if len(self._users) > 100_000:
            self._users.clear()
        self._users[key] = value
        return value

    def check_pap(self, tenant_id: str, apn: str, username: str, password: bytes) -> bool:
        stored = self.password(tenant_id, apn, username)
        return stored is not None and hmac.compare_digest(stored, password)

    def forget(self) -> None:
        self._cache.clear()
        self._users.clear()


def _aad(tenant_id: str, apn: str, username: str) -> bytes:
    return f"aaa-apn-user|{tenant_id}|{apn}|{username}".encode()
