"""The core-network benchmark runs in quick mode and reports the S6a and SBI figures."""

from __future__ import annotations

import shutil

import pytest

from simtrust.benchmark import load_bench


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is missing")
def test_quick_core_network_bench_reports_its_keys() -> None:
    result = load_bench("core-network").run(quick=True).to_json()
    metrics = result["metrics"]
    for key in ("s6a_air_per_s", "s6a_p50_s", "s6a_p99_s", "sbi_auth_per_s", "sbi_p99_s"):
        assert metrics[key] > 0, key
    assert metrics["s6a_p50_s"] <= metrics["s6a_p99_s"]
    # open loop at the offered rate; the closed-loop maximum under its own keys
    assert metrics["s6a_offered_per_s"] == 10_000
    assert metrics["s6a_open_too_busy"] >= 0
    for key in ("s6a_closed_air_per_s", "s6a_closed_p50_s", "s6a_closed_p99_s"):
        assert metrics[key] > 0, key
    assert metrics["s6a_closed_p50_s"] <= metrics["s6a_closed_p99_s"]
    assert result["limits"]["s6a_server_cpu_us_per_air"] > 0
    assert result["limits"]["s6a_open_send_lag_p99_s"] >= 0
    assert result["limits"]["s6a_dwr_per_s"] > 0
    assert result["limits"]["sbi_404_per_s"] > 0
    # SBI: open loop at the rate, the closed-loop maximum under its own keys
    assert metrics["sbi_offered_per_s"] == 5_000
    assert metrics["sbi_p50_s"] <= metrics["sbi_p99_s"]
    for key in ("sbi_closed_auth_per_s", "sbi_closed_p50_s", "sbi_closed_p99_s",
                "sbi_one_supi_auth_per_s", "sbi_one_supi_p50_s", "sbi_one_supi_p99_s"):
        assert metrics[key] > 0, key
    assert metrics["sbi_one_supi_p50_s"] <= metrics["sbi_one_supi_p99_s"]
    assert result["limits"]["sbi_open_send_lag_p99_s"] >= 0
    assert result["limits"]["sbi_server_cpu_us_per_req"] > 0
