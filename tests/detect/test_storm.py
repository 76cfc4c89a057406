"""Signalling-storm protection: token buckets per tenant, TAC and cell, and the back-off answers."""

from __future__ import annotations

import pytest

from simtrust.detect import (
    Admission,
    BucketRate,
    StormGuard,
    StormLimits,
    backoff_answer,
    storm_guard_from,
)
from simtrust.errors import InvalidInput


def test_burst_then_sustained_rate() -> None:
    g = StormGuard(StormLimits(tenant=None, tac=BucketRate(10, 20), cell=None))
    assert all(g.admit(0.0, tac="35328611").admitted for _ in range(20))
    refused = g.admit(0.0, tac="35328611", subject="262010000000001")
    assert not refused.admitted
    assert refused.scope == "tac"
    assert refused.key == "35328611"
    assert 1 <= refused.retry_after_s <= 31
    # one second later ten more tokens
    assert sum(g.admit(1.0, tac="35328611").admitted for _ in range(15)) == 10
    assert g.stats()["refused"] == {"tac": 6}


def test_storm_of_one_model_does_not_starve_others() -> None:
    g = StormGuard(StormLimits(tenant=BucketRate(1000, 2000), tac=BucketRate(50, 100),
                               cell=BucketRate(200, 400)))
    storm_ok = normal_ok = normal = 0
    for i in range(10_000):  # 10,000 re-attaches of one model within 10 s
        t = i / 1000
        storm_ok += g.admit(t, tenant="acme", tac="86123404", cell=f"c{i % 50}",
                            subject=str(i)).admitted
        if i % 100 == 0:  # ordinary traffic of other models, 10/s
            normal += 1
            normal_ok += g.admit(t, tenant="acme", tac="35328611", cell=f"c{i % 50}").admitted
    assert storm_ok <= 100 + 50 * 10 + 1
    assert normal_ok == normal


def test_refusal_consumes_nothing() -> None:
    g = StormGuard(StormLimits(tenant=BucketRate(1, 5), tac=BucketRate(1, 1), cell=None))
    assert g.admit(0, tenant="t", tac="a").admitted
    assert not g.admit(0, tenant="t", tac="a").admitted  # TAC empty: tenant keeps its token
    assert sum(g.admit(0, tenant="t", tac=f"b{i}").admitted for i in range(4)) == 4


def test_retry_after_spreads_devices() -> None:
    g = StormGuard(StormLimits(tenant=None, tac=None, cell=BucketRate(1, 1), spread_s=60))
    g.admit(0, cell="c1")
    waits = {g.admit(0, cell="c1", subject=f"2620100000{i:05d}").retry_after_s for i in range(50)}
    assert len(waits) > 10
    assert min(waits) >= 1
    assert max(waits) <= 61


def test_key_count_is_bounded() -> None:
    g = StormGuard(StormLimits(tenant=None, tac=None, cell=BucketRate(1, 2), max_keys=100))
    for i in range(1000):
        g.admit(float(i), cell=f"c{i}")
    assert g.stats()["buckets"] == {"tenant": 0, "tac": 0, "cell": 100}  # type: ignore[comparison-overlap]


def test_unlimited_scopes_and_missing_keys_admit() -> None:
    g = StormGuard(StormLimits(tenant=None, tac=None, cell=None))
    assert all(g.admit(0, tenant="t", tac="x", cell="c").admitted for _ in range(10_000))
    assert StormGuard().admit(0).admitted


def test_backoff_answers_per_protocol() -> None:
    refused = Admission(False, "tac", "86123404", 12)
    assert backoff_answer("diameter", refused).code == 3004
    sbi = backoff_answer("sbi", refused)
    assert sbi.code == 503
    assert ("Retry-After", "12") in sbi.headers
    radius = backoff_answer("radius", refused)
    assert radius.discard
    assert radius.code == 0
    with pytest.raises(InvalidInput):
        backoff_answer("coap", refused)
    with pytest.raises(InvalidInput):
        backoff_answer("sbi", Admission(True))


def test_bad_limits_and_time() -> None:
    with pytest.raises(InvalidInput):
        BucketRate(0, 10)
    with pytest.raises(InvalidInput):
        BucketRate(1, 0.5)
    with pytest.raises(InvalidInput):
        StormGuard().admit(float("nan"))


def test_storm_guard_from_settings_limits_only_the_named_scopes() -> None:
    assert storm_guard_from({}) is None
    guard = storm_guard_from({"tac": (1.0, 1.0)})
    assert guard is not None
    assert guard.limits.tenant is None
    assert guard.limits.cell is None
    assert guard.admit(0.0, tenant="t", tac="35209900").admitted
    assert not guard.admit(0.0, tenant="t", tac="35209900").admitted
    assert guard.admit(0.0, tenant="t", tac="35693803").admitted
    with pytest.raises(InvalidInput):
        storm_guard_from({"imsi": (1.0, 1.0)})
