"""Blocks held until their payload is here, and frame chunking (``docs/network.md``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from simtrust.ledger.consensus import Block
from simtrust.ledger.net._wire import MAX_ITEMS

__all__ = ["FRAME_BUDGET", "AvailabilityGate", "chunks"]

#: Bytes of items per frame a node sends.
FRAME_BUDGET = 4 * 1024 * 1024


def chunks(items: Sequence[bytes], count: int = MAX_ITEMS) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= count or size + len(item) > FRAME_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 4
    if batch:
        yield batch


class AvailabilityGate:
    """Blocks held back until this node holds every message id they carry.

    An honest validator feeds a block to its core (and so may reference and
    vote for it) only when it holds the block's payload; a committed block's
    messages are therefore held by the honest validators that certified it,
    and a block naming ids nobody can produce is never committed
    (``docs/network.md``, "Availability"). Bounded in blocks and in age.
    """

    __slots__ = ("_by_id", "_held", "max_age_s", "max_blocks")

    def __init__(self, max_blocks: int = 4096, max_age_s: float = 30.0) -> None:
        self.max_blocks = max_blocks
        self.max_age_s = max_age_s
        self._held: OrderedDict[bytes, tuple[Block, set[bytes], float]] = OrderedDict()
        self._by_id: dict[bytes, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, digest: object) -> bool:
        return digest in self._held

    def wants(self, mid: bytes) -> bool:
        """Whether a held block waits for message ``mid``."""
        return mid in self._by_id

    def hold(self, block: Block, missing: Iterable[bytes], now: float) -> None:
        while len(self._held) >= self.max_blocks:
            self._drop(next(iter(self._held)))
        wanted = set(missing)
        self._held[block.digest] = (block, wanted, now)
        for mid in wanted:
            self._by_id.setdefault(mid, set()).add(block.digest)

    def _drop(self, digest: bytes) -> None:
        _, wanted, _ = self._held.pop(digest)
        for mid in wanted:
            waiters = self._by_id.get(mid)
            if waiters is not None:
                waiters.discard(digest)
                if not waiters:
                    del self._by_id[mid]

    def arrived(self, ids: Iterable[bytes]) -> list[Block]:
        """Blocks whose last missing message is among ``ids``, by round."""
        released: list[Block] = []
        for mid in ids:
            for digest in self._by_id.pop(mid, ()):
                entry = self._held.get(digest)
                if entry is None:
                    continue
                entry[1].discard(mid)
                if not entry[1]:
                    del self._held[digest]
                    released.append(entry[0])
        released.sort(key=lambda b: b.ref)
        return released

    def wanted(self, now: float, older_than: float) -> list[bytes]:
        """Missing ids of blocks held at least ``older_than`` s; drops blocks past max age."""
        for digest in [d for d, (_, _, t) in self._held.items() if now - t > self.max_age_s]:
            self._drop(digest)
        return sorted({m for _, wanted, t in self._held.values() if now - t >= older_than
                       for m in wanted})
