"""The committee as the ledger node's orderer, and the store of validator blocks.

``docs/network.md`` ("Node"): the consensus core decides commits; this
adapter hands them to :class:`simtrust.ledger.LedgerNode` through the
``Orderer`` seam (``take_commits``) and remembers which solid messages still
need a block. A message submitted by this node's clients goes into its next
block; one that arrived by gossip is proposed too if no block has carried it
after a grace period (its origin may have crashed). Blocks are persisted in
acceptance order (table ``ledger_net_blocks``) so a restarted node replays
them into a fresh core and re-derives the same commits.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from simtrust.ledger import CommittedSubDagLike, Message, Orderer
from simtrust.ledger.consensus import Block, CommittedSubDag
from simtrust.store import Database, Migration, apply_migrations

__all__ = ["MIGRATIONS", "BlockStore", "CommitteeOrderer", "LedgerCommit"]

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
    """Commits come from the consensus core; proposals come from solid messages."""

    __slots__ = ("_carried", "_clock", "_commits", "_foreign", "_local", "_origin_local",
                 "grace_s")

    def __init__(self, grace_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._commits: deque[LedgerCommit] = deque()
        self._local: OrderedDict[bytes, None] = OrderedDict()
        self._foreign: OrderedDict[bytes, float] = OrderedDict()
        # Id -> when a block first carried it (for ``reoffer``).
        self._carried: dict[bytes, float] = {}
        self._origin_local = False

    # -- the ledger's side -------------------------------------------------

    def restore(self, last_round: int, unfinalized: Sequence[Message]) -> None:
        """Messages stored but not finalized: propose them again (unless a block has them).

        Commits already handed over are the ledger's: it keeps those it has not
        applied across a rebuild of its indexes, so none is queued again here.
        """
        for m in unfinalized:
            if m.id not in self._carried:
                self._local[m.id] = None

    def on_solid(self, message: Message) -> None:
        mid = message.id
        if mid in self._carried:
            return
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

    def push(self, subs: Iterable[CommittedSubDag], round_offset: int = 0) -> None:
        self._commits.extend(LedgerCommit.of(s, round_offset) for s in subs)

    def push_synced(self, commits: Iterable[LedgerCommit]) -> None:
        """Commits installed from a certified history (snapshot sync), ledger rounds."""
        self._commits.extend(commits)

    def drop_commits(self) -> None:
        """Forget commits not yet taken (a snapshot sync replaces them)."""
        self._commits.clear()

    def reoffer(self, unfinalized: Iterable[Message], older_than: float) -> int:
        """Forget ids a block carried more than ``older_than`` s ago, and propose again
        those still not finalized: their block fell below the garbage-collection
        horizon uncommitted (``docs/consensus.md``), so nothing else would finalize
        them. Keeps the carried set bounded by what arrived within ``older_than``."""
        floor = self._clock() - older_than
        waiting = {m.id for m in unfinalized}
        carried, local = self._carried, self._local
        count = 0
        for mid, seen in list(carried.items()):
            if seen >= floor:
                break  # insertion order is the order blocks first carried them
            del carried[mid]
            if mid in waiting:
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
            local[mid] = None
            count += 1
        return count

    def new_epoch(self, unfinalized: Sequence[Message]) -> None:
        """An epoch ended: its undelivered commits are void, and every message still
        unfinalized is proposed again in the next epoch (``docs/consensus.md`` §12)."""
        self._commits.clear()
        self._carried.clear()
        self._foreign.clear()
        self._local.clear()
        for m in unfinalized:
            self._local[m.id] = None

    def carried(self, block: Block) -> None:
        """A block carries these ids: nobody needs to propose them again."""
        carried = self._carried
        now = self._clock()
        for mid in block.payload:
            carried.setdefault(mid, now)
            self._local.pop(mid, None)
            self._foreign.pop(mid, None)

    def proposal(self, limit: int) -> list[bytes]:
        """Ids for this node's next block: its clients' messages, then orphans past grace."""
        ids: list[bytes] = []
        local = self._local
        while local and len(ids) < limit:
            mid, _ = local.popitem(last=False)
            if mid not in self._carried:
                ids.append(mid)
        floor = self._clock() - self.grace_s
        foreign = self._foreign
        while foreign and len(ids) < limit:
            mid, seen = next(iter(foreign.items()))
            if seen > floor:
                break
            del foreign[mid]
            if mid not in self._carried:
                ids.append(mid)
        return ids

    def backlog(self) -> int:
        return len(self._local) + len(self._foreign)
