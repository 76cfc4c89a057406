"""Dashboard sessions: an API key exchanged for a server-side session with a CSRF token.

The cookie holds only a random session id (256 bits); the role and tenant come
from the API key at sign-in and are checked again on every request (a revoked
key ends its sessions). Idle sessions expire; logout forgets the session.
CSRF protection is the synchronizer-token pattern (OWASP CSRF Prevention Cheat
Sheet): every state-changing form carries the session's token, compared in
constant time, on top of ``SameSite=Strict`` cookies (RFC 6265bis §5.5.7).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from simtrust.errors import AuthenticationRequired, NotFound, PermissionDenied
from simtrust.store import Role, TenantStore

__all__ = ["COOKIE", "Session", "SessionStore"]

#: Cookie name; the ``__Host-`` prefix (RFC 6265bis §4.1.3.2) needs Secure, so it is
#: used when the dashboard is served over TLS.
COOKIE = "simtrust_session"
_MAX_SESSIONS = 10_000


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
    """Sessions of one server process, in memory (they end with it)."""

    __slots__ = ("_clock", "_idle", "_lock", "_sessions", "_tenants")

    def __init__(self, tenants: TenantStore, clock: Callable[[], datetime],
                 idle: timedelta = timedelta(minutes=30)) -> None:
        self._tenants = tenants
        self._clock = clock
        self._idle = idle
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def __repr__(self) -> str:
        return f"SessionStore({len(self._sessions)} sessions)"

    @property
    def idle(self) -> timedelta:
        return self._idle

    def sign_in(self, presented: str) -> Session:
        """A new session for an API key (AuthenticationRequired when the key is wrong)."""
        key = self._tenants.authenticate(presented.strip())
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), key.id, key.name, key.role, key.tenant_id,
                          secrets.token_urlsafe(32), now)
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= _MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.sid]
            self._sessions[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session:
        """The live session of ``sid``, its idle clock restarted; AuthenticationRequired if none."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid or "")
            if session is None or now - session.last_seen > self._idle:
                if session is not None:
                    del self._sessions[session.sid]
                raise AuthenticationRequired("sign in to continue")
        try:
            key = self._tenants.get_key(session.key_id)
        except NotFound:
            key = None
        if key is None or key.revoked_at is not None:
            self.end(session.sid)
            raise AuthenticationRequired("the API key of this session was revoked")
        session.last_seen = now
        return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _expire(self, now: datetime) -> None:
        for sid in [s.sid for s in self._sessions.values() if now - s.last_seen > self._idle]:
            del self._sessions[sid]
