"""Per-client token buckets for unauthenticated endpoints (RFC 6585 §4: 429 Too Many Requests).

A caller that has no credential (a wallet pushing an authorization request,
asking for a ``c_nonce``, a relying party using the public verifier) is known
only by its address and what it says it is (``client_id``). Each such key gets
a token bucket of ``per_minute`` requests refilled continuously, holding at
most ``per_minute`` (the burst). A refusal raises :class:`RateLimited` with
``retryAfter``: the problem handler answers 429 as RFC 9457 problem details
with ``Retry-After`` in seconds (RFC 9110 §10.2.3).

Buckets live in the process (docs/decisions/identity-oid4vci-rate-limits.md):
with N API workers a client gets up to N times the rate. The table is bounded:
at ``max_keys`` the least recently used bucket is dropped, so a flood of
addresses cannot grow memory, and a key that keeps sending stays tracked.
The clock is monotonic and injectable (tests pass their own).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Request

from simtrust.errors import RateLimited
from simtrust.runtime import Runtime

__all__ = ["RATE_LIMITED", "RateLimiter", "client_address", "limiter_for", "oid4vci_limiter"]


class RateLimiter:
    """Token buckets keyed by a string (an address, ``client_id:…``), one rate for all."""

    __slots__ = ("_buckets", "_clock", "_lock", "max_keys", "per_minute", "what")

    def __init__(self, per_minute: int, *, what: str, max_keys: int = 65_536,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.what = what
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, *keys: str) -> None:
        """Spend one token from each key's bucket, or raise RateLimited spending none.

        All keys are checked before any is charged, so a refused request costs
        nothing and one bucket's refusal does not drain the others.
        """
        now = self._clock()
        rate = self.per_minute / 60.0
        full = float(self.per_minute)
        with self._lock:
            levels = []
            wait = 0
            for key in keys:
                tokens, last = self._buckets.get(key, (full, now))
                tokens = min(full, tokens + max(0.0, now - last) * rate)
                levels.append(tokens)
                if tokens < 1.0:
                    wait = max(wait, 1, math.ceil((1.0 - tokens) / rate))
            for key, tokens in zip(keys, levels, strict=True):
                self._buckets[key] = (tokens if wait else tokens - 1.0, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        if wait:
            raise RateLimited(
                f"too many requests to the {self.what} from this client; retry later",
                retryAfter=wait,
            )


def limiter_for(state: object, name: str, per_minute: int, what: str) -> RateLimiter:
    """The app's limiter called ``name`` (on ``app.state``), made anew when the rate changed."""
    limiter = getattr(state, name, None)
    if not isinstance(limiter, RateLimiter) or limiter.per_minute != per_minute:
        limiter = RateLimiter(per_minute, what=what)
        setattr(state, name, limiter)
    return limiter


#: RFC 6585 §4 refusal of an unauthenticated caller over its rate (problem details).
RATE_LIMITED: dict[str, Any] = {
    "description": "Too many requests from this address or client_id (RFC 6585 §4);"
                   " an RFC 9457 problem",
    "headers": {"Retry-After": {"description": "seconds to wait (RFC 9110 §10.2.3)",
                                "schema": {"type": "integer", "minimum": 1}}},
}


def client_address(request: Request) -> str:
    """The peer address a rate is kept for (after any trusted proxy rewrote it)."""
    return "address:" + (request.client.host if request.client else "unknown")


def oid4vci_limiter(request: Request, rt: Runtime) -> RateLimiter:
    """The process's limiter of the unauthenticated OpenID4VCI endpoints (PAR, nonce)."""
    return limiter_for(request.app.state, "oid4vci_limiter", rt.settings.oid4vci_per_minute,
                       "OpenID4VCI endpoints")  # fmt: skip
