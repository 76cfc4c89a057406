"""Storm protection on RADIUS: an Access-Request over the tenant limit is silently
discarded (RFC 2865 §2), seen from Debian's radclient as no reply at all."""

from __future__ import annotations

from typing import Any

from simtrust.detect import BucketRate, StormGuard, StormLimits

from .conftest import Aaa, radclient
from .test_radclient import access


def test_over_the_tenant_limit_no_answer_then_counted(aaa: Aaa) -> None:
    aaa.add_sim(1)
    aaa.add_sim(2)
    # one token, refilled in 1,000 s: the second request of the tenant is over the limit
    aaa.services.server.storm = StormGuard(
        StormLimits(tenant=BucketRate(0.001, 1), tac=None, cell=None))
    out = radclient(aaa.auth_port, "auth", access(1))
    assert "Received Access-Accept" in out, out
    out = radclient(aaa.auth_port, "auth", access(2), retries=2, timeout=1.0)
    assert "Received" not in out, out
    assert "No reply" in out or "no response" in out.lower(), out
    counters = aaa.services.server.counters
    assert counters["storm_dropped"] >= 2  # the request and radclient's retransmission
    assert 1 == counters["accepts"]
    assert 1 == counters["access_requests"]
    assert aaa.services.server.storm.refused["tenant"] == counters["storm_dropped"]


def test_stats_route_shows_the_storm_counters(aaa: Aaa, api: Any,
                                              operator_headers: dict[str, str]) -> None:
    assert api.get("/v1/radius/stats", headers=operator_headers).json()["storm"] is None
    guard = StormGuard(StormLimits(tenant=BucketRate(0.001, 1), tac=None, cell=None))
    aaa.services.server.storm = guard
    guard.admit(0.0, tenant="acme")
    guard.admit(0.0, tenant="acme")
    body = api.get("/v1/radius/stats", headers=operator_headers).json()
    assert {"admitted": 1, "refused": {"tenant": 1}, "buckets": {"tenant": 1, "tac": 0,
                                                                   "cell": 0}} == body["storm"]
    assert "storm_dropped" in body["counters"]
