"""Safety and liveness of the consensus core under the deterministic simulator (docs/consensus.md §9–§10).

What is asserted, precisely:

* safety, every run: the commit sequences of all honest nodes (crash-recovered
  nodes included) are prefixes of one another, leader by leader, block by
  block and in finalized message ids, and a restarted node re-derives exactly
  the commits it had made — whenever the byzantine weight is below 1/3;
* liveness, runs with honest weight above 2/3: every honest node commits in
  the run, and after a partition heals or a crashed node returns every live
  honest node commits again;
* stall: with 1/3 of the weight or more crashed, no honest node commits once
  in-flight blocks are processed (and safety still holds); commits resume
  after the crashed nodes restart;
* with 1/3 or more of the weight withholding or silent (omission faults, no
  equivocation), no two running nodes' sequences fork — progress is not
  asserted; nothing at all is asserted with 1/3 or more *equivocating* weight;
* epochs: a committee change (members removed, weights changed) applied at one
  commit keeps every sequence prefix-consistent across the boundary, and every
  running honest node, crash-recovered or lagging ones included, reaches the
  new epoch and commits in it;
* garbage collection (§7.5): the same safety and liveness with every core
  forgetting rounds 8 to 12 below its last commit, a node left behind that
  horizon resuming from a peer's committed point, memory bounded over hundreds
  of rounds, and every honest id finalized (ids whose block fell below the
  horizon unfinalized are proposed again).

1,060 seeded runs over eight scenarios below, and 240 more with garbage
collection; ``test_sweep_large_committees`` (marked slow) adds committees of 10
to 100 validators.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from simtrust.testing.ledger import consensus_sim as sim
from simtrust.testing.ledger.consensus_sim import Crash, Latency, Partition, SimConfig

BEHAVIOURS: tuple[sim.Behaviour, ...] = ("equivocate", "withhold", "lie", "silent")
CHUNKS = 10


def _latency(rng: random.Random) -> Latency:
    return rng.choice(
        [
            Latency.uniform(10, 60),
            Latency.fixed(30),
            Latency.lognormal(25, 0.6),
            Latency.uniform(1, 120),
        ]
    )


def _seeds(scenario: int, chunk: int, per_chunk: int) -> range:
    start = scenario * 100_000 + chunk * per_chunk
    return range(start, start + per_chunk)


def honest_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    return SimConfig(
        validators=rng.choice([4, 5, 7]),
        seed=seed,
        duration_ms=2000,
        latency=_latency(rng),
        loss=rng.choice([0.0, 0.05, 0.15]),
        verify_signatures=False,
    )


def byzantine_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 7])
    faulty = rng.sample(range(n), (n - 1) // 3)
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=1800,
        latency=_latency(rng),
        loss=rng.choice([0.0, 0.05]),
        byzantine={f: rng.choice(BEHAVIOURS) for f in faulty},
        verify_signatures=False,
    )


HEAL_MS = 900.0


def partition_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 7])
    nodes = list(range(n))
    rng.shuffle(nodes)
    cut = rng.randrange(1, n)
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=2400,
        latency=_latency(rng),
        partitions=(Partition(rng.uniform(100, 400), HEAL_MS, (frozenset(nodes[:cut]),)),),
        verify_signatures=False,
    )


def crash_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 7])
    crashed = rng.sample(range(n), (n - 1) // 3)
    crashes = []
    for node in crashed:
        at = rng.uniform(100, 800)
        crashes.append(Crash(node, at, at + rng.uniform(100, 700)))
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=2400,
        latency=_latency(rng),
        loss=rng.choice([0.0, 0.05]),
        crashes=tuple(crashes),
        verify_signatures=False,
    )


STALL_AT, RESTART_AT = 500.0, 1400.0


def stall_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 6])
    crashed = rng.sample(range(n), n // 2)  # 1/2 of the weight: no quorum
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=2600,
        latency=Latency.uniform(10, 60),
        crashes=tuple(Crash(c, STALL_AT, RESTART_AT) for c in crashed),
        verify_signatures=False,
    )


def weighted_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 6])
    weights = tuple(rng.randint(1, 10) for _ in range(n))
    total = sum(weights)
    byzantine: dict[int, sim.Behaviour] = {}
    faulty_weight = 0
    for node in rng.sample(range(n), n):
        if 3 * (faulty_weight + weights[node]) < total:
            byzantine[node] = rng.choice(BEHAVIOURS)
            faulty_weight += weights[node]
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=2000,
        weights=weights,
        latency=_latency(rng),
        byzantine=byzantine,
        verify_signatures=False,
    )


def _live_honest(result: sim.SimResult) -> list[int]:
    return sorted(result.honest & result.alive)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_honest_runs_are_safe_and_live(chunk: int) -> None:
    for seed in _seeds(1, chunk, 30):
        result = sim.run(honest_config(seed))
        result.check_safety()
        for node in _live_honest(result):
            assert len(result.commits[node]) >= 2, (seed, node)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_byzantine_minority_cannot_fork_or_stop_honest_nodes(chunk: int) -> None:
    for seed in _seeds(2, chunk, 30):
        result = sim.run(byzantine_config(seed))
        result.check_safety()
        for node in _live_honest(result):
            assert len(result.commits[node]) >= 2, (seed, node, result.config.byzantine)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_commits_resume_after_a_partition_heals(chunk: int) -> None:
    for seed in _seeds(3, chunk, 15):
        result = sim.run(partition_config(seed))
        result.check_safety()
        for node in _live_honest(result):
            assert result.commits_after(node, HEAL_MS) >= 1, (seed, node)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_crashed_nodes_recover_from_persisted_blocks(chunk: int) -> None:
    for seed in _seeds(4, chunk, 15):
        config = crash_config(seed)
        result = sim.run(config)
        result.check_safety()
        assert 0 == result.stats["replay_mismatch"]
        for crash in config.crashes:
            assert crash.restart_ms is not None
            assert result.commits_after(crash.node, crash.restart_ms) >= 1, (seed, crash)
        for node in _live_honest(result):
            assert len(result.commits[node]) >= 2, (seed, node)


@pytest.mark.parametrize("chunk", range(5))
def test_a_third_or_more_crashed_stalls_without_forking(chunk: int) -> None:
    for seed in _seeds(5, chunk, 10):
        config = stall_config(seed)
        result = sim.run(config)
        result.check_safety()
        crashed = {c.node for c in config.crashes}
        for node in _live_honest(result):
            stalled = [t for t in result.commit_times[node] if STALL_AT + 300 <= t < RESTART_AT]
            assert [] == stalled, (seed, node)
            assert result.commits_after(node, RESTART_AT) >= 1, (seed, node)
        assert crashed


@pytest.mark.parametrize("chunk", range(5))
def test_weighted_committees_with_byzantine_weight_below_a_third(chunk: int) -> None:
    for seed in _seeds(6, chunk, 10):
        result = sim.run(weighted_config(seed))
        result.check_safety()
        for node in _live_honest(result):
            assert len(result.commits[node]) >= 2, (seed, node, result.config.weights)


@pytest.mark.parametrize("chunk", range(3))
def test_a_third_or_more_omission_faults_never_fork(chunk: int) -> None:
    """Withholding or silent validators (no equivocation) of any weight cannot fork the
    others (docs/consensus.md §8, last paragraph); progress is not asserted."""
    for seed in _seeds(7, chunk, 10):
        rng = random.Random(seed)
        n = rng.choice([4, 7])
        faulty = rng.sample(range(n), rng.randint((n + 2) // 3, n - 1))
        config = SimConfig(
            validators=n,
            seed=seed,
            duration_ms=1500,
            latency=_latency(rng),
            byzantine={f: rng.choice(("withhold", "silent")) for f in faulty},
            verify_signatures=False,
        )
        result = sim.run(config)
        # withholders are faulty but never equivocate: their commits must agree too
        everyone = [result.commits[i] for i in range(n) if config.byzantine.get(i) != "silent"]
        sim.check_prefixes(everyone)


def epoch_config(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 7])
    kept = sorted(rng.sample(range(n), rng.randint(max(1, n - 2), n)))
    crashes: tuple[Crash, ...] = ()
    if rng.random() < 0.5 and n > 4:
        node = rng.choice(kept)
        at = rng.uniform(100, 900)
        crashes = (Crash(node, at, at + rng.uniform(200, 600)),)
    return SimConfig(
        validators=n,
        seed=seed,
        duration_ms=2500,
        latency=_latency(rng),
        crashes=crashes,
        epoch_change=sim.EpochChange(rng.randint(0, 8), {k: rng.randint(1, 3) for k in kept}),
        verify_signatures=False,
    )


@pytest.mark.parametrize("chunk", range(3))
def test_committee_change_at_an_epoch_boundary(chunk: int) -> None:
    """Every node switches at the same commit, keeps one prefix-consistent sequence
    across the boundary, and commits in the new epoch (removed nodes as observers)."""
    for seed in _seeds(8, chunk, 10):
        config = epoch_config(seed)
        result = sim.run(config)
        result.check_safety()
        assert config.epoch_change is not None
        switch = config.epoch_change.at_commit + 1
        for node in _live_honest(result):
            assert 1 == result.epochs[node], (seed, node)
            assert len(result.commits[node]) > switch, (seed, node)
            assert 0 == result.commits[node][switch].index  # epoch 1 counts from 0 again


def test_removing_a_silent_validator_speeds_up_rounds() -> None:
    base = SimConfig(
        validators=5, seed=3, duration_ms=3000, byzantine={4: "silent"}, verify_signatures=False
    )
    kept = sim.run(base)
    removed = sim.run(
        SimConfig(
            validators=5,
            seed=3,
            duration_ms=3000,
            byzantine={4: "silent"},
            verify_signatures=False,
            epoch_change=sim.EpochChange(3, {0: 1, 1: 1, 2: 1, 3: 1}),
        )
    )
    removed.check_safety()
    for node in range(4):
        assert len(removed.commits[node]) > 1.5 * len(kept.commits[node])


def test_same_seed_same_run() -> None:
    config = byzantine_config(7)
    a, b = sim.run(config), sim.run(config)
    assert a.commits == b.commits
    assert a.commit_times == b.commit_times
    assert a.stats == b.stats
    c = sim.run(byzantine_config(8))
    assert a.commit_times != c.commit_times


def test_real_signatures_and_wire_encoding() -> None:
    """The closed-world signature registry is a shortcut: the same run verifies with Ed25519."""
    base = byzantine_config(11)
    fast = sim.run(base)
    config = SimConfig(
        validators=base.validators,
        seed=base.seed,
        duration_ms=base.duration_ms,
        latency=base.latency,
        loss=base.loss,
        byzantine=base.byzantine,
        verify_signatures=True,
        wire=True,
    )
    slow = sim.run(config)
    slow.check_safety()
    assert fast.commits == slow.commits


def test_equivocators_are_detected_and_liars_rejected() -> None:
    result = sim.run(
        SimConfig(validators=7, seed=3, duration_ms=1500, byzantine={1: "equivocate", 4: "lie"})
    )
    result.check_safety()
    assert result.stats["equivocations_seen"] > 0
    assert result.stats["rejected"] > 0
    for node in result.honest:
        assert len(result.commits[node]) >= 2
        finalized = [b for s in result.commits[node] for b in s.blocks]
        assert len(set(finalized)) == len(finalized)  # each block finalized once


def test_check_prefixes_detects_a_fork() -> None:
    a = sim.run(SimConfig(validators=4, seed=1, duration_ms=800, verify_signatures=False))
    b = sim.run(SimConfig(validators=4, seed=2, duration_ms=800, verify_signatures=False))
    sim.check_prefixes([a.commits[0], a.commits[1]])
    with pytest.raises(sim.ForkDetectedError):
        sim.check_prefixes([a.commits[0], b.commits[0]])


def test_one_validator_commits_every_round() -> None:
    result = sim.run(SimConfig(validators=1, seed=0, duration_ms=200, min_round_ms=10.0))
    rounds = [s.round for s in result.commits[0]]
    assert list(range(1, len(rounds) + 1)) == rounds
    assert len(rounds) >= 15


@pytest.mark.slow
@pytest.mark.parametrize("n", [10, 25, 50, 100])
def test_sweep_large_committees(n: int) -> None:
    faulty = (n - 1) // 3
    rng = random.Random(n)
    byzantine = {f: rng.choice(BEHAVIOURS) for f in rng.sample(range(n), faulty)}
    for seed in range(2 if n <= 25 else 1):
        config = SimConfig(
            validators=n,
            seed=seed,
            duration_ms=1500 if n <= 25 else 1000,
            latency=Latency.uniform(20, 60),
            byzantine=byzantine,
            verify_signatures=False,
        )
        result = sim.run(config)
        result.check_safety()
        for node in _live_honest(result):
            assert len(result.commits[node]) >= 1, (n, node)


def test_block_processing_cost_queues_messages_and_slows_rounds() -> None:
    """With one CPU per node, 10 blocks a round at 3 ms each lengthen every round."""
    base = SimConfig(
        validators=10, seed=4, duration_ms=1500, latency=Latency.fixed(20), verify_signatures=False
    )
    free = sim.run(base)
    costly = sim.run(
        SimConfig(
            validators=10,
            seed=4,
            duration_ms=1500,
            latency=Latency.fixed(20),
            verify_signatures=False,
            block_cost_ms=3.0,
        )
    )
    costly.check_safety()
    assert (
        sorted(costly.finality_ms)[len(costly.finality_ms) // 2]
        > sorted(free.finality_ms)[len(free.finality_ms) // 2]
    )
    assert max(costly.rounds.values()) < max(free.rounds.values())
    assert min(len(costly.commits[n]) for n in costly.honest) >= 5


# -- garbage collection (docs/consensus.md §7.5) -----------------------------------

GC_SCENARIOS: dict[str, Callable[[int], SimConfig]] = {
    "honest": honest_config,
    "byzantine": byzantine_config,
    "partition": partition_config,
    "crash": crash_config,
    "weighted": weighted_config,
    "stall": stall_config,
}


def gc_config(scenario: str, seed: int) -> SimConfig:
    """A scenario's run with a small GC depth, long enough for the cut to move past
    every partition and crash (so lagging nodes need what others forgot)."""
    base = GC_SCENARIOS[scenario](seed)
    depth = random.Random(seed).choice([8, 10, 12])
    return replace(base, gc_depth=depth, duration_ms=max(base.duration_ms, 3000))


def _check_liveness(scenario: str, config: SimConfig, result: sim.SimResult) -> None:
    for node in _live_honest(result):
        if scenario == "partition":
            assert result.commits_after(node, HEAL_MS) >= 1, (config.seed, node)
        elif scenario == "stall":
            assert result.commits_after(node, RESTART_AT) >= 1, (config.seed, node)
        else:
            assert len(result.commits[node]) >= 2, (config.seed, node)
    for crash in config.crashes:
        assert crash.restart_ms is not None
        assert result.commits_after(crash.node, crash.restart_ms) >= 1, (config.seed, crash)


@pytest.mark.parametrize("chunk", range(4))
@pytest.mark.parametrize("scenario", sorted(GC_SCENARIOS))
def test_gc_sweep_is_safe_and_live(scenario: str, chunk: int) -> None:
    """240 seeded runs (6 scenarios x 4 chunks x 10) with GC on every core. The cut
    happens at every running honest node, except in a few byzantine runs whose
    silent or withholding leaders slow rounds so much that 3 s hold no more
    than gc_depth rounds of commits."""
    cut = 0
    for seed in _seeds(20 + sorted(GC_SCENARIOS).index(scenario), chunk, 10):
        config = gc_config(scenario, seed)
        result = sim.run(config)
        result.check_safety()
        assert 0 == result.stats["replay_mismatch"], seed
        _check_liveness(scenario, config, result)
        cut += all(result.gc_rounds[node] > 0 for node in _live_honest(result))
    assert cut >= (10 if scenario in {"honest", "partition", "crash", "stall"} else 8)


def test_gc_memory_stays_bounded_over_hundreds_of_rounds() -> None:
    depth = 10
    config = SimConfig(
        validators=4,
        seed=1,
        duration_ms=8000,
        latency=Latency.uniform(10, 30),
        gc_depth=depth,
        verify_signatures=False,
    )
    result = sim.run(config)
    result.check_safety()
    for node in range(4):
        assert result.rounds[node] >= 300
        peak = result.peak_memory[node]
        assert peak["rounds"] <= depth + 5
        assert peak["blocks"] <= (depth + 5) * 4
        assert peak["committed"] <= (depth + 5) * 4
        assert peak["delivered"] <= (depth + 5) * 4 * config.ids_per_block
        assert result.gc_rounds[node] >= result.rounds[node] - depth - 5


def test_a_node_left_behind_the_horizon_resumes_from_a_snapshot() -> None:
    """Node 1 is down for 1.5 s, far more than 5 rounds: nobody keeps what it needs,
    so it resumes from a peer's committed point, commits again, and after a second
    crash restarts from that point plus the blocks it persisted since."""
    config = SimConfig(
        validators=4,
        seed=2,
        duration_ms=4000,
        latency=Latency.uniform(10, 60),
        crashes=(Crash(1, 500, 2000), Crash(1, 2600, 2800)),
        gc_depth=5,
        verify_signatures=False,
    )
    result = sim.run(config)
    result.check_safety()
    assert result.stats["snapshots"] >= 1
    assert 0 == result.stats["replay_mismatch"]
    assert result.commits_after(1, 2800) >= 1
    assert [s.index for s in result.commits[1]] == list(range(len(result.commits[1])))
    without = sim.run(replace(config, gc_depth=None))  # no horizon: it catches up by fetching
    assert 0 == without.stats["snapshots"]
    assert without.commits_after(1, 2800) >= 1


@pytest.mark.parametrize("scenario", ["honest", "byzantine", "crash", "partition", "weighted"])
def test_with_gc_every_honest_id_is_finalized(scenario: str) -> None:
    """Every id an honest running node submitted more than 2 s before the end is
    applied by every running honest node, also when its first block fell below the
    horizon unfinalized (it is proposed again)."""
    for seed in _seeds(30, 0, 8):
        config = replace(gc_config(scenario, seed), duration_ms=4000)
        result = sim.run(config)
        result.check_safety()
        for node in _live_honest(result):
            applied = {m for sub in result.commits[node] for m in sub.message_ids}
            for proposer, ids in result.proposed.items():
                if proposer not in result.alive:
                    continue
                late = [m for m, born in ids.items() if born < 2000 and m not in applied]
                assert [] == late, (seed, node, proposer)


def test_same_seed_same_run_with_gc() -> None:
    config = gc_config("crash", 5)
    a, b = sim.run(config), sim.run(config)
    assert a.commits == b.commits
    assert a.stats == b.stats
    assert a.peak_memory == b.peak_memory


def test_approximate_commits_still_compare_leaders_and_ids() -> None:
    """Commits of a resumed core are compared by leader, round, index and applied ids,
    not by blocks; a different leader is still a fork."""
    a = sim.run(SimConfig(validators=4, seed=1, duration_ms=800, verify_signatures=False))
    b = sim.run(SimConfig(validators=4, seed=2, duration_ms=800, verify_signatures=False))
    first = a.commits[0]
    widened = [replace(first[0], blocks=(*first[0].blocks, *first[1].blocks)), *first[1:]]
    with pytest.raises(sim.ForkDetectedError):
        sim.check_prefixes([first, widened])
    sim.check_prefixes([first, widened], [frozenset(), frozenset({0})])
    with pytest.raises(sim.ForkDetectedError):
        sim.check_prefixes([first, b.commits[0]], [frozenset(), frozenset({0, 1, 2})])
