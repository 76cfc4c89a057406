"""The commit rule on hand-built DAGs, and the core's ingestion rules (docs/consensus.md §5–§7)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidSignature, InvalidTransition, Rejected
from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    BlockRef,
    Core,
    EquivocationDetected,
    EquivocationProof,
    MissingBlocks,
    Output,
)
from simtrust.testing.ledger.consensus_sim import check_prefixes

from .conftest import Dag, commits, feed, flat, mid


def test_one_validator_commits_every_round() -> None:
    dag = Dag(1)
    core = Core(dag.committee, author=0, key=dag.keys[0])
    out: list[Output] = []
    for t in range(10):
        assert t + 1 == core.ready_round(t)
        block = core.propose(t, [mid(f"m{t}")])
        out.extend(core.on_block(block))
    subs = commits(out)
    assert list(range(1, 9)) == [s.round for s in subs]
    assert list(range(8)) == [s.index for s in subs]
    assert [mid(f"m{t}") for t in range(8)] == [m for s in subs for m in s.message_ids]


def test_complete_dag_commits_each_leader_with_its_cone_in_order(dag4: Dag) -> None:
    layers = dag4.rounds(8, payload=True)
    subs = commits(feed(Core(dag4.committee), flat(layers)))
    assert list(range(1, 7)) == [s.round for s in subs]
    assert [dag4.leader(r) for r in range(1, 7)] == [s.leader.author for s in subs]
    first, second = subs[0], subs[1]
    assert (first.leader,) == first.blocks
    leader2 = second.leader
    rest1 = sorted(b.ref for b in layers[0] if b.ref != first.leader)
    assert (*rest1, leader2) == second.blocks
    assert tuple(mid(f"r{ref.round}a{ref.author}") for ref in second.blocks) == second.message_ids
    every = [ref for s in subs for ref in s.blocks]
    assert len(set(every)) == len(every)


def test_message_ids_first_occurrence_wins(dag4: Dag) -> None:
    r1 = [dag4.block(1, a, payload=[mid("dup"), mid(f"own{a}")]) for a in range(4)]
    layers = [r1]
    for r in range(2, 6):
        layers.append(dag4.layer(r, layers[-1]))
    ids = [m for s in commits(feed(Core(dag4.committee), flat(layers))) for m in s.message_ids]
    assert 1 == ids.count(mid("dup"))
    assert len(ids) == len(set(ids))
    assert {mid("dup")} | {mid(f"own{a}") for a in range(4)} == set(ids)


def test_missing_leader_is_skipped(dag4: Dag) -> None:
    absent = dag4.leader(2)
    layers = [dag4.layer(1, [])]
    layers.append(dag4.layer(2, layers[0], [a for a in range(4) if a != absent]))
    for r in range(3, 7):
        layers.append(dag4.layer(r, layers[-1]))
    core = Core(dag4.committee)
    subs = commits(feed(core, flat(layers)))
    assert [1, 3, 4] == [s.round for s in subs]
    assert core.last_decided_round >= 4


def _wave(dag: Dag, voters: set[int], certifier_parents: list[set[int]]) -> list[list[Block]]:
    """Rounds 1..8: round 4 blocks of ``voters`` reference the round-3 leader, the others
    don't; round-5 block of author a references the round-4 blocks of certifier_parents[a]."""
    leader3 = dag.leader(3)
    layers = [dag.layer(1, [])]
    layers.append(dag.layer(2, layers[-1]))
    layers.append(dag.layer(3, layers[-1]))
    r3 = layers[-1]
    r4 = [
        dag.block(4, a, r3 if a in voters else [b for b in r3 if b.author != leader3])
        for a in range(4)
    ]
    layers.append(r4)
    layers.append(
        [dag.block(5, a, [r4[p] for p in sorted(certifier_parents[a])]) for a in range(4)]
    )
    for r in range(6, 9):
        layers.append(dag.layer(r, layers[-1]))
    return layers


def test_indirect_commit_through_anchor_history(dag4: Dag) -> None:
    leader3 = dag4.leader(3)
    others = [a for a in range(4) if a != leader3]
    blamer = others[0]
    voters = set(range(4)) - {blamer}
    # Only one round-5 block sees three votes (a certificate); the others include the blamer.
    parents = [set(voters) if a == 0 else {blamer} | set(sorted(voters)[:2]) for a in range(4)]
    layers = _wave(dag4, voters, parents)
    core = Core(dag4.committee)
    early = commits(feed(core, flat(layers[:6])))
    assert 3 not in [s.round for s in early]  # no direct decision: 1 certificate, 1 blame
    late = commits(feed(core, flat(layers[6:])))
    rounds = [s.round for s in early + late]
    assert 3 in rounds
    leader = next(s for s in early + late if s.round == 3)
    assert layers[2][leader3].ref == leader.leader
    assert 6 in rounds  # the anchor


def test_indirect_skip_when_anchor_history_has_no_certificate(dag4: Dag) -> None:
    leader3 = dag4.leader(3)
    others = [a for a in range(4) if a != leader3]
    voters = set(range(4)) - set(others[:2])  # two votes: no certificate can ever form
    parents = [set(range(4)) - {a} for a in range(4)]
    layers = _wave(dag4, voters, parents)
    subs = commits(feed(Core(dag4.committee), flat(layers)))
    rounds = [s.round for s in subs]
    assert 3 not in rounds
    assert 6 in rounds
    leader_block = layers[2][leader3].ref
    assert any(leader_block in s.blocks for s in subs)  # finalized inside a later cone


def test_equivocation_is_detected_with_proof_and_counted_once() -> None:
    dag = Dag(4)
    core = Core(dag.committee, author=0, key=dag.keys[0])
    a = dag.block(1, 1, payload=[mid("a")])
    b = dag.block(1, 1, payload=[mid("b")])
    c = dag.block(1, 2)
    out = feed(core, [a, b, c])
    proofs = [o.proof for o in out if isinstance(o, EquivocationDetected)]
    assert 1 == len(proofs)
    proofs[0].verify(dag.committee)
    assert proofs == list(core.equivocations())
    # authors 1 and 2 only: 2 of 4 is no quorum although three blocks arrived
    assert 1 == core.proposal_round()
    own = core.propose(0, [])
    core.on_block(own)
    assert 2 == core.proposal_round()
    block2 = core.propose(1, [])
    assert 1 == sum(1 for p in block2.parents if p.author == 1)
    assert a.ref in block2.parents  # the first version seen


def test_equivocation_proof_rejects_non_equivocation(dag4: Dag) -> None:
    a = dag4.block(1, 1)
    with pytest.raises(Rejected):
        EquivocationProof(a, a).verify(dag4.committee)
    with pytest.raises(Rejected):
        EquivocationProof(a, dag4.block(1, 2)).verify(dag4.committee)
    forged = Block(
        epoch=0,
        round=1,
        author=1,
        timestamp_ms=0,
        parents=(),
        payload=[mid("z")],
        signature=a.signature,
    )
    with pytest.raises(InvalidSignature):
        EquivocationProof(a, forged).verify(dag4.committee)


def _equivocating_dag(dag: Dag, rng: random.Random) -> list[Block]:
    """Eight rounds where the round-2 leader signs two blocks and the others split."""
    layers = [dag.layer(1, [])]
    l2 = dag.leader(2)
    r2 = dag.layer(2, layers[0])
    twin = dag.block(2, l2, layers[0], [mid("twin")])
    layers.append(r2)
    r3 = []
    for a in range(4):
        chosen = [b for b in r2 if b.author != l2] + [twin if rng.random() < 0.5 else r2[l2]]
        r3.append(dag.block(3, a, chosen))
    layers.append(r3)
    for r in range(4, 9):
        layers.append(dag.layer(r, layers[-1]))
    return [twin, *flat(layers)]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 2**32))
def test_delivery_order_does_not_change_the_commit_sequence(seed: int, order_seed: int) -> None:
    dag = Dag(4)
    blocks = _equivocating_dag(dag, random.Random(seed))
    in_order = commits(feed(Core(dag.committee), blocks))
    shuffled = blocks[:]
    random.Random(order_seed).shuffle(shuffled)
    core = Core(dag.committee)
    out = feed(core, shuffled)
    for ref in core.missing_refs():  # nothing can stay missing: every block was delivered
        pytest.fail(f"still missing {ref}")
    assert in_order == commits(out)
    assert 0 == core.pending_count()
    check_prefixes([in_order, commits(out)])
    leaders = [s.leader for s in in_order]
    assert len({(r.round, r.author) for r in leaders}) == len(leaders)


def test_missing_parents_are_requested_and_the_block_waits(dag4: Dag) -> None:
    r1 = dag4.layer(1, [])
    child = dag4.block(2, 0, r1[:3])
    sibling = dag4.block(2, 1, r1[:3])
    core = Core(dag4.committee)
    out = core.on_block(child)
    assert [MissingBlocks(tuple(sorted(b.ref for b in r1[:3])))] == out
    assert 1 == core.pending_count()
    assert () == tuple(o for o in core.on_block(sibling) if isinstance(o, MissingBlocks))
    assert tuple(sorted(b.ref for b in r1[:3])) == core.missing_refs()
    assert [BlockAccepted(r1[0])] == core.on_block(r1[0])
    core.on_block(r1[1])
    out = core.on_block(r1[2])
    accepted = [o.block for o in out if isinstance(o, BlockAccepted)]
    assert r1[2] == accepted[0]
    assert {child, sibling} == set(accepted[1:])
    assert 0 == core.pending_count()
    assert () == core.missing_refs()


def test_pending_buffer_is_bounded(dag4: Dag) -> None:
    core = Core(dag4.committee, max_pending=2)
    layers = dag4.rounds(4)
    for block in layers[3][:3]:
        core.on_block(block)
    assert 2 == core.pending_count()
    # the evicted block's parents are no longer requested unless another block needs them
    assert all(ref.round == 3 for ref in core.missing_refs())
    assert len(core.missing_refs()) == 4


def test_wrong_parent_reference_is_rejected_or_never_accepted(dag4: Dag) -> None:
    r1 = dag4.layer(1, [])
    core = Core(dag4.committee)
    feed(core, r1)
    r2 = dag4.layer(2, r1)
    feed(core, r2)
    lying = Block.create(
        epoch=0,
        round=3,
        author=0,
        timestamp_ms=0,
        parents=sorted([r2[0].ref, r2[1].ref, BlockRef(2, 2, r1[2].digest)]),
        payload=(),
        key=dag4.keys[0],
    )
    with pytest.raises(Rejected) as exc:
        core.on_block(lying)
    assert "parent-mismatch" == exc.value.reason
    # the same kind of lie about a block not yet seen parks, then is dropped when it arrives
    lying2 = Block.create(
        epoch=0,
        round=3,
        author=0,
        timestamp_ms=0,
        parents=sorted([r2[0].ref, r2[1].ref, r2[3].ref, BlockRef(1, 2, r2[2].digest)]),
        payload=(),
        key=dag4.keys[0],
    )
    core2 = Core(dag4.committee)
    feed(core2, r1)
    feed(core2, [b for b in r2 if b is not r2[2]])
    assert [MissingBlocks((BlockRef(1, 2, r2[2].digest),))] == core2.on_block(lying2)
    assert 1 == core2.pending_count()
    core2.on_block(r2[2])
    assert 0 == core2.pending_count()
    assert lying2.digest not in core2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d, r1: d.block(1, 0, epoch=1), "epoch"),
        (lambda d, r1: d.block(0, 0), "round"),
        (lambda d, r1: d.block(2, 0, r1[:2]), "parent-quorum"),
        (lambda d, r1: d.block(1, 0, r1[:1]), "parents"),
        (
            lambda d, r1: Block.create(
                epoch=0,
                round=2,
                author=9,
                timestamp_ms=0,
                parents=sorted(b.ref for b in r1),
                payload=(),
                key=d.keys[0],
            ),
            "author",
        ),
        (
            lambda d, r1: Block.create(
                epoch=0,
                round=2,
                author=0,
                timestamp_ms=0,
                parents=sorted([*(b.ref for b in r1), BlockRef(2, 3, bytes(32))]),
                payload=(),
                key=d.keys[0],
            ),
            "parent-round",
        ),
        (
            lambda d, r1: Block.create(
                epoch=0,
                round=2,
                author=0,
                timestamp_ms=0,
                parents=sorted([*(b.ref for b in r1), BlockRef(1, 7, bytes(32))]),
                payload=(),
                key=d.keys[0],
            ),
            "parent-author",
        ),
    ],
)
def test_rejection_reasons(dag4: Dag, make: object, reason: str) -> None:
    r1 = dag4.layer(1, [])
    core = Core(dag4.committee)
    feed(core, r1)
    with pytest.raises(Rejected) as exc:
        core.on_block(make(dag4, r1))  # type: ignore[operator]
    assert reason == exc.value.reason


def test_bad_signature_and_version_limit(dag4: Dag) -> None:
    core = Core(dag4.committee, max_versions=2)
    good = dag4.block(1, 1)
    forged = Block(
        epoch=0,
        round=1,
        author=1,
        timestamp_ms=0,
        parents=(),
        payload=[mid("f")],
        signature=good.signature,
    )
    with pytest.raises(InvalidSignature):
        core.on_block(forged)
    core.on_block(good)
    core.on_block(dag4.block(1, 1, payload=[mid("2")]))
    with pytest.raises(Rejected) as exc:
        core.on_block(dag4.block(1, 1, payload=[mid("3")]))
    assert "equivocation-limit" == exc.value.reason
    assert [] == core.on_block(good)  # duplicates are ignored


def test_proposal_waits_for_the_leader_until_the_timeout(dag4: Dag) -> None:
    me = next(a for a in range(4) if a != dag4.leader(1))
    core = Core(dag4.committee, author=me, key=dag4.keys[me], leader_timeout_ms=100)
    r1 = dag4.layer(1, [])
    assert 1 == core.ready_round(0)
    core.on_block(core.propose(0, []))
    with pytest.raises(InvalidTransition):
        core.propose(1, [])
    feed(core, [b for b in r1 if b.author not in {me, dag4.leader(1)}])
    assert core.ready_round(10) is None
    assert 110 == core.wake_at()
    assert core.ready_round(109) is None
    assert 2 == core.ready_round(110)
    core.on_block(r1[dag4.leader(1)])
    assert 2 == core.ready_round(111)


def test_proposals_carry_weak_links_to_unreferenced_blocks(dag4: Dag) -> None:
    core = Core(dag4.committee, author=0, key=dag4.keys[0])
    r1 = dag4.layer(1, [])
    feed(core, r1)
    r2 = dag4.layer(2, r1[:3], [0, 1, 2])  # nobody referenced author 3's round-1 block
    feed(core, r2)
    block = core.propose(0, [])
    assert 3 == block.round
    assert r1[3].ref in block.parents
    assert {b.ref for b in r2} <= set(block.parents)
    core.on_block(block)


def test_observer_core_cannot_propose_and_keys_must_match(dag4: Dag) -> None:
    with pytest.raises(InvalidTransition):
        Core(dag4.committee).propose(0, [])
    assert Core(dag4.committee).proposal_round() is None
    with pytest.raises(Exception, match="key"):
        Core(dag4.committee, author=1, key=dag4.keys[0])


def test_restore_replays_the_same_commits_and_never_reproposes(dag4: Dag) -> None:
    rng = random.Random(5)
    core = Core(dag4.committee, author=0, key=dag4.keys[0])
    persisted: list[Block] = []
    out: list[Output] = []
    previous: list[Block] = []
    for r in range(1, 9):
        block = core.propose(r, [mid(f"mine{r}")])
        others = [dag4.block(r, a, previous, [mid(f"r{r}a{a}")]) for a in (1, 2, 3)]
        batch = [block, *others]
        rng.shuffle(batch)
        for b in batch:
            got = core.on_block(b)
            persisted.extend(o.block for o in got if isinstance(o, BlockAccepted))
            out.extend(got)
        previous = [block, *others]
    restored, replay = Core.restore(dag4.committee, persisted, author=0, key=dag4.keys[0])
    assert commits(out) == commits(replay)
    assert core.last_proposed_round == restored.last_proposed_round
    assert 9 == restored.proposal_round()
    assert len(commits(out)) >= 5


def test_an_evicted_block_that_others_wait_for_is_requested_again(dag4: Dag) -> None:
    layers = dag4.rounds(3)
    core = Core(dag4.committee, max_pending=4)
    core.on_block(layers[1][0])  # waits for round 1
    for block in layers[2]:  # wait for round 2; the fourth evicts layers[1][0]
        core.on_block(block)
    assert 4 == core.pending_count()
    assert layers[1][0].ref in core.missing_refs()
    feed(core, layers[0])
    feed(core, layers[1])
    assert 0 == core.pending_count()
    assert 12 == len(core)
