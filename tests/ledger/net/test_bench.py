"""The ledger-network benchmark's quick run reports the figures the issue names."""

from __future__ import annotations

from simtrust.benchmark import load_bench


def test_quick_run_reports_finality_and_the_verification_bound() -> None:
    bench = load_bench("ledger-network")
    assert "ledger-network" == bench.NAME
    result = bench.run(quick=True).to_json()
    metrics, limits = result["metrics"], result["limits"]
    assert metrics["finalized_per_s"] > 0
    assert 0 < metrics["finality_p50_s"] <= metrics["finality_p99_s"]
    assert metrics["submitted"] == metrics["finalized"]  # a low load all finalizes
    assert limits["verify_per_s"] > 0
    assert abs(limits["network_bound_per_s"] - limits["verify_per_s"] / 4) < 0.1
    expected = metrics["finalized_per_s"] / limits["network_bound_per_s"]
    assert abs(expected - result["ratios"]["finalized_to_network_bound"]) < 1e-3
    assert len(result["notes"]["steps"]) >= 2
