"""Admission of RADIUS datagrams: a rate limit per gateway, and the answers retransmissions get.

A gateway (NAS) over its rate is dropped silently, as RFC 2865 §3 asks of
anything the server will not answer: the NAS retransmits and backs off. A
retransmission — same client, source, identifier and authenticator — gets
the answer already sent, or nothing while the first copy is still being
worked on (RFC 5080 §2.2.2), so a decision is never taken twice.

The cache holds up to 200,000 answers for 30 s, one per request answered. Its keys and
entries are ``bytes``, not tuples: the garbage collector tracks every tuple holding
another tuple, and tuple keys ``(client, (host, port), identifier, authenticator)``
left about four tracked objects per request, a young-generation collection (every
thread stopped for 15–80 ms) every ~13,000 requests at the serving threshold, which
set the Access-Request p99 (docs/decisions/aaa-open-loop-latency.md). Bytes are never
tracked.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["AnswerCache", "ClientRateLimit", "answer_key"]


_KEY_HEAD = struct.Struct("!qHB").pack
_EXPIRY = struct.Struct("!d")
_PACK_EXPIRY = _EXPIRY.pack
_EXPIRY_OF = _EXPIRY.unpack_from


def answer_key(client_id: int, addr: tuple[Any, ...], identifier: int,
               authenticator: bytes) -> bytes:
    """The retransmission key of a request (RFC 5080 §2.2.2: client, source address and
    port, identifier, Request Authenticator) as bytes: the fixed-length fields first,
    then the 16-octet authenticator, then the source host (and an IPv6 scope id), so two
    different requests never share a key."""
    host: bytes = addr[0].encode()
    if len(addr) > 3 and addr[3]:
        host += b"%" + str(addr[3]).encode()
    head: bytes = _KEY_HEAD(client_id, addr[1], identifier)
    return head + authenticator + host


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
    """Answers by request key for ``ttl`` seconds, at most ``capacity`` of them (oldest go).

    An entry is the expiry (8 octets, a monotonic time) followed by the answer; nothing
    after the expiry means the request is still being worked on."""

    __slots__ = ("_answers", "_capacity", "_lock", "_ttl")

    def __init__(self, *, ttl: float, capacity: int) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._answers: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AnswerCache({len(self._answers)} answers)"

    def __len__(self) -> int:
        return len(self._answers)

    def lookup(self, key: bytes) -> tuple[bool, bytes | None]:
        """(seen, answer): a retransmission gets the stored answer (None: still working)."""
        with self._lock:
            hit = self._answers.get(key)
            if hit is None:
                return False, None
            if _EXPIRY_OF(hit)[0] < time.monotonic():
                del self._answers[key]
                return False, None
        return True, hit[8:] or None

    def remember(self, key: bytes, answer: bytes | None) -> None:
        """Keep ``answer`` (None: the request is being worked on) for ``key``."""
        with self._lock:
            expiry = _PACK_EXPIRY(time.monotonic() + self._ttl)
            self._answers[key] = expiry + answer if answer else expiry
            self._answers.move_to_end(key)
            while len(self._answers) > self._capacity:
                self._answers.popitem(last=False)

    def remember_many(self, answers: Iterable[tuple[bytes, bytes]]) -> None:
        """:meth:`remember` for many answers (one lock)."""
        with self._lock:
            expiry = _PACK_EXPIRY(time.monotonic() + self._ttl)
            cache = self._answers
            for key, answer in answers:
                cache[key] = expiry + answer
                cache.move_to_end(key)
            while len(cache) > self._capacity:
                cache.popitem(last=False)

    def forget(self, key: bytes) -> None:
        """Drop ``key``: a retransmission is worked on afresh."""
        with self._lock:
            self._answers.pop(key, None)
