"""The committee orderer proposes a message only after the parents it approves
(docs/consensus.md §7.3): finalized, carried by a block that precedes the
proposal, or earlier in the same proposal; the others wait in their place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simtrust.ledger.consensus import Block, BlockRef, CommittedSubDag
from simtrust.ledger.net import CommitteeOrderer

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


@dataclass(frozen=True)
class Msg:
    id: bytes
    parents: tuple[bytes, ...] = ()


def _id(label: str) -> bytes:
    return label.encode().ljust(32, b".")


def _block(round_: int, payload: Sequence[bytes]) -> Block:
    return Block.create(epoch=0, round=round_, author=0, timestamp_ms=0, parents=[],
                        payload=payload, key=KEY)


class Precedes:
    """``CausalHistory.precedes`` over a fixed set of blocks."""

    def __init__(self, *blocks: Block) -> None:
        self.digests = {b.digest for b in blocks}
        self.asked: list[BlockRef] = []

    def __call__(self, ref: BlockRef) -> bool:
        self.asked.append(ref)
        return ref.digest in self.digests


def _mine(orderer: CommitteeOrderer, *messages: Msg) -> None:
    orderer.local(True)
    for m in messages:
        orderer.on_solid(m)
    orderer.local(False)


def test_a_child_waits_until_its_parents_block_precedes_the_proposal() -> None:
    """The defect of §7.3: the parent is carried by a block outside the proposal's
    causal history; the solid child must not be proposed yet, and is once it is."""
    parent = Msg(_id("parent"))
    child = Msg(_id("child"), (parent.id,))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    orderer.on_solid(parent)  # by gossip: its origin proposes it
    carrier = _block(3, [parent.id])
    orderer.carried(carrier)
    _mine(orderer, child)
    absent = Precedes()
    assert [] == orderer.proposal(10, absent)
    assert [carrier.ref] == absent.asked
    assert 1 == orderer.held
    assert 1 == orderer.backlog()  # queued, not dropped
    assert [child.id] == orderer.proposal(10, Precedes(carrier))
    assert 0 == orderer.held


def test_a_parent_finalized_by_a_commit_no_longer_holds_its_children() -> None:
    parent, other = Msg(_id("parent")), Msg(_id("other"))
    child = Msg(_id("child"), (parent.id, other.id))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    carrier = _block(2, [parent.id])
    orderer.carried(carrier)
    _mine(orderer, child)
    assert [] == orderer.proposal(10, Precedes())
    orderer.push([CommittedSubDag(0, carrier.ref, 4, 0, (carrier.ref,), (parent.id,))])
    # ``other`` is neither queued nor carried here: finalized long ago.
    assert [child.id] == orderer.proposal(10, Precedes())


def test_parents_go_first_in_the_same_block() -> None:
    a = Msg(_id("a"))
    b = Msg(_id("b"), (a.id,))
    c = Msg(_id("c"), (b.id, a.id))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    _mine(orderer, a, b, c)
    assert [a.id, b.id, c.id] == orderer.proposal(10, Precedes())


def test_a_child_of_a_queued_parent_past_the_limit_waits_for_it() -> None:
    a = Msg(_id("a"))
    b = Msg(_id("b"), (a.id,))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    _mine(orderer, a, b)
    assert [a.id] == orderer.proposal(1, Precedes())
    own = _block(5, [a.id])
    orderer.carried(own)
    assert [] == orderer.proposal(1, Precedes())  # its block is not an ancestor yet
    assert [b.id] == orderer.proposal(1, Precedes(own))


def _gossiped_parent_and_local_child(now: list[float]) -> tuple[CommitteeOrderer, Msg, Msg]:
    """A parent gossiped from another validator (grace 2 s) and a local child of it."""
    orderer = CommitteeOrderer(grace_s=2.0, clock=lambda: now[0])
    parent = Msg(_id("gossiped"))
    child = Msg(_id("mine"), (parent.id,))
    orderer.on_solid(parent)
    _mine(orderer, child)
    return orderer, parent, child


def test_a_local_child_of_a_gossiped_parent_waits_for_the_parents_block() -> None:
    """The parent is in its grace period (its origin will propose it): the child
    does not jump ahead of it, and goes once the origin's block precedes."""
    now = [0.0]
    orderer, parent, child = _gossiped_parent_and_local_child(now)
    assert [] == orderer.proposal(10, Precedes())
    origin = _block(7, [parent.id])
    orderer.carried(origin)
    assert [child.id] == orderer.proposal(10, Precedes(origin))


def test_an_orphan_past_grace_goes_before_its_child_a_round_later() -> None:
    """The origin crashed: the orphan is proposed after grace; its local child
    (scanned first) follows in the next block, whose history holds ours."""
    now = [0.0]
    orderer, parent, child = _gossiped_parent_and_local_child(now)
    now[0] = 3.0
    assert [parent.id] == orderer.proposal(10, Precedes())
    own = _block(4, [parent.id])
    orderer.carried(own)
    assert [child.id] == orderer.proposal(10, Precedes(own))


def test_held_ids_keep_their_place_in_the_queue() -> None:
    parent = Msg(_id("parent"))
    first = Msg(_id("first"), (parent.id,))
    second = Msg(_id("second"))
    third = Msg(_id("third"), (parent.id,))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    carrier = _block(3, [parent.id])
    orderer.carried(carrier)
    _mine(orderer, first, second, third)
    assert [second.id] == orderer.proposal(10, Precedes())
    assert [first.id, third.id] == orderer.proposal(10, Precedes(carrier))


def test_a_requeued_parent_goes_first_again() -> None:
    """Ids of a block left behind are proposed again with their approval order."""
    a = Msg(_id("a"))
    b = Msg(_id("b"), (a.id,))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    _mine(orderer, a, b)
    ids = orderer.proposal(10, Precedes())
    behind = _block(1, ids)
    orderer.carried(behind)
    assert 2 == orderer.requeue(behind.payload)
    assert [a.id, b.id] == orderer.proposal(10, Precedes())


def test_commits_applied_before_a_restart_release_children_without_going_to_the_ledger() -> (
    None
):
    """A restarted node replays commits it applied before: they are not handed to the
    ledger again, but their ids count as finalized (their blocks may be forgotten)."""
    parent = Msg(_id("parent"))
    child = Msg(_id("child"), (parent.id,))
    orderer = CommitteeOrderer(clock=lambda: 0.0)
    orderer.restore(9, [child])
    old = _block(2, [parent.id])
    orderer.carried(old)
    sub = CommittedSubDag(0, old.ref, 4, 0, (old.ref,), (parent.id,))
    assert 0 == orderer.push([sub], applied=4)
    assert [] == orderer.take_commits()
    assert [child.id] == orderer.proposal(10, Precedes())
    assert 1 == orderer.push([sub], applied=3)
