"""The wait for the previous round's leader block, on hand-built DAGs (docs/consensus.md §9, §15.10).

Time is an argument of the core, so every case is deterministic: a validator
never waits for its own missing leader block (a lagging leader that skipped its
round, or a resumed one that lost its block), its peers stop waiting at its next
block, and each wait's outcome is counted.
"""

from __future__ import annotations

from simtrust.ledger.consensus import Block, Core

from .conftest import Dag, feed, mid


def _core(dag: Dag, me: int, timeout_ms: int = 500) -> Core:
    return Core(dag.committee, author=me, key=dag.keys[me], leader_timeout_ms=timeout_ms)


def test_a_leader_that_skipped_its_round_does_not_wait_for_itself(dag4: Dag) -> None:
    """The 5-7 stalls of half a second per 9 s in the benchmark (§15.10): a leader that
    lagged finds a quorum of its own leader round without its block, proposes the
    next round, and waited ``leader_timeout_ms`` for a block it would never sign."""
    leader = dag4.leader(2)
    others = [a for a in range(4) if a != leader]
    core = _core(dag4, leader)
    own1 = core.propose(0, [])
    core.on_block(own1)
    r1 = [own1 if a == leader else dag4.block(1, a) for a in range(4)]
    feed(core, [b for b in r1 if b.author != leader])
    # The three others propose round 2 before this validator does: a quorum of
    # round 2 is held without this validator's block, and it is round 2's leader.
    r2 = [dag4.block(2, a, r1) for a in others]
    feed(core, r2)
    assert 3 == core.proposal_round()
    assert 3 == core.ready_round(10)  # no wait, no timer
    assert core.wake_at() is None
    own3 = core.propose(10, [mid("lagging-leader")])
    assert {b.ref for b in r2} == set(own3.parents)
    core.on_block(own3)
    stats = core.leader_wait_stats()
    assert (1, 0, 0) == (stats["leader_own"], stats["leader_timeout"], stats["leader_wait_ms"])
    # A peer waiting for that leader's round-2 block stops at its round-3 block.
    peer = _core(dag4, others[0])
    peer.on_block(peer.propose(0, []))
    feed(peer, [b for b in r1 if b.author != others[0]])
    feed(peer, [b for b in r2 if b.author != others[0]])
    peer.on_block(next(b for b in r2 if b.author == others[0]))
    assert peer.ready_round(20) is None  # quorum of round 2, its leader missing
    peer.on_block(own3)
    assert 3 == peer.ready_round(25)
    peer.on_block(peer.propose(25, []))
    assert 1 == peer.leader_wait_stats()["leader_moved_past"]


def test_a_lagging_validator_still_waits_for_another_leader(dag4: Dag) -> None:
    """Only its own missing leader block is not waited for: a lagging validator joins
    at the quorum round plus one and votes for the leader it holds."""
    leader = dag4.leader(2)
    me = next(a for a in range(4) if a not in (leader, dag4.leader(3)))
    core = _core(dag4, me)
    own1 = core.propose(0, [])
    core.on_block(own1)
    r1 = [own1 if a == me else dag4.block(1, a) for a in range(4)]
    feed(core, [b for b in r1 if b.author != me])
    feed(core, [dag4.block(2, a, r1) for a in range(4) if a != me])
    assert 3 == core.proposal_round()
    assert 3 == core.ready_round(0)  # the leader of round 2 is held
    core.on_block(core.propose(0, []))
    stats = core.leader_wait_stats()
    assert (1, 0) == (stats["leader_held"], stats["leader_own"])


def test_a_validator_never_waits_for_its_own_missing_leader_block(dag4: Dag) -> None:
    leader = dag4.leader(2)
    # Resumed after a crash that lost its round-2 block (it signed rounds up to 2).
    core = Core.resume(dag4.committee, last_decided_round=0, last_commit_round=0,
                       commit_index=0, gc_depth=10, author=leader, key=dag4.keys[leader],
                       leader_timeout_ms=500, last_proposed_round=2)
    r1 = dag4.layer(1, [])
    feed(core, r1)
    feed(core, [dag4.block(2, a, r1) for a in range(4) if a != leader])
    assert 3 == core.proposal_round()
    assert 3 == core.ready_round(0)  # waiting for itself could only ever time out
    assert core.wake_at() is None
    core.on_block(core.propose(0, []))
    assert 1 == core.leader_wait_stats()["leader_own"]


def _waiting_core(dag: Dag, timeout_ms: int) -> tuple[Core, list[Block], int]:
    """A core holding a quorum of round 1 without its leader's block."""
    leader = dag.leader(1)
    me = next(a for a in range(4) if a not in (leader, dag.leader(2)))
    core = _core(dag, me, timeout_ms)
    own = core.propose(0, [])
    core.on_block(own)
    r1 = [own if a == me else dag.block(1, a) for a in range(4)]
    feed(core, [b for b in r1 if b.author not in (me, leader)])
    return core, r1, leader


def test_each_wait_is_counted_with_its_outcome_and_duration(dag4: Dag) -> None:
    core, r1, leader = _waiting_core(dag4, 100)
    assert core.ready_round(1_000) is None
    assert 1_100 == core.wake_at()
    assert 2 == core.ready_round(1_100)
    core.on_block(core.propose(1_100, []))
    stats = core.leader_wait_stats()
    assert (1, 100) == (stats["leader_timeout"], stats["leader_wait_ms"])

    core, r1, leader = _waiting_core(dag4, 100)
    assert core.ready_round(1_000) is None
    core.on_block(r1[leader])
    assert 2 == core.ready_round(1_040)
    core.on_block(core.propose(1_040, []))
    stats = core.leader_wait_stats()
    assert (1, 0, 40) == (stats["leader_arrived"], stats["leader_timeout"],
                          stats["leader_wait_ms"])


def test_a_leader_seen_past_its_round_ends_the_wait(dag4: Dag) -> None:
    core, r1, leader = _waiting_core(dag4, 100)
    assert core.ready_round(0) is None
    quorum = [b for b in r1 if b.author != leader]
    core.on_block(dag4.block(2, leader, quorum))  # it skipped round 1's block... for good
    assert 2 == core.ready_round(5)
    core.on_block(core.propose(5, []))
    assert 1 == core.leader_wait_stats()["leader_moved_past"]
