"""The vc benchmark runs quickly and reports the figures issue 5 names."""

from __future__ import annotations

from simtrust.benchmark import load_bench


def test_quick_run_reports_named_figures() -> None:
    result = load_bench("vc").run(True)
    figures = result.to_json()
    assert {"issue_per_s", "verify_per_s", "resolve_p50_s"} <= set(figures["metrics"])
    assert "ed25519_verify_per_s" in figures["limits"]
    assert 0 < figures["ratios"]["verify_to_raw"] < 1.5
    assert 0 < figures["metrics"]["resolve_p50_s"] < 1
