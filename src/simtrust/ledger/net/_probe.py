"""Where a validator's finality time goes: stage latencies of its own clients' messages.

``docs/consensus.md`` ("Where the time goes"). For a deterministic sample of
the messages this node's clients submit (one id in :data:`SAMPLE`, chosen by
the id's first byte so every node samples the same ones), the probe notes
when the message was admitted, when this node proposed it in a block, when
this node's core committed a leader whose sub-DAG holds it, and when the
ledger applied it. ``status()["latency"]`` reports p50/p99 of each stage over
the samples finished in the last :data:`WINDOW_S` seconds (at most
:data:`WINDOW` of them), and the interval between this node's proposals
(the round pace). Memory is bounded by :data:`MAX_TRACKED`
messages in flight; past it, no new message is sampled until some finish.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from simtrust.ledger import FinalizedMessage

__all__ = ["MAX_TRACKED", "SAMPLE", "WINDOW", "WINDOW_S", "LatencyProbe"]

#: One message in SAMPLE is followed (ids whose first byte is a multiple of it).
SAMPLE = 8
MAX_TRACKED = 20_000
WINDOW = 4096
WINDOW_S = 10.0
#: A sample not applied after this long (void, or its epoch ended) is dropped.
STALE_S = 120.0
_STAGES = ("admit_to_propose", "propose_to_commit", "commit_to_apply", "admit_to_apply")


def _quantiles(values: Iterable[tuple[float, float]], since: float) -> dict[str, float] | None:
    ordered = sorted(v for t, v in values if t >= since)
    if not ordered:
        return None
    n = len(ordered)
    return {"p50_s": round(ordered[n // 2], 4),
            "p99_s": round(ordered[min(n - 1, n * 99 // 100)], 4), "count": n}


class LatencyProbe:
    """Stage timestamps of sampled local messages; a ledger handler for every payload type."""

    __slots__ = ("_clock", "_done", "_last_proposal", "_pace", "_tracked")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # id -> [admitted, proposed, committed] (0.0 while not yet reached)
        self._tracked: dict[bytes, list[float]] = {}
        self._done: dict[str, deque[tuple[float, float]]] = {
            s: deque(maxlen=WINDOW) for s in _STAGES}
        self._pace: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._last_proposal = 0.0

    def admitted(self, ids: Iterable[bytes]) -> None:
        tracked = self._tracked
        now = self._clock()
        if len(tracked) >= MAX_TRACKED:
            for mid in [m for m, st in tracked.items() if now - st[0] > STALE_S]:
                del tracked[mid]
            if len(tracked) >= MAX_TRACKED:
                return
        for mid in ids:
            if mid[0] % SAMPLE == 0:
                tracked.setdefault(mid, [now, 0.0, 0.0])
                if len(tracked) >= MAX_TRACKED:
                    return

    def proposed(self, ids: Iterable[bytes]) -> None:
        now = self._clock()
        if self._last_proposal:
            self._pace.append((now, now - self._last_proposal))
        self._last_proposal = now
        tracked = self._tracked
        for mid in ids:
            stamps = tracked.get(mid)
            if stamps is not None and not stamps[1]:
                stamps[1] = now

    def committed(self, ids: Iterable[bytes]) -> None:
        tracked = self._tracked
        if not tracked:
            return
        now = self._clock()
        for mid in ids:
            stamps = tracked.get(mid)
            if stamps is not None and not stamps[2]:
                stamps[2] = now

    def apply(self, fm: FinalizedMessage) -> None:
        """The ledger applied ``fm`` (registered as a handler; never rejects)."""
        stamps = self._tracked.pop(fm.message_id, None)
        if stamps is None:
            return
        now = self._clock()
        admitted, proposed, committed = stamps
        done = self._done
        done["admit_to_apply"].append((now, now - admitted))
        if proposed:
            done["admit_to_propose"].append((now, proposed - admitted))
            if committed:
                done["propose_to_commit"].append((now, committed - proposed))
        if committed:
            done["commit_to_apply"].append((now, now - committed))

    def forget(self) -> None:
        """An epoch ended or a sync replaced history: samples in flight are moot."""
        self._tracked.clear()

    def report(self, window_s: float = WINDOW_S) -> dict[str, Any]:
        since = self._clock() - window_s
        out: dict[str, Any] = {stage: _quantiles(values, since)
                               for stage, values in self._done.items()}
        out["proposal_interval"] = _quantiles(self._pace, since)
        out["tracked"] = len(self._tracked)
        return out
