"""The attach benchmark runs in quick mode and reports the figures issue 4 names."""

from __future__ import annotations

import pytest

from simtrust.benchmark import load_bench


@pytest.mark.slow
def test_quick_attach_bench_reports_its_keys() -> None:
    result = load_bench("attach").run(quick=True).to_json()
    metrics = result["metrics"]
    for key in ("decisions_per_s", "http_decisions_per_s", "http_p50_s", "http_p99_s"):
        assert metrics[key] > 0, key
    assert metrics["http_p50_s"] <= metrics["http_p99_s"]
    assert result["limits"]["point_select_per_s"] > 0
    assert 0 < result["ratios"]["decisions_to_point_select"]
    assert result["notes"]["audit_records"] >= result["notes"]["sims"]
