"""The ledger-ingest benchmark's quick run reports the figures the issue names."""

from __future__ import annotations

from simtrust.benchmark import load_bench


def test_quick_run_reports_rates_and_ratio() -> None:
    bench = load_bench("ledger-ingest")
    assert "ledger-ingest" == bench.NAME
    result = bench.run(quick=True).to_json()
    assert result["metrics"]["msgs_per_s"] > 0
    assert result["limits"]["verify_per_s"] > 0
    expected = result["metrics"]["msgs_per_s"] / result["limits"]["verify_per_s"]
    assert abs(expected - result["ratios"]["msgs_to_verify"]) < 1e-3
    assert 4_000 == result["notes"]["messages"]
