"""Which blocks the next proposal finalizes after: the approval-order query of §7.3.

``docs/consensus.md`` §7.3: a block's payload is linearized after every block
of its causal history and after every block committed before it. A proposer
asks, before it chooses a payload, whether a given block is one of those; the
answer walks the DAG down from the proposal's parents, lazily and only as deep
as the oldest block asked about.
"""

from __future__ import annotations

import math

from ._block import BlockRef
from ._core import Core

__all__ = ["CausalHistory"]


class CausalHistory:
    """The causal history of the block ``core`` would propose now.

    ``precedes(ref)`` is true when every id of block ``ref`` is finalized
    before any id of the proposal: ``ref`` is already committed, or it is an
    ancestor of the proposal's parents (a lower round, so §7.3's sort puts it
    first, in the same commit or an earlier one). Answers hold until the core
    changes; make a new one per proposal.
    """

    __slots__ = ("_below", "_core", "_floor", "_seen")

    def __init__(self, core: Core, parents: list[BlockRef] | None = None) -> None:
        self._core = core
        self._seen: set[bytes] = set()
        # References not walked yet because they lie below the current floor.
        self._below: list[BlockRef] = core.proposal_parents() if parents is None else parents
        self._floor = math.inf

    def precedes(self, ref: BlockRef) -> bool:
        if self._core.is_committed(ref.digest):
            return True
        if ref.round < self._floor:
            self._deepen(ref.round)
        return ref.digest in self._seen

    def _deepen(self, floor: int) -> None:
        """Walk every reference not walked yet down to round ``floor``."""
        self._floor = floor
        seen, core = self._seen, self._core
        stack = [r for r in self._below if r.round >= floor]
        self._below = [r for r in self._below if r.round < floor]
        while stack:
            ref = stack.pop()
            if ref.digest in seen:
                continue
            block = core.get(ref.digest)
            if block is None:  # below gc_round: not finalized by now, never will be
                continue
            seen.add(ref.digest)
            for parent in block.parents:
                if parent.digest in seen:
                    continue
                if parent.round >= floor:
                    stack.append(parent)
                else:
                    self._below.append(parent)
