"""The vc benchmark runs quickly and reports the figures issue 5 names."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from simtrust.benchmark import load_bench
from simtrust.identity import Ed25519Signer, issue_credential


def test_quick_run_reports_named_figures() -> None:
    result = load_bench("vc").run(True)
    figures = result.to_json()
    assert {"issue_per_s", "verify_per_s", "resolve_p50_s"} <= set(figures["metrics"])
    assert "ed25519_verify_per_s" in figures["limits"]
    assert 0 < figures["ratios"]["verify_to_raw"] < 1.5
    assert 0 < figures["metrics"]["resolve_p50_s"] < 1


def test_digitalbazaar_verifies_what_simtrust_signs() -> None:
    """The bench's peer (Digital Bazaar's @digitalbazaar/vc, pinned in bench/js) accepts
    simtrust's eddsa-jcs-2022 and eddsa-rdfc-2022 credentials; it raises if it refuses one."""
    bench = load_bench("vc")
    problem = bench._peer_ready()
    if problem is not None:
        if os.environ.get("SIMTRUST_REQUIRE_SERVICES", "") not in ("", "0"):
            pytest.fail(f"Digital Bazaar's stack cannot run: {problem}")
        pytest.skip(f"Digital Bazaar's stack cannot run: {problem}")
    signer = Ed25519Signer.generate()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    credential = bench._credential(signer.controller)
    signed = {
        suite: issue_credential(credential, signer, now=now, cryptosuite=suite)
        for suite in ("eddsa-jcs-2022", "eddsa-rdfc-2022")
    }
    rates = bench._peer_rates(signed, 0.05)
    assert {"eddsa-jcs-2022", "eddsa-rdfc-2022"} == set(rates)
    assert all(value > 0 for value in rates.values())


def test_identity_service_quick_run_reports_named_figures() -> None:
    figures = load_bench("identity-service").run(True).to_json()
    assert {"oid4vp_per_s", "capability_checks_per_s", "capability_verify_per_s"} <= set(
        figures["metrics"]
    )
    assert {"ed25519_verify_per_s", "sha256_1k_per_s"} <= set(figures["limits"])
    assert 0 < figures["ratios"]["oid4vp_to_raw"] < 1
