"""Finality latency versus committee size, from the deterministic consensus simulator.

Issue 7 ("From the simulator: finality latency versus committee size 4–100 at a
fixed link latency"). Every committee is honest, every link delays each
message by exactly ``LINK_MS`` (no loss), each validator puts ``IDS_PER_BLOCK``
message ids in every block, born evenly since its previous block. Each
simulated node has one CPU and spends ``block_cost_ms`` on every block it
receives: this machine's Ed25519 verification time plus the core's own
ingestion time, both measured in the same run (so a committee of 100, where
every node takes 100 blocks a round, pays for it).

Figures per committee size N (``docs/consensus.md`` §10):

* ``metrics.finality_p50_s_nN`` / ``metrics.finality_p99_s_nN``: simulated
  seconds from a message id's arrival at its validator to its commit, over
  every (message, honest validator) pair;
* ``metrics.round_s_nN``: simulated seconds per DAG round.

``limits.link_latency_s`` is the fixed one-way delay, ``limits.block_cost_ms``
the per-block CPU time used, ``limits.ed25519_verify_per_s`` and
``limits.core_blocks_per_s`` its two parts (one core); ``ratios.p50_delays_nN``
is the p50 in link delays (Mysticeti's floor for a leader is 3 message delays,
and a message also waits for its validator's next block).
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simtrust.benchmark import BenchResult, rate
from simtrust.testing.ledger.consensus_sim import Latency, SimConfig
from simtrust.testing.ledger.consensus_sim import run as run_sim

NAME = "consensus-sim"
DESCRIPTION = "Simulated finality latency versus committee size (4..100) at a fixed link latency"

LINK_MS = 50.0
IDS_PER_BLOCK = 4
FULL = {4: 6000.0, 10: 5000.0, 25: 3000.0, 50: 2000.0, 100: 1500.0}
QUICK = {4: 1500.0, 10: 1000.0}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _verify_per_s(quick: bool) -> float:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = bytes(60)
    signature = key.sign(message)
    return rate(lambda: public.verify(signature, message), min_seconds=0.2 if quick else 1.0)


def _core_blocks_per_s() -> float:
    """Blocks per second one core ingests (DAG, commit rule), at committee size 25."""
    config = SimConfig(
        validators=25,
        seed=1,
        duration_ms=500,
        latency=Latency.fixed(LINK_MS),
        verify_signatures=False,
    )
    start = time.process_time()
    sim = run_sim(config)
    spent = time.process_time() - start
    blocks = sum(sim.rounds.values()) * 25
    return blocks / spent


def run(quick: bool) -> BenchResult:
    result = BenchResult(NAME)
    verify = _verify_per_s(quick)
    core = _core_blocks_per_s()
    cost_ms = 1000 / verify + 1000 / core
    result.limits["link_latency_s"] = LINK_MS / 1000
    result.limits["ed25519_verify_per_s"] = round(verify, 1)
    result.limits["core_blocks_per_s"] = round(core, 1)
    result.limits["block_cost_ms"] = round(cost_ms, 4)
    sizes = QUICK if quick else FULL
    for n, duration in sizes.items():
        config = SimConfig(
            validators=n,
            seed=n,
            duration_ms=duration,
            latency=Latency.fixed(LINK_MS),
            ids_per_block=IDS_PER_BLOCK,
            leader_timeout_ms=int(6 * LINK_MS),
            tick_ms=4 * LINK_MS,
            verify_signatures=False,
            block_cost_ms=cost_ms,
        )
        start = time.perf_counter()
        sim = run_sim(config)
        wall = time.perf_counter() - start
        sim.check_safety()
        # Ids committed within the run: ids born in its last rounds and not yet
        # committed are not counted.
        latencies = sim.finality_ms
        rounds = sorted(sim.rounds[i] for i in sim.honest)[len(sim.honest) // 2]
        p50 = _percentile(latencies, 0.5) / 1000
        p99 = _percentile(latencies, 0.99) / 1000
        result.metrics[f"finality_p50_s_n{n}"] = round(p50, 4)
        result.metrics[f"finality_p99_s_n{n}"] = round(p99, 4)
        result.metrics[f"round_s_n{n}"] = round(duration / 1000 / max(1, rounds), 4)
        result.ratio(f"p50_delays_n{n}", f"finality_p50_s_n{n}", "link_latency_s")
        result.notes[f"n{n}"] = {
            "simulated_s": duration / 1000,
            "wall_s": round(wall, 2),
            "commits": min(len(sim.commits[i]) for i in sim.honest),
            "samples": len(latencies),
        }
    result.notes["link"] = f"fixed {LINK_MS} ms one-way, no loss, all validators honest"
    return result
