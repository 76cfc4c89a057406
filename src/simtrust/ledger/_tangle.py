"""In-memory tangle structures: tips, the solidification buffer, issuer quotas.

Pure logic: time is passed in (milliseconds since the Unix epoch) and
randomness comes from a caller's ``random.Random``. Tip selection is uniform
among recent tips (DESIGN.md "The ledger"; the IOTA "URTS" with a bound on
parent age); the buffer holds messages whose past cone is incomplete, bounded
by count and age; the quota is a token bucket per issuer (an access quota,
never a fee).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping

from simtrust.ledger._codec import Message

__all__ = ["IssuerQuota", "SolidBuffer", "TipPool"]


class TipPool:
    """Messages nobody approves yet, with their issue times."""

    __slots__ = ("_tips",)

    def __init__(self) -> None:
        self._tips: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._tips)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._tips

    def ids(self) -> list[bytes]:
        return sorted(self._tips)

    def add(self, msg_id: bytes, issued_at: int, parents: Iterable[bytes]) -> None:
        tips = self._tips
        for p in parents:
            tips.pop(p, None)
        tips[msg_id] = issued_at

    def discard_approved(self, parents: Iterable[bytes]) -> None:
        for p in parents:
            self._tips.pop(p, None)

    def select(
        self, rng: random.Random, now_ms: int, max_age_ms: int, count: int
    ) -> list[bytes]:
        """Up to ``count`` distinct tips issued within ``max_age_ms``, uniformly at random."""
        floor = now_ms - max_age_ms
        recent = [t for t, at in self._tips.items() if floor <= at <= now_ms]
        if len(recent) <= count:
            return sorted(recent)
        return sorted(rng.sample(recent, count))


class SolidBuffer:
    """Messages waiting for parents; evicted oldest-first by count and by age."""

    __slots__ = ("_arrived", "_waiting", "arrived", "max_age_ms", "max_count")

    def __init__(self, max_count: int, max_age_ms: int) -> None:
        self.max_count = max_count
        self.max_age_ms = max_age_ms
        self._arrived: OrderedDict[bytes, tuple[Message, int]] = OrderedDict()
        #: The held messages by id, read-only for callers that test membership per
        #: message (``in``/``len`` on the dict skip a Python-level method call).
        self.arrived: Mapping[bytes, tuple[Message, int]] = self._arrived
        self._waiting: dict[bytes, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._arrived)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._arrived

    def add(self, message: Message, missing: Iterable[bytes], now_ms: int) -> list[Message]:
        """Hold ``message``; return the messages evicted to make room or by age."""
        evicted = self.expire(now_ms)
        while len(self._arrived) >= self.max_count:
            evicted.append(self._remove(next(iter(self._arrived))))
        self._arrived[message.id] = (message, now_ms)
        for p in missing:
            self._waiting.setdefault(p, set()).add(message.id)
        return evicted

    def expire(self, now_ms: int) -> list[Message]:
        out: list[Message] = []
        floor = now_ms - self.max_age_ms
        while self._arrived:
            first = next(iter(self._arrived))
            if self._arrived[first][1] >= floor:
                break
            out.append(self._remove(first))
        return out

    def _remove(self, msg_id: bytes) -> Message:
        message, _ = self._arrived.pop(msg_id)
        for p in message.parents:
            waiters = self._waiting.get(p)
            if waiters is not None:
                waiters.discard(msg_id)
                if not waiters:
                    del self._waiting[p]
        return message

    def waiting_on(self, parent: bytes) -> list[Message]:
        """Messages that named ``parent`` as missing (still buffered)."""
        ids = self._waiting.get(parent)
        if not ids:
            return []
        return [self._arrived[i][0] for i in sorted(ids) if i in self._arrived]

    def release(self, msg_id: bytes) -> None:
        if msg_id in self._arrived:
            self._remove(msg_id)

    def missing(self, known: Container[bytes] = frozenset()) -> list[bytes]:
        """Parent ids some buffered message waits for, neither buffered nor in ``known``."""
        return sorted(p for p in self._waiting if p not in self._arrived and p not in known)


class IssuerQuota:
    """Token bucket per issuer: ``rate`` messages per second, bursts up to ``burst``."""

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[bytes, tuple[float, int]] = {}

    def take(self, issuer: bytes, now_ms: int) -> bool:
        """Spend one token of ``issuer``; False when the bucket is empty."""
        tokens, last = self._buckets.get(issuer, (float(self.burst), now_ms))
        if now_ms > last:
            tokens = min(float(self.burst), tokens + (now_ms - last) * self.rate / 1000.0)
            last = now_ms
        if tokens < 1.0:
            self._buckets[issuer] = (tokens, last)
            return False
        self._buckets[issuer] = (tokens - 1.0, last)
        return True
