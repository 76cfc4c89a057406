"""The settlement benchmark runs at tiny size, checks the injected counts and reports the
figures issue 15 names."""

from __future__ import annotations

from simtrust.benchmark import load_bench


def test_quick_run_reports_named_figures() -> None:
    figures = load_bench("settlement").run(True).to_json()
    assert {"records_per_s", "peak_rss_bytes", "seconds"} <= set(figures["metrics"])
    assert figures["limits"]["csv_parse_per_s"] > 0
    assert figures["notes"]["counts"]["partial"] == 400
    assert {"contract_transitions_per_s", "contract_finality_p50_s",
            "contract_finality_p99_s"} <= set(figures["metrics"])
    assert figures["limits"]["ed25519_verify_per_s"] > 0
