"""Validator blocks persist in acceptance order on SQLite and PostgreSQL; a restart resumes."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from simtrust.ledger import Ed25519Signer
from simtrust.ledger.consensus import Block
from simtrust.ledger.net import (
    BlockStore,
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    generate_local_network,
)
from simtrust.ledger.net._wire import FrameType, decode_frame
from simtrust.store import Database, SqliteDatabase

from .conftest import make_messages


def test_a_restarted_validator_replays_its_blocks_to_the_same_commits(
    db: Database, tmp_path: Path
) -> None:
    genesis, paths = generate_local_network(
        1, tmp_path / "net", consensus=ConsensusParams(min_round_interval_ms=0)
    )
    keys = NodeKeys.load(paths[0])
    node = ConsortiumNode(genesis, keys, db)
    raws = make_messages(genesis.network, Ed25519Signer.generate(),
                         [genesis.ledger_genesis().id], 20)
    assert {"accepted"} == {r.status for r in node.submit(raws)}
    for i in range(6):
        node.step(100.0 + i)
    assert 20 == node.finalized_count()
    before = node.ledger.snapshot()
    commits, rounds = node.core.commit_count, node.core.highest_round
    stored = BlockStore(db).load()
    assert rounds == len(stored)
    assert [b.round for b in stored] == sorted(b.round for b in stored)
    node.ledger.close()

    again = ConsortiumNode(genesis, keys, db)
    assert (commits, rounds) == (again.core.commit_count, again.core.highest_round)
    assert 0 == again.stats["replayed_commits"]  # all were applied before the restart
    assert before == again.ledger.snapshot()
    # It goes on from where it was: the next round, never a second block for an old one.
    again.step(200.0)
    assert rounds + 1 == again.core.highest_round
    again.ledger.close()


class _Bus:
    """Four unstarted nodes wired by a FIFO of their block broadcasts, pumped by hand."""

    def __init__(self, nodes: list[ConsortiumNode]) -> None:
        self.nodes = nodes
        self.queue: deque[tuple[int, bytes]] = deque()
        for node in nodes:
            self.wire(node)

    def wire(self, node: ConsortiumNode) -> None:
        sender = node.id
        assert sender is not None

        def broadcast(frame: bytes, *, droppable: bool = True) -> int:
            self.queue.append((sender, frame))
            return len(self.nodes) - 1

        node.net.broadcast = broadcast  # type: ignore[method-assign]

    def pump(self, skip: int | None = None) -> None:
        """Deliver the block frames queued so far to every other node (none to ``skip``);
        what they send on receipt waits for the next call."""
        for _ in range(len(self.queue)):
            sender, data = self.queue.popleft()
            frame = decode_frame(data)
            if frame.type != FrameType.BLOCKS:
                continue
            for node in self.nodes:
                if node.id not in (sender, skip):
                    node._on_blocks(sender, frame.items)

    def rounds(self, count: int, start: float, skip: int | None = None) -> None:
        for i in range(count):
            for node in self.nodes:
                if node.id != skip:
                    node.step(start + i)
            self.pump(skip)


def test_a_crash_with_buffered_peer_blocks_recovers_from_the_stored_prefix(
    tmp_path: Path,
) -> None:
    """Peer blocks wait in the store's buffer between writes; a crash loses them, and
    the restarted validator rebuilds from the stored prefix and finalizes the same order."""
    genesis, paths = generate_local_network(
        4, tmp_path / "net", consensus=ConsensusParams(min_round_interval_ms=0)
    )
    keys = [NodeKeys.load(p) for p in paths]
    files = [tmp_path / f"v{i}.db" for i in range(4)]
    nodes = [ConsortiumNode(genesis, k, SqliteDatabase(f)) for k, f in zip(keys, files, strict=True)]
    bus = _Bus(nodes)
    raws = make_messages(genesis.network, Ed25519Signer.generate(),
                         [genesis.ledger_genesis().id], 20)
    for node in nodes:
        assert {"accepted"} == {r.status for r in node.submit(raws)}
    bus.rounds(6, 100.0)
    assert all(20 == n.finalized_count() for n in nodes)

    # Validator 3 receives one more round of peer blocks, but its loop does not
    # step: with no quorum of a new round it neither proposes nor commits, so the
    # blocks stay in the buffer.
    for node in nodes[:3]:
        node.step(200.0)
    victim = nodes[3]
    stored = victim.blocks.count()
    before = victim.ledger.snapshot()
    bus.queue = deque(item for item in bus.queue if item[0] != 3)
    sender, frame = bus.queue.popleft()
    items = decode_frame(frame).items
    assert not any(Block.decode(raw).digest in victim.core for raw in items)
    victim._on_blocks(sender, items)
    assert all(Block.decode(raw).digest in victim.core for raw in items)
    assert len(items) <= victim.blocks.buffered
    assert stored == victim.blocks.count()
    # The crash: the buffer is lost, nothing else is written.
    victim.ledger.close()

    again = ConsortiumNode(genesis, keys[3], SqliteDatabase(files[3]))
    # The stored blocks are a prefix of the acceptance order: each one's parents
    # are there, so all of them are back in the core and none waits for a parent.
    assert 0 == again.core.pending_count()
    assert stored == len(again.blocks.load())
    assert not any(Block.decode(raw).digest in again.core for raw in items)
    assert before == again.ledger.snapshot()
    nodes[3] = again
    bus.wire(again)
    # The lost blocks come back from peers (their stores answer, in acceptance order).
    again._on_blocks(0, [b.encode() for b in nodes[0].blocks.load()])
    more = make_messages(genesis.network, Ed25519Signer.generate(),
                         [genesis.ledger_genesis().id], 10)
    for node in nodes:
        assert {"accepted"} == {r.status for r in node.submit(more)}
    bus.rounds(8, 300.0)
    assert all(30 == n.finalized_count() for n in nodes)
    assert 1 == len({n.ledger.snapshot() for n in nodes})
    assert all(0 == n.stats["equivocations"] for n in nodes)
    for node in nodes:
        node.ledger.close()
