"""How long a proposer waits for the previous round's leader block, and how each wait ended.

``docs/consensus.md`` §9 (item 2) and §15.10. A validator that holds a quorum
of round ``r`` may propose round ``r+1`` at once, but it waits for the leader
block of ``r`` so that its block votes for it; the wait ends when the block
arrives, when the leader is seen past its round, or after
``leader_timeout_ms``. Time is an argument, never read, so the core stays a
pure state machine. The wait is a liveness aid only: the commit rule and its
safety never depend on it.

:class:`LeaderWait` keeps, per round this core may propose, when it first saw
that round possible and the leader block missing (the timeout runs from
there), and counts how the waits ended (:meth:`LeaderWait.stats`), so an
operator sees what leader timeouts cost.
"""

from __future__ import annotations

__all__ = ["OUTCOMES", "LeaderWait"]

#: How the wait before a proposal of round ``r+1`` ended.
#: ``held``: the leader block of ``r`` was there when the round became possible;
#: ``arrived``: it came while this core waited; ``moved_past``: the leader was
#: seen at a later round (it skipped ``r``); ``timeout``: the wait expired;
#: ``own``: this validator is the leader of ``r`` and has no block there (it
#: skipped the round), so there is nothing to wait for.
OUTCOMES = ("held", "arrived", "moved_past", "timeout", "own")


class LeaderWait:
    """The leader timeouts of one core: when each wait began, and what the waits cost."""

    __slots__ = ("_counts", "_since", "_waited_ms", "timeout_ms")

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self._since: dict[int, int] = {}
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._waited_ms = 0

    def expired(self, round_: int, now_ms: int) -> bool:
        """Whether the wait before proposing ``round_`` is over (it starts at the first call)."""
        first = self._since.setdefault(round_, now_ms)
        return now_ms - first >= self.timeout_ms

    def wake_at(self, round_: int) -> int | None:
        """When the wait before proposing ``round_`` expires (None: not waiting on it)."""
        first = self._since.get(round_)
        return None if first is None else first + self.timeout_ms

    def proposed(self, round_: int, now_ms: int, outcome: str) -> None:
        """Round ``round_`` is proposed at ``now_ms``; its wait ended by ``outcome``."""
        first = self._since.get(round_)
        if outcome == "held" and first is not None:
            outcome = "arrived"
        self._counts[outcome] += 1
        if first is not None:
            self._waited_ms += max(0, now_ms - first)
        self.forget_below(round_ + 1)

    def forget_below(self, round_: int) -> None:
        """Drop the waits for rounds below ``round_`` (proposed, or below the GC horizon)."""
        for old in [r for r in self._since if r < round_]:
            del self._since[old]

    def stats(self) -> dict[str, int]:
        """How this core's waits ended (counts per outcome) and the time they took in all."""
        out = {f"leader_{k}": v for k, v in self._counts.items()}
        out["leader_wait_ms"] = self._waited_ms
        return out
