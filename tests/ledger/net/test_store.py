"""Validator blocks persist in acceptance order on SQLite and PostgreSQL; a restart resumes."""

from __future__ import annotations

from pathlib import Path

from simtrust.ledger import Ed25519Signer
from simtrust.ledger.net import (
    BlockStore,
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    generate_local_network,
)
from simtrust.store import Database

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
