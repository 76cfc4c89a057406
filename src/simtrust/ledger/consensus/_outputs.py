"""What the consensus core hands its driver (``docs/consensus.md`` §5): accepted blocks,
missing blocks to fetch, equivocation evidence, and committed sub-DAGs."""

from __future__ import annotations

from dataclasses import dataclass

from simtrust.errors import Rejected

from ._block import Block, BlockRef
from ._committee import Committee

__all__ = [
    "BlockAccepted",
    "CommittedSubDag",
    "EquivocationDetected",
    "EquivocationProof",
    "MissingBlocks",
    "Output",
]


@dataclass(frozen=True, slots=True)
class CommittedSubDag:
    """One committed leader and the newly finalized blocks of its past cone.

    ``index`` counts commits from 0; ``message_ids`` is the finalized order of
    payload ids (blocks by round, author, digest; ids in block order; an id
    already finalized earlier is dropped: first occurrence wins).
    """

    index: int
    leader: BlockRef
    round: int
    timestamp_ms: int
    blocks: tuple[BlockRef, ...]
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BlockAccepted:
    """The block joined the DAG (all its ancestors are present): persist it."""

    block: Block


@dataclass(frozen=True, slots=True)
class MissingBlocks:
    """Blocks referenced by a waiting block that this core does not hold: fetch them."""

    refs: tuple[BlockRef, ...]


@dataclass(frozen=True, slots=True)
class EquivocationProof:
    """Two different signed blocks by one author for one (epoch, round)."""

    first: Block
    second: Block

    def verify(self, committee: Committee) -> None:
        """Raise unless this proves equivocation by a member of ``committee``."""
        a, b = self.first, self.second
        if (a.epoch, a.round, a.author) != (b.epoch, b.round, b.author):
            raise Rejected("not-equivocation", "blocks are for different slots")
        if a.digest == b.digest:
            raise Rejected("not-equivocation", "the two blocks are the same")
        if a.epoch != committee.epoch or not committee.contains(a.author):
            raise Rejected("author", "author is not in this committee")
        key = committee.public_key(a.author)
        a.verify_signature(key)
        b.verify_signature(key)


@dataclass(frozen=True, slots=True)
class EquivocationDetected:
    """First evidence that an author signed two blocks in one round."""

    proof: EquivocationProof


Output = BlockAccepted | MissingBlocks | EquivocationDetected | CommittedSubDag
