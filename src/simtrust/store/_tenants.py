"""Tenants (the enterprises an operator serves) and API keys with roles.

An API key is ``stk_<key id>_<secret>``; only SHA-256 of the whole key is
stored (the secret carries 256 bits of entropy, so a slow password hash would
add latency without adding safety), and it is compared in constant time. The
full key is returned once, at creation. Roles: ``operator-admin`` (no tenant,
sees everything), ``tenant-admin`` and ``tenant-viewer`` (bound to a tenant).

A key the store accepted is taken without the store for ``AUTH_CACHE_SECONDS``
after that check (:meth:`TenantStore.authenticated_recently`); a key revoked by
another process is refused at the latest that long after its revocation. A key
used within ``AUTH_REFRESH_SECONDS`` of the end of that time is checked against
the store again on a thread of its own: found live, it is taken for another
``AUTH_CACHE_SECONDS`` from that check; found revoked or gone, it is dropped at
once. So a key in steady use never waits for the store, and the bound on a
revoked key is unchanged (docs/decisions/api-attach-route.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from simtrust.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound
from simtrust.store._db import Database
from simtrust.store._migrations import Migration

__all__ = [
    "AUTH_CACHE_SECONDS",
    "AUTH_REFRESH_SECONDS",
    "MIGRATIONS",
    "ROLES",
    "ApiKey",
    "NewApiKey",
    "Role",
    "Tenant",
    "TenantStore",
    "missing_key",
]

def missing_key(key_id: str) -> NotFound:
    """The error for an API key that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no API key {key_id!r}", key_id=key_id)


AUTH_CACHE_SECONDS = 5.0
#: A cached key used with less than this left is checked again in the background.
AUTH_REFRESH_SECONDS = 2.0
_AUTH_CACHE_MAX = 4096

Role = Literal["operator-admin", "tenant-admin", "tenant-viewer"]
ROLES: tuple[str, ...] = get_args(Role)
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_KEY = re.compile(r"stk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")

MIGRATIONS = [
    Migration(
        "tenancy",
        1,
        "tenants and api keys",
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT REFERENCES tenants (id),
            role TEXT NOT NULL,
            name TEXT NOT NULL,
            digest {blob} NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant_id)
        """,
    )
]


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key's public facts (never the secret)."""

    id: str
    tenant_id: str | None
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "role": self.role,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    key: ApiKey
    secret: str

    def __repr__(self) -> str:
        return f"NewApiKey(key={self.key!r}, secret='<redacted>')"


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _on_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="api-key-check", daemon=True).start()


class TenantStore:
    """Tenants and API keys over a :class:`Database`.

    ``clock`` is what the cache's times are read from; ``spawn(work)`` runs a key's
    background check (by default on a thread of its own)."""

    __slots__ = ("_cache", "_cache_lock", "_checking", "_clock", "_db", "_revocations",
                 "_spawn")

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.monotonic,
                 spawn: Callable[[Callable[[], None]], None] = _on_thread) -> None:
        self._db = db
        self._cache: dict[bytes, tuple[ApiKey, float]] = {}
        self._cache_lock = threading.Lock()
        self._clock = clock
        self._spawn = spawn
        self._checking: set[bytes] = set()  # keys whose background check is under way
        self._revocations = 0  # keys revoked here: a check read before one is not kept

    # -- tenants ---------------------------------------------------------------

    def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        if not _SLUG.fullmatch(tenant_id):
            raise InvalidInput(
                "tenant id must be 1-63 lower-case letters, digits or hyphens", field="id"
            )
        if not name.strip() or len(name) > 200:
            raise InvalidInput("tenant name must be 1-200 characters", field="name")
        tenant = Tenant(tenant_id, name.strip(), _now())
        try:
            self._db.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
                (tenant.id, tenant.name, tenant.created_at.isoformat()),
            )
        except Conflict as exc:
            raise Conflict(f"tenant {tenant_id!r} exists", tenant_id=tenant_id) from exc
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self._db.query_one(
            "SELECT id, name, created_at FROM tenants WHERE id = ?", (tenant_id,)
        )
        if row is None:
            raise NotFound(f"no tenant {tenant_id!r}", tenant_id=tenant_id)
        return Tenant(str(row[0]), str(row[1]), datetime.fromisoformat(str(row[2])))

    def list_tenants(self) -> list[Tenant]:
        rows = self._db.query("SELECT id, name, created_at FROM tenants ORDER BY id")
        return [Tenant(str(r[0]), str(r[1]), datetime.fromisoformat(str(r[2]))) for r in rows]

    # -- keys ------------------------------------------------------------------

    def create_key(self, role: str, name: str, tenant_id: str | None = None) -> NewApiKey:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
        if role == "operator-admin" and tenant_id is not None:
            raise InvalidInput("operator-admin keys belong to no tenant", field="tenant_id")
        if role != "operator-admin":
            if tenant_id is None:
                raise InvalidInput(f"{role} keys need a tenant", field="tenant_id")
            self.get_tenant(tenant_id)
        if not name.strip() or len(name) > 200:
            raise InvalidInput("key name must be 1-200 characters", field="name")
        key_id = secrets.token_hex(8)
        secret = f"stk_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, tenant_id, role, name.strip(), _now(), None)  # type: ignore[arg-type]
        self._db.execute(
            "INSERT INTO api_keys (id, tenant_id, role, name, digest, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key.id, tenant_id, role, key.name, _digest(secret), key.created_at.isoformat()),
        )
        return NewApiKey(key, secret)

    def authenticated_recently(self, presented: str) -> ApiKey | None:
        """The key ``presented`` names if the store accepted it within the last
        ``AUTH_CACHE_SECONDS``, without touching the store; None otherwise. Within
        ``AUTH_REFRESH_SECONDS`` of that time's end, the key's check against the store
        is started in the background (one at a time per key)."""
        match = _KEY.fullmatch(presented.strip())
        if match is None:
            return None
        digest = _digest(presented.strip())
        with self._cache_lock:
            cached = self._cache.get(digest)
        if cached is None:
            return None
        left = cached[1] - self._clock()
        if left <= 0:
            return None
        if left < AUTH_REFRESH_SECONDS:
            self._check_later(match.group(1), digest)
        return cached[0]

    def authenticate(self, presented: str) -> ApiKey:
        """The live key ``presented`` names; AuthenticationRequired otherwise."""
        match = _KEY.fullmatch(presented.strip())
        if match is None:
            raise AuthenticationRequired("malformed API key")
        digest = _digest(presented.strip())
        with self._cache_lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        return self._check(match.group(1), digest)

    def _check(self, key_id: str, digest: bytes) -> ApiKey:
        """The live key from the store, kept for ``AUTH_CACHE_SECONDS`` from before the
        read (not kept when a key was revoked here meanwhile)."""
        now = self._clock()
        with self._cache_lock:
            revocations = self._revocations
        row = self._db.query_one(
            "SELECT id, tenant_id, role, name, created_at, revoked_at, digest"
            " FROM api_keys WHERE id = ?",
            (key_id,),
        )
        # Compare even when the id is unknown, so timing does not reveal ids.
        stored = bytes(row[6]) if row is not None else bytes(32)
        if not hmac.compare_digest(stored, digest) or row is None:
            raise AuthenticationRequired("unknown API key")
        key = _key_from_row(row)
        if key.revoked_at is not None:
            raise AuthenticationRequired("API key revoked")
        with self._cache_lock:
            if self._revocations == revocations:
                if len(self._cache) >= _AUTH_CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = (key, now + AUTH_CACHE_SECONDS)
        return key

    def _check_later(self, key_id: str, digest: bytes) -> None:
        with self._cache_lock:
            if digest in self._checking:
                return
            self._checking.add(digest)
        try:
            self._spawn(lambda: self._check_again(key_id, digest))
        except RuntimeError:  # no thread to be had: the entry ends when it would have
            with self._cache_lock:
                self._checking.discard(digest)

    def _check_again(self, key_id: str, digest: bytes) -> None:
        """The background check: live → kept longer; revoked or gone → dropped now; the
        store failing → the entry ends when it would have (the next use asks the store)."""
        try:
            self._check(key_id, digest)
        except AuthenticationRequired:
            with self._cache_lock:
                self._cache.pop(digest, None)
        except Exception:  # noqa: BLE001, S110 - answered by the store check at expiry
            pass
        finally:
            with self._cache_lock:
                self._checking.discard(digest)

    def get_key(self, key_id: str) -> ApiKey:
        row = self._db.query_one(
            "SELECT id, tenant_id, role, name, created_at, revoked_at FROM api_keys WHERE id = ?",
            (key_id,),
        )
        if row is None:
            raise missing_key(key_id)
        return _key_from_row(row)

    def list_keys(self, tenant_id: str | None = None) -> list[ApiKey]:
        sql = "SELECT id, tenant_id, role, name, created_at, revoked_at FROM api_keys"
        params: tuple[Any, ...] = ()
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params = (tenant_id,)
        return [_key_from_row(r) for r in self._db.query(sql + " ORDER BY created_at, id", params)]

    def revoke_key(self, key_id: str) -> ApiKey:
        key = self.get_key(key_id)
        if key.revoked_at is None:
            self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ?", (_now().isoformat(), key_id)
            )
        with self._cache_lock:
            self._revocations += 1
            for digest in [d for d, (k, _) in self._cache.items() if k.id == key_id]:
                del self._cache[digest]
        return self.get_key(key_id)


def _key_from_row(row: Any) -> ApiKey:
    return ApiKey(
        id=str(row[0]),
        tenant_id=None if row[1] is None else str(row[1]),
        role=row[2],
        name=str(row[3]),
        created_at=datetime.fromisoformat(str(row[4])),
        revoked_at=None if row[5] is None else datetime.fromisoformat(str(row[5])),
    )
