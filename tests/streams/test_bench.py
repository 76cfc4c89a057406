"""The streams benchmark runs at tiny size through the real broker and reports its figures."""

from __future__ import annotations

import pytest

from simtrust.benchmark import load_bench


@pytest.mark.mqtt
def test_quick_run_reports_named_figures(require_service: object) -> None:
    require_service("mqtt")  # type: ignore[operator]
    figures = load_bench("streams").run(True).to_json()
    assert {"messages_per_s", "scores_per_s"} <= set(figures["metrics"])
    assert "ed25519_sign_verify_per_s" in figures["limits"]
    assert {"ok": 1000} == figures["notes"]["verdicts"]
    assert figures["ratios"]["messages_to_raw"] > 0
