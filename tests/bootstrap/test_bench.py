"""The bootstrap benchmark runs in quick mode and reports the figures issue 14 names."""

from __future__ import annotations

import pytest

from simtrust.benchmark import load_bench


@pytest.mark.slow
def test_quick_bootstrap_bench_reports_its_keys() -> None:
    result = load_bench("bootstrap").run(quick=True).to_json()
    for key in ("certs_per_s", "certs_8_issuers_per_s", "bootstraps_per_s",
                "bootstraps_new_tls_per_s", "bootstraps_per_listener_core_s", "ocsp_per_s"):
        assert result["metrics"][key] > 0, key
    # The bench's client side is measured apart from the listener.
    for key in ("listener_cpu_ms_per_bootstrap", "devices_cpu_ms_per_bootstrap"):
        assert result["notes"][key] > 0, key
    assert result["limits"]["p256_sign_per_s"] > 0
    # The device side's own limit, and the machine's, derived from the CPU measured.
    listener_ms = result["notes"]["listener_cpu_ms_per_bootstrap"]
    devices_ms = result["notes"]["devices_cpu_ms_per_bootstrap"]
    assert result["limits"]["devices_per_core_s"] == pytest.approx(1000 / devices_ms, 0.01)
    assert result["limits"]["bootstraps_per_machine_cpu_s"] == pytest.approx(
        result["machine"]["cpus"] * 1000 / (listener_ms + devices_ms), 0.01)
    assert 0 < result["ratios"]["certs_to_p256_sign"]
