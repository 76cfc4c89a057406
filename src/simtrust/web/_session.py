"""Dashboard sessions: an API key exchanged for a stored session with a CSRF token.

The cookie holds only a random session id (256 bits). The store keeps its
SHA-256 digest, the API key it was opened with and when it was last used
(table ``web_sessions``, web/_schema.py), so sessions survive a restart of
``simtrust serve`` and are shared by every worker on the same store, while a
copy of the table opens no session. The role and tenant come from the API
key and are read again on every request (a revoked key ends its sessions).
Idle sessions expire; logout deletes the row (committed durably before the
answer, so a signed-out session does not come back after a crash). The idle
clock is written at most once a minute per session (``TOUCH_EVERY``).

CSRF protection is the synchronizer-token pattern (OWASP CSRF Prevention Cheat
Sheet): every state-changing form carries the session's token, compared in
constant time, on top of ``SameSite=Strict`` cookies (RFC 6265bis §5.5.7). The
token is HMAC-SHA256 of a fixed label under the session id, so it needs no
storage and cannot be computed without the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from simtrust.errors import AuthenticationRequired, NotFound, PermissionDenied
from simtrust.store import Database, Role, TenantStore

__all__ = ["COOKIE", "TOUCH_EVERY", "Session", "SessionStore"]

#: Cookie name; the ``__Host-`` prefix (RFC 6265bis §4.1.3.2) needs Secure, so it is
#: used when the dashboard is served over TLS.
COOKIE = "simtrust_session"
#: The idle clock of a session is written to the store at most this often.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _csrf_of(sid: str) -> str:
    mac = hmac.new(sid.encode(), b"simtrust dashboard csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@dataclass(slots=True)
class Session:
    sid: str
    key_id: str
    key_name: str
    role: Role
    tenant_id: str | None
    csrf: str
    last_seen: datetime

    def __repr__(self) -> str:
        return f"Session(key_id={self.key_id!r}, role={self.role!r}, tenant={self.tenant_id!r})"

    def check_csrf(self, presented: str | None) -> None:
        if not presented or not hmac.compare_digest(presented.encode(), self.csrf.encode()):
            raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page")


class SessionStore:
    """Sessions kept in the store (``web_sessions``): every process on it sees the same ones."""

    __slots__ = ("_clock", "_db", "_idle", "_tenants")

    def __init__(self, db: Database, tenants: TenantStore, clock: Callable[[], datetime],
                 idle: timedelta = timedelta(minutes=30)) -> None:
        self._db = db
        self._tenants = tenants
        self._clock = clock
        self._idle = idle

    def __repr__(self) -> str:
        return "SessionStore(web_sessions)"

    @property
    def idle(self) -> timedelta:
        return self._idle

    def sign_in(self, presented: str) -> Session:
        """A new session for an API key (AuthenticationRequired when the key is wrong)."""
        key = self._tenants.authenticate(presented.strip())
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        with self._db.transaction(durable=True) as tx:
            tx.execute("DELETE FROM web_sessions WHERE last_seen < ?",
                       ((now - self._idle).isoformat(),))
            tx.execute("INSERT INTO web_sessions (sid_digest, key_id, created_at, last_seen)"
                       " VALUES (?, ?, ?, ?)", (_digest(sid), key.id, now.isoformat(),
                                                now.isoformat()))
        return Session(sid, key.id, key.name, key.role, key.tenant_id, _csrf_of(sid), now)

    def get(self, sid: str | None) -> Session:
        """The live session of ``sid``, its idle clock restarted; AuthenticationRequired if none."""
        if not sid or len(sid) > 128:
            raise AuthenticationRequired("sign in to continue")
        now = self._clock()
        digest = _digest(sid)
        row = self._db.query_one(
            "SELECT key_id, last_seen FROM web_sessions WHERE sid_digest = ?", (digest,))
        if row is None:
            raise AuthenticationRequired("sign in to continue")
        last_seen = datetime.fromisoformat(str(row[1]))
        if now - last_seen > self._idle:
            self._db.execute("DELETE FROM web_sessions WHERE sid_digest = ?", (digest,))
            raise AuthenticationRequired("sign in to continue")
        try:
            key = self._tenants.get_key(str(row[0]))
        except NotFound:
            key = None
        if key is None or key.revoked_at is not None:
            self.end(sid)
            raise AuthenticationRequired("the API key of this session was revoked")
        if now - last_seen >= TOUCH_EVERY:
            self._db.execute("UPDATE web_sessions SET last_seen = ? WHERE sid_digest = ?",
                             (now.isoformat(), digest))
            last_seen = now
        return Session(sid, key.id, key.name, key.role, key.tenant_id, _csrf_of(sid), last_seen)

    def end(self, sid: str | None) -> None:
        if not sid:
            return
        with self._db.transaction(durable=True) as tx:
            tx.execute("DELETE FROM web_sessions WHERE sid_digest = ?", (_digest(sid),))

    def count(self) -> int:
        """Sessions in the store (expired ones included until the next sweep)."""
        row = self._db.query_one("SELECT COUNT(*) FROM web_sessions")
        return int(row[0]) if row else 0
