"""The devices benchmark runs in quick mode and reports the figures issue 21 names."""

from __future__ import annotations

import pytest

from simtrust.benchmark import load_bench


@pytest.mark.slow
def test_quick_devices_bench_reports_its_keys() -> None:
    result = load_bench("devices").run(quick=True).to_json()
    for key in ("registrations_per_s", "notifications_per_s", "devices_per_gib",
                "cert_registrations_per_s", "registrations_per_s_apart",
                "notifications_per_s_apart"):
        assert result["metrics"][key] > 0, key
    for key in ("dtls_handshakes_per_s", "dtls_records_per_s", "cert_dtls_handshakes_per_s",
                "dtls_handshakes_per_s_apart", "dtls_records_per_s_apart"):
        assert result["limits"][key] > 0, key
    assert 0 < result["ratios"]["registrations_vs_handshakes"]
    assert 0 < result["ratios"]["registrations_apart_vs_handshakes_apart"]
    assert 0 < result["ratios"]["notifications_apart_vs_records_apart"]
    assert result["notes"]["notifications_apart"]["counted"] >= 0.95 * \
        result["notes"]["notifications"]
