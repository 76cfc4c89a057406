"""Garbage collection of old rounds and resuming a core from a committed point (docs/consensus.md §7.5)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    BlockRef,
    CommittedSubDag,
    Core,
    MissingBlocks,
)
from simtrust.testing.ledger.consensus_sim import check_prefixes

from .conftest import Dag, commits, feed, flat, mid


def resume_validator0(dag: Dag, commit_round: int, depth: int, signed: int = 0) -> Core:
    """Validator 0 resumed after a commit at ``commit_round``, the commit_round-th one."""
    return Core.resume(
        dag.committee,
        last_decided_round=commit_round,
        last_commit_round=commit_round,
        commit_index=commit_round,
        gc_depth=depth,
        author=0,
        key=dag.keys[0],
        last_proposed_round=signed,
    )


def leaders(subs: list[CommittedSubDag]) -> list[tuple[int, int, BlockRef]]:
    return [(s.index, s.round, s.leader) for s in subs]


def applied(subs: list[CommittedSubDag], already: set[bytes]) -> list[bytes]:
    """Ids in the order a ledger that already applied ``already`` applies them."""
    seen = set(already)
    order = []
    for sub in subs:
        for m in sub.message_ids:
            if m not in seen:
                seen.add(m)
                order.append(m)
    return order


def random_dag(dag: Dag, rounds: int, rng: random.Random) -> list[Block]:
    """A DAG where authors sometimes miss a round, blocks reference a random quorum of
    the previous round (so leaders are sometimes skipped), old tips get weak links,
    and a few ids are proposed twice."""
    n = len(dag.keys)
    quorum = 2 * n // 3 + 1
    blocks: list[Block] = []
    previous: list[Block] = []
    unreferenced: dict[bytes, Block] = {}
    for r in range(1, rounds + 1):
        authors = [a for a in range(n) if rng.random() < 0.9]
        if len(authors) < quorum:
            authors = sorted(rng.sample(range(n), quorum))
        layer = []
        for a in authors:
            parents: list[Block] = []
            if previous:
                parents = rng.sample(previous, rng.randint(quorum, len(previous)))
                weak = [b for b in unreferenced.values() if b.round < r - 1]
                parents += rng.sample(weak, min(len(weak), rng.randint(0, 2)))
            payload = [mid(f"r{r}a{a}")]
            if rng.random() < 0.1:
                payload.append(mid(f"dup{rng.randrange(5)}"))
            layer.append(dag.block(r, a, parents, payload))
        for block in layer:
            for p in block.parents:
                unreferenced.pop(p.digest, None)
        unreferenced.update((b.digest, b) for b in layer)
        blocks.extend(layer)
        previous = layer
    return blocks


# -- the default is unchanged ---------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 2**32))
def test_a_depth_beyond_the_run_changes_nothing(seed: int, order_seed: int) -> None:
    dag = Dag(4)
    blocks = random_dag(dag, 25, random.Random(seed))
    random.Random(order_seed).shuffle(blocks)
    plain, deep = Core(dag.committee), Core(dag.committee, gc_depth=100)
    assert feed(plain, blocks) == feed(deep, blocks)
    assert 0 == deep.gc_round
    assert plain.gc_depth is None
    assert 0 == plain.gc_round


def test_gc_depth_must_not_be_negative(dag4: Dag) -> None:
    with pytest.raises(InvalidInput):
        Core(dag4.committee, gc_depth=-1)


# -- the cut is deterministic ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 2**32), st.sampled_from([0, 1, 2, 4]))
def test_delivery_order_does_not_change_commits_under_gc(
    seed: int, order_seed: int, depth: int
) -> None:
    """Two views that receive the same blocks in different orders emit the same commits,
    block for block and id for id; the leaders are those of a core without GC."""
    dag = Dag(4)
    blocks = random_dag(dag, 30, random.Random(seed))
    in_order = commits(feed(Core(dag.committee, gc_depth=depth), blocks))
    shuffled = blocks[:]
    random.Random(order_seed).shuffle(shuffled)
    core = Core(dag.committee, gc_depth=depth)
    out = commits(feed(core, shuffled))
    assert in_order == out
    assert leaders(commits(feed(Core(dag.committee), blocks))) == leaders(out)
    assert () == core.missing_refs()
    assert 0 == core.pending_count()
    check_prefixes([in_order, out])
    every = [ref for s in out for ref in s.blocks]
    assert len(set(every)) == len(every)
    horizon = 0  # the gc_round in force before each commit bounds its blocks
    for sub in out:
        assert min(ref.round for ref in sub.blocks) >= horizon
        horizon = max(horizon, sub.round - depth)


def test_gc_round_follows_the_last_committed_leader(dag4: Dag) -> None:
    core = Core(dag4.committee, gc_depth=3)
    for layer in dag4.rounds(12):
        subs = commits(feed(core, layer))
        if subs:
            assert max(0, subs[-1].round - 3) == core.gc_round
    assert 3 == core.gc_depth
    assert 10 - 3 == core.gc_round  # leaders up to round 10 commit with 12 rounds


# -- memory ---------------------------------------------------------------------


def test_memory_stays_bounded_over_hundreds_of_rounds() -> None:
    """A validator in a complete 4-node DAG of 400 rounds holds at most (d + 3) rounds
    of blocks, finalized digests and ids, whatever the length of the run."""
    dag = Dag(4)
    depth = 5
    core = Core(dag.committee, author=0, key=dag.keys[0], gc_depth=depth)
    previous: list[Block] = []
    peak: dict[str, int] = {}
    finalized = 0
    for r in range(1, 401):
        own = core.propose(r, [mid(f"mine{r}")])
        others = [dag.block(r, a, previous, [mid(f"r{r}a{a}")]) for a in (1, 2, 3)]
        previous = [own, *others]
        finalized += sum(len(s.message_ids) for s in commits(feed(core, previous)))
        for key, value in core.memory_stats().items():
            peak[key] = max(peak.get(key, 0), value)
        assert () == core.blocks_at(core.gc_round - 1)
    bound = (depth + 3) * 4
    assert peak["blocks"] <= bound
    assert peak["committed"] <= bound
    assert peak["delivered"] <= bound
    assert peak["rounds"] <= depth + 3
    assert 0 == peak["pending"]
    assert 397 * 4 + 1 == finalized  # every id up to round 397, and leader 398's own
    assert 398 - depth == core.gc_round


def test_without_gc_memory_grows_with_the_run(dag4: Dag) -> None:
    core = Core(dag4.committee)
    feed(core, flat(dag4.rounds(40)))
    assert 40 * 4 == core.memory_stats()["blocks"]
    assert 37 * 4 + 1 == core.memory_stats()["committed"]


# -- late blocks and old parents -------------------------------------------------


def test_blocks_below_gc_round_are_ignored_and_counted(dag4: Dag) -> None:
    layers = dag4.rounds(12, payload=True)
    core = Core(dag4.committee, gc_depth=2)
    feed(core, flat(layers))
    assert 8 == core.gc_round
    late = dag4.block(3, 1, layers[1], [mid("late")])  # a second version, far too late
    assert [] == core.on_block(late)
    assert [] == core.on_block(layers[2][0])  # an old block again: no longer held, stale too
    assert 2 == core.stale_blocks
    assert late.digest not in core
    assert () == core.blocks_at(3)


def test_static_rules_still_apply_below_gc_round(dag4: Dag) -> None:
    """A block of another epoch is rejected, not ignored: a node uses that to notice
    its peers moved to the next epoch."""
    core = Core(dag4.committee, gc_depth=1)
    feed(core, flat(dag4.rounds(8)))
    other = Dag(4, epoch=1)
    with pytest.raises(Exception, match="epoch"):
        core.on_block(other.block(1, 0))


def test_parents_below_gc_round_are_never_requested(dag4: Dag) -> None:
    layers = dag4.rounds(10)
    core = Core(dag4.committee, gc_depth=1)
    feed(core, flat(layers))
    gc = core.gc_round
    assert gc >= 5
    ghost = Block.create(
        epoch=0, round=gc - 1, author=2, timestamp_ms=0, parents=[], payload=[], key=dag4.keys[2]
    )  # never delivered: it cannot be valid, and below gc_round nobody asks
    child = dag4.block(11, 0, [*layers[9], ghost])
    out = core.on_block(child)
    assert [] == [o for o in out if isinstance(o, MissingBlocks)]
    assert [BlockAccepted(child)] == [o for o in out if isinstance(o, BlockAccepted)]
    assert ghost.ref not in child.parents or ghost.digest not in core
    assert () == core.missing_refs()


def test_a_waiting_block_is_accepted_once_its_missing_parents_fall_below_gc(dag4: Dag) -> None:
    """Author 3's round-3 block references a round-2 block nobody delivers; the other
    three build on without it. When gc_round passes round 2 the block joins the DAG
    and its missing parent is no longer requested."""
    core = Core(dag4.committee, gc_depth=1)
    r1 = dag4.layer(1, [])
    withheld = dag4.block(2, 3, r1, [mid("withheld")])
    r2 = dag4.layer(2, r1, [0, 1, 2])
    waiting = dag4.block(3, 3, [*r2, withheld], [mid("waiting")])
    feed(core, [*r1, *r2])
    out = core.on_block(waiting)
    assert [MissingBlocks((withheld.ref,))] == out
    previous = r2
    accepted: list[Block] = []
    for r in range(3, 10):
        layer = dag4.layer(r, previous, [0, 1, 2])
        out = feed(core, layer)
        accepted += [o.block for o in out if isinstance(o, BlockAccepted)]
        previous = layer
    assert core.gc_round > 2
    assert waiting in accepted
    assert 0 == core.pending_count()
    assert () == core.missing_refs()


def test_a_waiting_block_below_gc_round_is_dropped(dag4: Dag) -> None:
    core = Core(dag4.committee, gc_depth=0)
    r1 = dag4.layer(1, [])
    withheld = dag4.block(2, 3, r1)
    r2 = dag4.layer(2, r1, [0, 1, 2])
    feed(core, [*r1, *r2])
    core.on_block(dag4.block(3, 3, [*r2, withheld]))
    assert 1 == core.pending_count()
    previous = r2
    for r in range(3, 9):
        previous = dag4.layer(r, previous, [0, 1, 2])
        feed(core, previous)
    assert core.gc_round > 3
    assert 0 == core.pending_count()
    assert () == core.missing_refs()


def test_proposals_never_reference_blocks_below_gc_round(dag4: Dag) -> None:
    """Author 3's round-2 block is never referenced: without GC a proposal weak-links
    it; with GC past round 2 it is forgotten and no proposal names it."""
    r1 = dag4.layer(1, [])
    r2 = dag4.layer(2, r1)
    blocks = [*r1, *r2]
    previous = [b for b in r2 if b.author != 3]
    for r in range(3, 9):
        layer = dag4.layer(r, previous, [1, 2, 3])
        blocks += layer
        previous = layer
    lonely = r2[3]
    plain = Core(dag4.committee, author=0, key=dag4.keys[0])
    gc = Core(dag4.committee, author=0, key=dag4.keys[0], gc_depth=1)
    feed(plain, blocks)
    feed(gc, blocks)
    assert lonely.ref in plain.propose(0, []).parents  # the weak link GC must not make
    assert gc.gc_round > 2
    block = gc.propose(0, [])
    assert lonely.ref not in block.parents
    assert min(p.round for p in block.parents) >= gc.gc_round


def test_weak_links_reach_no_further_back_than_the_last_committed_leader(dag4: Dag) -> None:
    """Author 3's blocks of rounds 4 and 8 are never referenced. Once leader 8 is
    committed, a GC core weak-links only the round-8 one: a link to round 4 would make
    a validator one commit behind need a block its peers are about to forget."""
    lonely = {(4, 3), (8, 3)}
    previous: list[Block] = []
    blocks: list[Block] = []
    for r in range(1, 11):
        kept = [b for b in previous if (b.round, b.author) not in lonely]
        previous = [dag4.block(r, a, kept) for a in range(4)]
        blocks += previous
    plain = Core(dag4.committee, author=0, key=dag4.keys[0])
    gc = Core(dag4.committee, author=0, key=dag4.keys[0], gc_depth=5)
    assert 8 == commits(feed(gc, blocks))[-1].round
    feed(plain, blocks)
    assert 3 == gc.gc_round  # round 4 is still held
    weak = {(p.round, p.author) for p in gc.propose(0, []).parents if p.round < 10}
    assert {(8, 3)} == weak
    assert lonely == {(p.round, p.author) for p in plain.propose(0, []).parents if p.round < 10}


def test_history_stops_at_gc_round(dag4: Dag) -> None:
    layers = dag4.rounds(10)
    core = Core(dag4.committee, gc_depth=2)
    feed(core, flat(layers))
    found = core.history([b.digest for b in layers[9]], 1, 1000)
    assert {b.round for b in found} == set(range(core.gc_round, 11))


def test_old_equivocation_proofs_are_dropped() -> None:
    dag = Dag(4)
    blocks = random_dag(dag, 4, random.Random(1))
    r1 = [b for b in blocks if b.round == 1]
    twin = dag.block(1, r1[0].author, [], [mid("twin")])
    core = Core(dag.committee, gc_depth=1)
    feed(core, [*r1, twin])
    assert 1 == len(core.equivocations())
    feed(core, flat(dag.rounds(12)))  # the complete DAG of the same keys commits on
    assert core.gc_round > 1
    assert () == core.equivocations()


# -- restore ----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 2**32), st.sampled_from([0, 2, 5]))
def test_restore_with_gc_replays_the_same_commits(seed: int, order_seed: int, depth: int) -> None:
    dag = Dag(4)
    blocks = random_dag(dag, 30, random.Random(seed))
    random.Random(order_seed).shuffle(blocks)
    live = Core(dag.committee, gc_depth=depth)
    out = feed(live, blocks)
    persisted = [o.block for o in out if isinstance(o, BlockAccepted)]
    restored, replay = Core.restore(dag.committee, persisted, gc_depth=depth)
    assert commits(out) == commits(replay)
    assert (live.gc_round, live.last_decided_round, live.commit_count) == (
        restored.gc_round,
        restored.last_decided_round,
        restored.commit_count,
    )
    assert live.memory_stats() == restored.memory_stats()


def test_restore_with_gc_never_reproposes(dag4: Dag) -> None:
    core = Core(dag4.committee, author=0, key=dag4.keys[0], gc_depth=2)
    persisted: list[Block] = []
    previous: list[Block] = []
    for r in range(1, 15):
        own = core.propose(r, [mid(f"mine{r}")])
        previous = [own, *(dag4.block(r, a, previous) for a in (1, 2, 3))]
        persisted += [o.block for o in feed(core, previous) if isinstance(o, BlockAccepted)]
    restored, _ = Core.restore(dag4.committee, persisted, author=0, key=dag4.keys[0], gc_depth=2)
    assert 14 == restored.last_proposed_round
    assert 15 == restored.proposal_round()


# -- resume ----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(0, 2**32),
    st.sampled_from([0, 1, 3, 6]),
    st.integers(1, 12),
)
def test_resume_emits_the_same_later_commits(
    seed: int, order_seed: int, depth: int, cut: int
) -> None:
    """A core resumed from the point of a full core's commit ``cut``, fed only blocks of
    rounds ≥ its gc_round in any order, commits the same leaders with the same rounds
    and indices, and a ledger applies the same ids in the same order."""
    dag = Dag(4)
    blocks = random_dag(dag, 35, random.Random(seed))
    full = Core(dag.committee, gc_depth=depth)
    history: list[CommittedSubDag] = []
    point: tuple[int, int, int] | None = None
    for block in blocks:
        history += commits(full.on_block(block))
        if point is None and len(history) >= cut:
            point = (full.last_decided_round, history[-1].round, full.commit_count)
    assert point is not None
    last_decided, last_commit, count = point
    resumed = Core.resume(
        dag.committee,
        last_decided_round=last_decided,
        last_commit_round=last_commit,
        commit_index=count,
        gc_depth=depth,
    )
    assert max(0, last_commit - depth) == resumed.gc_round
    assert (last_decided, count, 0) == (
        resumed.last_decided_round,
        resumed.commit_count,
        len(resumed),
    )
    recent = [b for b in blocks if b.round >= resumed.gc_round]
    random.Random(order_seed).shuffle(recent)
    later = commits(feed(resumed, recent))
    assert leaders(history[count:]) == leaders(later)
    before = {m for s in history[:count] for m in s.message_ids}
    assert applied(history[count:], before) == applied(later, before)
    assert () == resumed.missing_refs()


def test_resume_then_blocks_below_its_gc_round_are_stale(dag4: Dag) -> None:
    layers = dag4.rounds(16)
    resumed = Core.resume(
        dag4.committee, last_decided_round=8, last_commit_round=8, commit_index=8, gc_depth=4
    )
    assert 4 == resumed.gc_round
    out = feed(resumed, flat(layers))
    assert 3 * 4 == resumed.stale_blocks
    assert [] == [o for o in out if isinstance(o, MissingBlocks)]
    assert list(range(9, 15)) == [s.round for s in commits(out)]
    assert list(range(8, 14)) == [s.index for s in commits(out)]


def test_a_resumed_validator_never_proposes_at_or_below_its_last_round(dag4: Dag) -> None:
    """Validator 0 signed up to round 14 (its later blocks never reached anyone); the
    others go on to round 20 without it. Resumed, it waits for round 15."""
    layers = dag4.rounds(12)
    for r in range(13, 21):
        layers.append(dag4.layer(r, layers[-1], [1, 2, 3]))
    resumed = resume_validator0(dag4, 6, depth=2, signed=14)
    assert resumed.proposal_round() is None  # holds nothing: no quorum at any round yet
    for block in flat(layers[3:]):
        resumed.on_block(block)
        proposal = resumed.proposal_round()
        assert proposal is None or proposal > 14
    assert 14 == resumed.last_proposed_round
    assert 20 == resumed.highest_round
    block = resumed.propose(0, [mid("after")])
    assert 21 == block.round
    assert min(p.round for p in block.parents) >= resumed.gc_round


def test_a_resumed_core_does_not_propose_at_gc_round(dag4: Dag) -> None:
    """With a quorum only at gc_round - 1 (whose blocks it never holds) nothing is proposed."""
    resumed = resume_validator0(dag4, 10, depth=3)
    assert 7 == resumed.gc_round
    assert resumed.proposal_round() is None
    layers = dag4.rounds(7)
    feed(resumed, layers[5])  # round 6: below gc_round, ignored
    assert 4 == resumed.stale_blocks
    assert resumed.proposal_round() is None
    feed(resumed, [b for b in layers[6] if b.author != 0])  # round 7: parents below gc
    assert 8 == resumed.proposal_round()


@pytest.mark.parametrize(
    ("decided", "commit_round", "index", "depth", "proposed"),
    [
        (5, 6, 3, 2, 0),  # last commit after the last decided round
        (5, -1, 3, 2, 0),
        (5, 5, -1, 2, 0),
        (5, 5, 0, 2, 0),  # a commit round without any commit
        (5, 0, 2, 2, 0),  # commits without a commit round
        (5, 5, 3, -1, 0),
        (5, 5, 3, 2, -1),
    ],
)
def test_resume_checks_its_arguments(
    dag4: Dag, decided: int, commit_round: int, index: int, depth: int, proposed: int
) -> None:
    with pytest.raises(InvalidInput):
        Core.resume(
            dag4.committee,
            last_decided_round=decided,
            last_commit_round=commit_round,
            commit_index=index,
            gc_depth=depth,
            last_proposed_round=proposed,
        )


def test_own_blocks_left_behind_a_commit_are_handed_back_once(dag4: Dag) -> None:
    """Author 3's round-4 block is never referenced. Once a leader above round 4 is
    committed no proposal links it (GC), so author 3's core hands it back, once, for
    its ids to be proposed again; other authors' cores and a core without GC do not."""
    previous: list[Block] = []
    blocks: list[Block] = []
    for r in range(1, 11):
        kept = [b for b in previous if (b.round, b.author) != (4, 3)]
        previous = [dag4.block(r, a, kept, [mid(f"r{r}a{a}")]) for a in range(4)]
        blocks += previous
    own = Core(dag4.committee, author=3, key=dag4.keys[3], gc_depth=5)
    other = Core(dag4.committee, author=0, key=dag4.keys[0], gc_depth=5)
    plain = Core(dag4.committee, author=3, key=dag4.keys[3])
    assert commits(feed(own, blocks))[-1].round > 4
    feed(other, blocks)
    feed(plain, blocks)
    behind = own.take_left_behind()
    assert [(4, 3)] == [(b.round, b.author) for b in behind]
    assert [mid("r4a3")] == list(behind[0].payload)
    assert [] == own.take_left_behind()
    assert [] == other.take_left_behind()
    assert [] == plain.take_left_behind()
    # Its round-10 block is unreferenced too, but above the last commit: still a parent.
    assert (10, 3) in {(p.round, p.author) for p in own.propose(0, []).parents}


def test_a_run_of_own_blocks_left_behind_is_handed_back_whole(dag4: Dag) -> None:
    """Author 3 stalled: its round-4 block is referenced only by its own round-5 block,
    which nobody references. Both are left behind once a later leader commits, and
    both come back (the round-4 ids waited for the 30 s reoffer sweep before, §15.10)."""
    previous: list[Block] = []
    blocks: list[Block] = []
    for r in range(1, 11):
        layer = []
        for a in range(4):
            if r == 5 and a == 3:
                parents = previous  # its own round-4 block among them
            else:
                parents = [b for b in previous if (b.round, b.author) not in {(4, 3), (5, 3)}]
            layer.append(dag4.block(r, a, parents, [mid(f"r{r}a{a}")]))
        previous = layer
        blocks += layer
    own = Core(dag4.committee, author=3, key=dag4.keys[3], gc_depth=5)
    assert commits(feed(own, blocks))[-1].round > 5
    assert not own.is_committed(blocks[4 * 3 + 3].digest)  # (4, 3)
    behind = own.take_left_behind()
    assert [(4, 3), (5, 3)] == [(b.round, b.author) for b in behind]
    assert [mid("r4a3"), mid("r5a3")] == [m for b in behind for m in b.payload]
    assert [] == own.take_left_behind()
