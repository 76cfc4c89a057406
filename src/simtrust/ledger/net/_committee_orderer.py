"""The committee as the ledger node's orderer, and the store of validator blocks.

``docs/network.md`` ("Node"): the consensus core decides commits; this
adapter hands them to :class:`simtrust.ledger.LedgerNode` through the
``Orderer`` seam (``take_commits``) and remembers which solid messages still
need a block. A message submitted by this node's clients goes into its next
block; one that arrived by gossip is proposed too if no block has carried it
after a grace period (its origin may have crashed). Either waits until each
parent it approves is ordered before it (``docs/consensus.md`` §7.3). Blocks
are persisted in acceptance order (table ``ledger_net_blocks``) so a restarted
node replays them into a fresh core and re-derives the same commits.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from simtrust.ledger import CommittedSubDagLike, Orderer
from simtrust.ledger.consensus import Block, BlockRef, CommittedSubDag
from simtrust.store import Database, Migration, apply_migrations

__all__ = ["MIGRATIONS", "Approving", "BlockStore", "CommitteeOrderer", "LedgerCommit"]

_V1 = """
CREATE TABLE ledger_net_blocks (
    seq {serial},
    digest {blob} NOT NULL UNIQUE,
    round {bigint} NOT NULL,
    author INTEGER NOT NULL,
    raw {blob} NOT NULL
)
"""

_V2 = """
CREATE TABLE ledger_net_epochs (
    epoch {bigint} PRIMARY KEY,
    round_offset {bigint} NOT NULL,
    body {blob} NOT NULL
)
"""

_V3 = """
CREATE TABLE ledger_net_checkpoints (
    height {bigint} PRIMARY KEY,
    epoch {bigint} NOT NULL,
    ends_epoch INTEGER NOT NULL,
    cert {blob} NOT NULL
);
CREATE TABLE ledger_net_resume (
    epoch {bigint} PRIMARY KEY,
    round {bigint} NOT NULL,
    commits {bigint} NOT NULL
)
"""

MIGRATIONS: list[Migration] = [
    Migration("ledger-net", 1, "validator blocks", _V1),
    Migration("ledger-net", 2, "committee epochs (docs/network.md, Committee changes)", _V2),
    Migration("ledger-net", 3, "certified checkpoints and resume points (docs/network.md, "
              "Snapshot sync)", _V3),
]


class Approving(Protocol):
    """What the orderer reads of a message (``Message`` fits): its id and the ids it
    approves."""

    @property
    def id(self) -> bytes: ...

    @property
    def parents(self) -> tuple[bytes, ...]: ...


@dataclass(frozen=True, slots=True)
class LedgerCommit:
    """A consensus commit in the shape the ledger's ``Orderer`` seam expects."""

    leader: bytes
    round: int
    ordered_message_ids: tuple[bytes, ...]
    index: int
    timestamp_ms: int

    @classmethod
    def of(cls, sub: CommittedSubDag, round_offset: int = 0) -> LedgerCommit:
        """``round`` is the ledger's: the epoch's round plus the epoch's round offset."""
        return cls(sub.leader.digest, round_offset + sub.round, sub.message_ids, sub.index,
                   sub.timestamp_ms)


class BlockStore:
    """Validator blocks in the order the core accepted them.

    Peer blocks may wait in a buffer (``add``) and reach the table together
    (``flush``, one transaction); ``append`` writes the buffer and then its own
    blocks in one transaction. Writes keep acceptance order, so the stored blocks
    are always a prefix of it: every stored block's parents are stored before it
    (docs/decisions/ledger-validator-block-writes.md says when the node flushes).
    """

    __slots__ = ("_buffer", "db")

    def __init__(self, db: Database) -> None:
        self.db = db
        self._buffer: dict[bytes, Block] = {}
        apply_migrations(db, MIGRATIONS)

    def load(self) -> list[Block]:
        """Every accepted block: the buffer is written first."""
        self.flush()
        return [
            Block.decode(bytes(raw))
            for (raw,) in self.db.query("SELECT raw FROM ledger_net_blocks ORDER BY seq")
        ]

    def add(self, blocks: Iterable[Block]) -> None:
        """Buffer accepted peer blocks until the next ``flush`` or ``append``."""
        for block in blocks:
            self._buffer.setdefault(block.digest, block)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        """Write the buffered blocks (one transaction)."""
        self.append(())

    def append(self, blocks: Sequence[Block]) -> None:
        """Write the buffered blocks, then ``blocks``, in one transaction."""
        rows = [*self._buffer.values(), *blocks]
        if not rows:
            return
        with self.db.transaction():
            self.db.executemany(
                # A block stored before a snapshot sync may be accepted again after it.
                "INSERT INTO ledger_net_blocks (digest, round, author, raw) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (digest) DO NOTHING",
                [(b.digest, b.round, b.author, b.encode()) for b in rows],
            )
        self._buffer.clear()

    def history(self, digests: Iterable[bytes], floor_round: int, limit: int,
                skip: set[bytes]) -> list[Block]:
        """Stored blocks among ``digests`` and their stored ancestors at rounds ≥
        ``floor_round``, none in ``skip``, at most ``limit``: answers for blocks the
        core already dropped below its garbage-collection horizon."""
        seen = set(skip)
        stack = [d for d in digests if d not in seen]
        found: list[Block] = []
        while stack and len(found) < limit:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            block = self._buffer.get(digest)
            if block is None:
                row = self.db.query_one("SELECT raw FROM ledger_net_blocks WHERE digest = ?",
                                        (digest,))
                if row is None:
                    continue
                block = Block.decode(bytes(row[0]))
            found.append(block)
            stack.extend(p.digest for p in block.parents
                         if p.round >= floor_round and p.digest not in seen)
        found.sort(key=lambda b: b.ref)
        return found

    def count(self) -> int:
        """Stored blocks (the buffer not counted)."""
        row = self.db.query_one("SELECT COUNT(*) FROM ledger_net_blocks")
        return int(row[0]) if row else 0


class CommitteeOrderer(Orderer):
    """Commits come from the consensus core; proposals come from solid messages.

    Approval order (``docs/consensus.md`` §7.3): an id enters a proposal only
    when each parent it approves is finalized, carried by a block that
    precedes the proposal (``CausalHistory.precedes``), or earlier in the same
    proposal. Others stay queued, in their place, for a later proposal.
    """

    __slots__ = ("_carried", "_carrier", "_clock", "_commits", "_foreign", "_local",
                 "_origin_local", "_parents", "grace_s", "held")

    def __init__(self, grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._commits: deque[LedgerCommit] = deque()
        self._local: OrderedDict[bytes, None] = OrderedDict()
        self._foreign: OrderedDict[bytes, float] = OrderedDict()
        # Id -> when a block first carried it (for ``reoffer``).
        self._carried: dict[bytes, float] = {}
        # Id -> the first block that carried it, until a commit finalizes it.
        self._carrier: dict[bytes, BlockRef] = {}
        # Id -> the ids it approves, while queued or carried and not finalized.
        self._parents: dict[bytes, tuple[bytes, ...]] = {}
        self._origin_local = False
        #: Ids held back by the last proposal: a parent not yet ordered before them.
        self.held = 0

    # -- the ledger's side -------------------------------------------------

    def restore(self, last_round: int, unfinalized: Sequence[Approving]) -> None:
        """Messages stored but not finalized: propose them again (unless a block has them).

        Commits already handed over are the ledger's: it keeps those it has not
        applied across a rebuild of its indexes, so none is queued again here.
        """
        for m in unfinalized:
            self._parents[m.id] = m.parents
            if m.id not in self._carried:
                self._local[m.id] = None

    def on_solid(self, message: Approving) -> None:
        mid = message.id
        if mid in self._carried:
            return
        self._parents[mid] = message.parents
        if self._origin_local:
            self._local[mid] = None
        else:
            self._foreign[mid] = self._clock()

    def take_commits(self) -> list[CommittedSubDagLike]:
        out: list[CommittedSubDagLike] = list(self._commits)
        self._commits.clear()
        return out

    # -- the network's side ------------------------------------------------

    def local(self, on: bool) -> None:
        """While on, messages that become solid came from this node's own clients."""
        self._origin_local = on

    def push(self, subs: Iterable[CommittedSubDag], round_offset: int = 0,
             applied: int = -1) -> int:
        """Hand commits to the ledger, but only those above ledger round ``applied``
        (the earlier ones, replayed after a restart, were applied before it); all of
        them mark their ids finalized. Returns how many were handed over."""
        commits = [LedgerCommit.of(s, round_offset) for s in subs]
        self._finalized(commits)
        fresh = [c for c in commits if c.round > applied]
        self._commits.extend(fresh)
        return len(fresh)

    def push_synced(self, commits: Iterable[LedgerCommit]) -> None:
        """Commits installed from a certified history (snapshot sync), ledger rounds."""
        commits = list(commits)
        self._finalized(commits)
        self._commits.extend(commits)

    def _finalized(self, commits: Iterable[LedgerCommit]) -> None:
        carrier, parents = self._carrier, self._parents
        for commit in commits:
            for mid in commit.ordered_message_ids:
                carrier.pop(mid, None)
                parents.pop(mid, None)

    def drop_commits(self) -> None:
        """Forget commits not yet taken (a snapshot sync replaces them)."""
        self._commits.clear()

    def reoffer(self, unfinalized: Iterable[Approving], older_than: float) -> int:
        """Forget ids a block carried more than ``older_than`` s ago, and propose again
        those still not finalized: their block fell below the garbage-collection
        horizon uncommitted (``docs/consensus.md``), so nothing else would finalize
        them. Keeps the carried set bounded by what arrived within ``older_than``."""
        floor = self._clock() - older_than
        waiting = {m.id: m for m in unfinalized}
        carried, local = self._carried, self._local
        count = 0
        for mid, seen in list(carried.items()):
            if seen >= floor:
                break  # insertion order is the order blocks first carried them
            del carried[mid]
            self._carrier.pop(mid, None)
            self._parents.pop(mid, None)
            message = waiting.get(mid)
            if message is not None:
                self._parents[mid] = message.parents
                local[mid] = None
                count += 1
        return count

    def requeue(self, ids: Iterable[bytes]) -> int:
        """Propose ``ids`` again: the block that carried them was left behind
        (``Core.take_left_behind``); an id finalized meanwhile is dropped by the core."""
        carried, local = self._carried, self._local
        count = 0
        for mid in ids:
            carried.pop(mid, None)
            self._carrier.pop(mid, None)
            local[mid] = None
            count += 1
        return count

    def new_epoch(self, unfinalized: Sequence[Approving]) -> None:
        """An epoch ended: its undelivered commits are void, and every message still
        unfinalized is proposed again in the next epoch (``docs/consensus.md`` §12)."""
        self._commits.clear()
        self._carried.clear()
        self._carrier.clear()
        self._parents.clear()
        self._foreign.clear()
        self._local.clear()
        for m in unfinalized:
            self._parents[m.id] = m.parents
            self._local[m.id] = None

    def carried(self, block: Block) -> None:
        """A block carries these ids: nobody needs to propose them again."""
        carried, carrier = self._carried, self._carrier
        now = self._clock()
        ref = block.ref
        for mid in block.payload:
            if mid not in carried:
                carried[mid] = now
                carrier[mid] = ref
            self._local.pop(mid, None)
            self._foreign.pop(mid, None)

    def proposal(self, limit: int, precedes: Callable[[BlockRef], bool]) -> list[bytes]:
        """Ids for this node's next block: its clients' messages, then orphans past
        grace, each after its parents; ``precedes(block)`` says whether a block is
        ordered before the proposal (``CausalHistory.precedes``)."""
        chosen: dict[bytes, None] = {}
        held: set[bytes] = set()
        self._take(self._local, None, limit, precedes, chosen, held)
        self._take(self._foreign, self._clock() - self.grace_s, limit, precedes, chosen, held)
        self.held = len(held)
        return list(chosen)

    def _take(self, queue: OrderedDict[bytes, float] | OrderedDict[bytes, None],
              floor: float | None, limit: int, precedes: Callable[[BlockRef], bool],
              chosen: dict[bytes, None], held: set[bytes]) -> None:
        """Move ready ids from the front of ``queue`` (those queued by ``floor``) into
        ``chosen``; the ones not ready keep their place at the front."""
        kept: list[tuple[bytes, float | None]] = []
        carried = self._carried
        while queue and len(chosen) < limit:
            mid, seen = next(iter(queue.items()))
            if floor is not None and seen is not None and seen > floor:
                break
            del queue[mid]
            if mid in carried:
                continue
            if self._ready(mid, precedes, chosen, held):
                chosen[mid] = None
            else:
                held.add(mid)
                kept.append((mid, seen))
        for mid, seen in reversed(kept):
            queue[mid] = seen  # type: ignore[assignment]  # the value type of this queue
            queue.move_to_end(mid, last=False)

    def _ready(self, mid: bytes, precedes: Callable[[BlockRef], bool],
               chosen: dict[bytes, None], held: set[bytes]) -> bool:
        """Whether every parent of ``mid`` is finalized before a block carrying it."""
        carrier = self._carrier
        for parent in self._parents.get(mid, ()):
            if parent in chosen:
                continue
            ref = carrier.get(parent)
            if ref is not None:
                if not precedes(ref):
                    return False
            elif parent in held or parent in self._local or parent in self._foreign:
                return False  # queued, not carried: it must go first
        return True

    def backlog(self) -> int:
        return len(self._local) + len(self._foreign)
