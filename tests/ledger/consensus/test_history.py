"""``CausalHistory``: which blocks are ordered before the block a core would
propose now (docs/consensus.md §7.3, approval order)."""

from __future__ import annotations

from simtrust.ledger.consensus import CausalHistory, Core

from .conftest import Dag, commits, feed, mid


def _core(dag: Dag, author: int = 0) -> Core:
    return Core(dag.committee, author=author, key=dag.keys[author])


def test_a_block_of_the_proposals_own_round_does_not_precede_it(dag4: Dag) -> None:
    """A parent carried by a block the proposal does not reference waits; once a
    later proposal references that block it precedes it."""
    core = _core(dag4)
    r1 = dag4.layer(1, [])
    r2 = dag4.layer(2, r1, authors=[1, 2, 3])
    feed(core, r1 + r2)
    assert 3 == core.proposal_round()
    r3_peer = dag4.block(3, 1, r2, [mid("parent")])
    feed(core, [r3_peer])
    history = CausalHistory(core)
    assert sorted(b.ref for b in r2) == core.proposal_parents()
    assert not history.precedes(r3_peer.ref)
    assert history.precedes(r2[0].ref)
    assert history.precedes(r1[3].ref)  # deeper: the walk goes on lazily
    own = core.propose(0, [])
    feed(core, [own, dag4.block(3, 2, r2)])
    assert 4 == core.proposal_round()
    assert CausalHistory(core).precedes(r3_peer.ref)


def test_a_block_outside_the_history_that_is_committed_precedes(dag4: Dag) -> None:
    """A committed block's ids are finalized already, whatever the proposal references."""
    core = _core(dag4)
    layers = dag4.rounds(4, payload=True)
    outputs = feed(core, [b for layer in layers for b in layer])
    assert commits(outputs)
    leader = commits(outputs)[0].leader
    assert core.is_committed(leader.digest)
    assert CausalHistory(core, parents=[]).precedes(leader)
    assert not CausalHistory(core, parents=[]).precedes(layers[3][0].ref)


def test_an_unknown_block_never_precedes(dag4: Dag) -> None:
    core = _core(dag4)
    r1 = dag4.layer(1, [])
    feed(core, r1[1:])
    stranger = dag4.block(1, 0, [], [mid("x")])  # never fed to the core
    assert not CausalHistory(core).precedes(stranger.ref)
