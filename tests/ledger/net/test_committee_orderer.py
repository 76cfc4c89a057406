"""The committee orderer: what goes into blocks, and commits handed to the ledger."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simtrust.ledger import Ed25519Signer, Message, decode_message
from simtrust.ledger.consensus import Block, BlockRef, CommittedSubDag
from simtrust.ledger.net import CommitteeOrderer

from .conftest import make_messages


def _unordered(ref: BlockRef) -> bool:
    """No block precedes the proposal (a validator that holds no DAG yet)."""
    return False


def _msg(count: int) -> list[Message]:
    raws = make_messages("n", Ed25519Signer.generate(), [os.urandom(32)], count)
    return [decode_message(r) for r in raws]


def test_own_clients_messages_are_proposed_first_and_once() -> None:
    now = [0.0]
    orderer = CommitteeOrderer(grace_s=2.0, clock=lambda: now[0])
    mine, theirs = _msg(3), _msg(2)
    orderer.local(True)
    for m in mine:
        orderer.on_solid(m)
    orderer.local(False)
    for m in theirs:
        orderer.on_solid(m)
    assert [m.id for m in mine] == orderer.proposal(10, _unordered)
    assert [] == orderer.proposal(10, _unordered)  # gossip waits for its origin's block
    now[0] = 2.5
    assert [m.id for m in theirs] == orderer.proposal(10, _unordered)  # orphans rescued after grace


def test_ids_carried_by_any_block_are_never_proposed_again() -> None:
    now = [0.0]
    orderer = CommitteeOrderer(grace_s=1.0, clock=lambda: now[0])
    theirs = _msg(3)
    for m in theirs:
        orderer.on_solid(m)
    block = Block.create(epoch=0, round=1, author=0, timestamp_ms=0, parents=[],
                         payload=[theirs[0].id, theirs[2].id], key=Ed25519PrivateKey.generate())
    orderer.carried(block)
    now[0] = 5.0
    assert [theirs[1].id] == orderer.proposal(10, _unordered)
    assert 0 == orderer.backlog()


def test_commits_are_handed_over_once() -> None:
    orderer = CommitteeOrderer()
    orderer.restore(0, [])
    subs = [CommittedSubDag(i, BlockRef(r, 0, os.urandom(32)), r, 0, (), (os.urandom(32),))
            for i, r in enumerate((1, 2, 4))]
    orderer.push(subs)
    assert [1, 2, 4] == [c.round for c in orderer.take_commits()]
    orderer.restore(1, [])  # a ledger rebuild keeps the commits it took: none come again
    assert [] == orderer.take_commits()


def test_ids_of_a_block_left_behind_are_proposed_again_at_once() -> None:
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    mine = _msg(2)
    orderer.local(True)
    for m in mine:
        orderer.on_solid(m)
    orderer.local(False)
    ids = orderer.proposal(10, _unordered)
    block = Block.create(epoch=0, round=1, author=0, timestamp_ms=0, parents=[],
                         payload=ids, key=Ed25519PrivateKey.generate())
    orderer.carried(block)
    assert [] == orderer.proposal(10, _unordered)
    assert 2 == orderer.requeue(block.payload)  # no reoffer timeout to wait for
    assert ids == orderer.proposal(10, _unordered)
