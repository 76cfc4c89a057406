"""Admission of RADIUS datagrams: a rate limit per gateway, and the answers retransmissions get.

A gateway (NAS) over its rate is dropped silently, as RFC 2865 §3 asks of
anything the server will not answer: the NAS retransmits and backs off. A
retransmission — same client, source, identifier and authenticator — gets
the answer already sent, or nothing while the first copy is still being
worked on (RFC 5080 §2.2.2), so a decision is never taken twice.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["AnswerCache", "ClientRateLimit"]


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float) -> None:
        self.tokens = tokens
        self.stamp = time.monotonic()


class ClientRateLimit:
    """A token bucket per gateway client: ``rate`` datagrams a second, bursts of ``burst``."""

    __slots__ = ("_buckets", "_burst", "_rate")

    def __init__(self, *, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[int, _Bucket] = {}

    def __repr__(self) -> str:
        return f"ClientRateLimit(rate={self._rate}, burst={self._burst})"

    def shared(self, processes: int) -> ClientRateLimit:
        """This limit split evenly over ``processes`` that each see an even share of
        every client's datagrams (RADIUS workers, docs/decisions/aaa-workers.md)."""
        return ClientRateLimit(rate=self._rate / processes,
                               burst=max(1.0, self._burst / processes))

    def take(self, client_id: int) -> bool:
        """Whether the client may send one more datagram now (it is counted if so)."""
        bucket = self._buckets.get(client_id)
        now = time.monotonic()
        if bucket is None:
            bucket = self._buckets[client_id] = _Bucket(self._burst)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


class AnswerCache:
    """Answers by request key for ``ttl`` seconds, at most ``capacity`` of them (oldest go)."""

    __slots__ = ("_answers", "_capacity", "_lock", "_ttl")

    def __init__(self, *, ttl: float, capacity: int) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._answers: OrderedDict[tuple[Any, ...], tuple[float, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AnswerCache({len(self._answers)} answers)"

    def lookup(self, key: tuple[Any, ...]) -> tuple[bool, bytes | None]:
        """(seen, answer): a retransmission gets the stored answer (None: still working)."""
        with self._lock:
            hit = self._answers.get(key)
            if hit is None:
                return False, None
            if hit[0] < time.monotonic():
                del self._answers[key]
                return False, None
        return True, hit[1]

    def remember(self, key: tuple[Any, ...], answer: bytes | None) -> None:
        """Keep ``answer`` (None: the request is being worked on) for ``key``."""
        with self._lock:
            self._answers[key] = (time.monotonic() + self._ttl, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self._capacity:
                self._answers.popitem(last=False)

    def remember_many(self, answers: Iterable[tuple[tuple[Any, ...], bytes]]) -> None:
        """:meth:`remember` for many answers (one lock)."""
        with self._lock:
            expires = time.monotonic() + self._ttl
            cache = self._answers
            for key, answer in answers:
                cache[key] = (expires, answer)
                cache.move_to_end(key)
            while len(cache) > self._capacity:
                cache.popitem(last=False)

    def forget(self, key: tuple[Any, ...]) -> None:
        """Drop ``key``: a retransmission is worked on afresh."""
        with self._lock:
            self._answers.pop(key, None)
