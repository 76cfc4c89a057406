"""Rate limits of the unauthenticated OpenID4VCI endpoints: PAR (RFC 9126) and nonce (§7).

Each address, and at PAR each claimed ``client_id``, has a token bucket of
``SIMTRUST_OID4VCI_PER_MINUTE``; over it the answer is 429 (RFC 6585 §4) as an
RFC 9457 problem with ``Retry-After``. The limiter's clock is the test's, so
nothing here waits for time to pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.api import create_app
from simtrust.api._ratelimit import RateLimiter
from simtrust.errors import RateLimited
from simtrust.runtime import Runtime

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RATE = 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app_and_clock(tmp_path: Path) -> Iterator[tuple[object, Clock]]:
    rt = Runtime.ephemeral(tmp_path / "home")
    rt.settings = replace(rt.settings, oid4vci_per_minute=RATE)
    app = create_app(rt)
    clock = Clock()
    app.state.oid4vci_limiter = RateLimiter(RATE, what="OpenID4VCI endpoints", clock=clock)
    try:
        yield app, clock
    finally:
        rt.close()


def _client(app: object, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))  # type: ignore[arg-type]


def _par(http: TestClient, client_id: str = "wallet-1") -> int:
    # Incomplete requests are charged too: the limit protects the endpoint, not the grant.
    response = http.post("/oauth2/par", content=f"client_id={client_id}&response_type=code",
                         headers=FORM)  # fmt: skip
    return int(response.status_code)


def _assert_problem(response: object, wait: int) -> None:
    assert 429 == response.status_code  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(  # type: ignore[attr-defined]
        "application/problem+json")
    assert str(wait) == response.headers["retry-after"]  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert (429, "rate-limited") == (body["status"], body["type"].rsplit("/", 1)[-1])
    assert "OpenID4VCI" in body["detail"]


def test_par_is_limited_per_address_with_retry_after(app_and_clock: tuple[object, Clock]) -> None:
    app, clock = app_and_clock
    http = _client(app, "192.0.2.10")
    assert [400, 400, 400] == [_par(http, f"w{i}") for i in range(RATE)]
    refused = http.post("/oauth2/par", content="client_id=w9&response_type=code", headers=FORM)
    _assert_problem(refused, 60 // RATE)
    # Another address has its own budget.
    assert 400 == _par(_client(app, "192.0.2.11"), "w10")
    # One token comes back after 60/RATE seconds.
    clock.now += 60 / RATE
    assert 400 == _par(http, "w11")
    assert 429 == _par(http, "w12")


def test_par_is_limited_per_client_id_across_addresses(
    app_and_clock: tuple[object, Clock],
) -> None:
    app, _clock = app_and_clock
    codes = [_par(_client(app, f"198.51.100.{i}"), "same-wallet") for i in range(RATE + 1)]
    assert [400] * RATE + [429] == codes
    assert 400 == _par(_client(app, "198.51.100.99"), "other-wallet")


def test_nonce_is_limited_and_shares_the_address_budget_with_par(
    app_and_clock: tuple[object, Clock],
) -> None:
    app, clock = app_and_clock
    http = _client(app, "203.0.113.5")
    assert 400 == _par(http)
    for _ in range(RATE - 1):
        answer = http.post("/oid4vci/nonce")
        assert 200 == answer.status_code
        assert "c_nonce" in answer.json()
    refused = http.post("/oid4vci/nonce")
    _assert_problem(refused, 60 // RATE)
    clock.now += 60
    assert 200 == http.post("/oid4vci/nonce").status_code


def test_openapi_declares_429_with_retry_after(app_and_clock: tuple[object, Clock]) -> None:
    app, _clock = app_and_clock
    doc = _client(app, "192.0.2.1").get("/openapi.json").json()
    for path in ("/oauth2/par", "/oid4vci/nonce"):
        declared = doc["paths"][path]["post"]["responses"]["429"]
        assert "Retry-After" in declared["headers"]
        assert "application/problem+json" in declared["content"]


def test_a_refused_request_charges_no_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(2, what="x", clock=clock)
    limiter.take("address:a", "client_id:c")
    limiter.take("address:a", "client_id:c")
    with pytest.raises(RateLimited):
        limiter.take("address:b", "client_id:c")
    # address:b was not charged by the refusal: it still has its whole budget.
    limiter.take("address:b")
    limiter.take("address:b")
    with pytest.raises(RateLimited) as caught:
        limiter.take("address:b")
    assert 30 == caught.value.context["retryAfter"]


def test_the_table_stays_bounded_and_keeps_active_keys() -> None:
    clock = Clock()
    limiter = RateLimiter(1, what="x", max_keys=100, clock=clock)
    limiter.take("busy")
    for i in range(1000):
        limiter.take(f"k{i}")
        with pytest.raises(RateLimited):
            limiter.take("busy")  # still tracked: its use keeps it recent
    assert len(limiter._buckets) <= 100


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.floats(0, 120), st.integers(1, 3)), max_size=40),
       rate=st.integers(1, 600))  # fmt: skip
def test_never_more_than_the_burst_plus_the_refill(steps: list[tuple[float, int]],
                                                   rate: int) -> None:  # fmt: skip
    clock = Clock()
    limiter = RateLimiter(rate, what="x", clock=clock)
    start, admitted = clock.now, 0
    for advance, tries in steps:
        clock.now += advance
        for _ in range(tries):
            wait = None
            try:
                limiter.take("k")
            except RateLimited as exc:
                wait = exc.context["retryAfter"]
            if wait is None:
                admitted += 1
            else:
                assert 1 <= wait <= max(1, 60 // rate + 1)
    assert admitted <= rate + (clock.now - start) * rate / 60 + 1e-6
