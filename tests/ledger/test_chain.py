"""The commit chain: heads stored with each commit, served as records, recomputable."""

from __future__ import annotations

from simtrust.ledger import (
    CommitRecord,
    Ed25519Signer,
    LedgerNode,
    Output,
    chain_genesis,
    chain_step,
    output_id,
)
from simtrust.ledger._node import DEFAULT_SUPPLY

from .conftest import ManualClock, NodeFactory
from .test_utxo import ALICE, BOB, tx


def _history(node: LedgerNode, operator: Ed25519Signer) -> None:
    """A few commits, one of them with a conflicting transaction."""
    g0 = output_id(node.genesis_id, 0)
    tx(node, operator, [g0], [Output(ALICE.public_key, DEFAULT_SUPPLY)])
    tx(node, operator, [g0], [Output(BOB.public_key, DEFAULT_SUPPLY)])
    for i in range(5):
        node.issue_data(b"chain", b"entry %d" % i)


def _fold(node: LedgerNode, records: list[CommitRecord]) -> list[bytes]:
    heads = [chain_genesis(node.genesis_id)]
    for record in records:
        heads.append(record.chain_after(heads[-1]))
    return heads


def test_served_records_recompute_every_stored_head(
    any_db_node: LedgerNode, operator: Ed25519Signer
) -> None:
    node = any_db_node
    _history(node, operator)
    height, _, head = node.chain_head()
    assert 7 == height == node.height
    records = node.commit_records(0, 100, 1 << 20)
    assert list(range(1, height + 1)) == [r.height for r in records]
    heads = _fold(node, records)
    assert head == heads[-1]
    for h in range(1, height + 1):
        stored = node.chain_at(h)
        assert stored is not None
        assert (records[h - 1].round, heads[h]) == stored
    assert any(st == 1 and reason == "conflict-double-spend"
               for r in records for _, st, reason in r.entries)


def test_live_and_recomputed_chain_agree(any_db_node: LedgerNode, operator: Ed25519Signer) -> None:
    _history(any_db_node, operator)
    live, again = any_db_node.snapshot(), any_db_node.recompute()
    assert live == again
    assert 7 == live.commit_height


def test_an_outcome_changes_the_head() -> None:
    leader, mid = bytes(32), bytes(range(32))
    base = chain_step(bytes(32), 5, leader, [(mid, 0, None)])
    assert base != chain_step(bytes(32), 5, leader, [(mid, 1, "conflict-double-spend")])
    assert base != chain_step(bytes(32), 6, leader, [(mid, 0, None)])
    assert base != chain_step(bytes(32), 5, leader, [])
    assert base == chain_step(bytes(32), 5, leader, [(mid, 0, None)])


def test_records_respect_the_limits(node: LedgerNode, operator: Ed25519Signer) -> None:
    _history(node, operator)
    assert [3, 4] == [r.height for r in node.commit_records(2, 2, 1 << 20)]
    # A byte budget smaller than one commit still returns that one commit.
    assert [1] == [r.height for r in node.commit_records(0, 100, 1)]
    assert [] == node.commit_records(node.height, 100, 1 << 20)


def test_a_store_from_before_the_chain_gets_its_heads_on_start(
    make_node: NodeFactory, operator: Ed25519Signer, clock: ManualClock
) -> None:
    node = make_node()
    _history(node, operator)
    expected = node.chain_head()
    node.db.execute("UPDATE ledger_rounds SET height = NULL, chain = NULL")
    again = make_node(db=node.db)
    assert expected == again.chain_head()
    assert again.snapshot() == again.recompute()
