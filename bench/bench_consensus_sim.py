"""Finality latency versus committee size, from the deterministic consensus simulator.

Issue 7 ("From the simulator: finality latency versus committee size 4–100 at a
fixed link latency"). Every committee is honest, every link delays each
message by exactly ``LINK_MS`` (no loss), each validator puts ``IDS_PER_BLOCK``
message ids in every block, born evenly since its previous block. Figures per
committee size N (``docs/consensus.md`` §11):

* ``metrics.finality_p50_s_nN`` / ``metrics.finality_p99_s_nN``: simulated
  seconds from a message id's arrival at its validator to its commit, over
  every (message, honest validator) pair;
* ``metrics.round_s_nN``: simulated seconds per DAG round;
* ``metrics.sim_blocks_per_s_nN``: blocks ingested per wall-clock second by
  all the simulated cores together (the cost of the pure core in Python).

``limits.link_latency_s`` is the fixed one-way delay; ``ratios.p50_delays_nN``
is the p50 in link delays (Mysticeti's lower bound for a leader is 3 message
delays; a message also waits for its validator's next block).
"""

from __future__ import annotations

import statistics
import time

from simtrust.benchmark import BenchResult
from simtrust.ledger.consensus.sim import Latency, SimConfig
from simtrust.ledger.consensus.sim import run as run_sim

NAME = "consensus-sim"
DESCRIPTION = "Simulated finality latency versus committee size (4..100) at a fixed link latency"

LINK_MS = 50.0
IDS_PER_BLOCK = 4
FULL = {4: 6000.0, 10: 6000.0, 25: 4000.0, 50: 3000.0, 100: 2000.0}
QUICK = {4: 1500.0, 10: 1000.0}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool) -> BenchResult:
    result = BenchResult(NAME)
    result.limits["link_latency_s"] = LINK_MS / 1000
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
        )
        start = time.perf_counter()
        sim = run_sim(config)
        wall = time.perf_counter() - start
        sim.check_safety()
        # Ids committed within the run: ids born in its last rounds and not yet
        # committed are not counted.
        latencies = sim.finality_ms
        rounds = statistics.median(sim.rounds[i] for i in sim.honest)
        blocks = sum(sim.rounds[i] for i in sim.honest) * n  # each core ingests n per round
        p50 = _percentile(latencies, 0.5) / 1000
        p99 = _percentile(latencies, 0.99) / 1000
        result.metrics[f"finality_p50_s_n{n}"] = round(p50, 4)
        result.metrics[f"finality_p99_s_n{n}"] = round(p99, 4)
        result.metrics[f"round_s_n{n}"] = round(duration / 1000 / max(1, rounds), 4)
        result.metrics[f"sim_blocks_per_s_n{n}"] = round(blocks / wall, 1)
        result.ratio(f"p50_delays_n{n}", f"finality_p50_s_n{n}", "link_latency_s")
        result.notes[f"n{n}"] = {
            "simulated_s": duration / 1000,
            "wall_s": round(wall, 2),
            "commits": min(len(sim.commits[i]) for i in sim.honest),
            "samples": len(latencies),
        }
    result.notes["link"] = f"fixed {LINK_MS} ms one-way, no loss, all validators honest"
    return result
