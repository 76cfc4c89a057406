"""The consensus-sim benchmark runs quickly and reports the figures it documents."""

from __future__ import annotations

from simtrust.benchmark import load_bench


def test_quick_run_reports_finality_per_committee_size() -> None:
    figures = load_bench("consensus-sim").run(True).to_json()
    metrics = figures["metrics"]
    for n in (4, 10):
        p50, p99 = metrics[f"finality_p50_s_n{n}"], metrics[f"finality_p99_s_n{n}"]
        # at least the three message delays of a commit, and not stalled
        assert 3 * figures["limits"]["link_latency_s"] <= p50 <= p99 < 1.0
        assert 1 < figures["ratios"][f"p50_delays_n{n}"] < 10
