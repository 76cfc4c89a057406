"""Replayed partner signatures are refused; hub callbacks cannot reach internal addresses.

RFC 9421 §7.2.2 (replay): each signature's nonce is accepted once within the
signature's validity, in the store every process of a node shares. OWASP SSRF
prevention for TMF630 hub callbacks: non-public targets refused unless allowed,
delivery connects to the checked address, redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from http_message_signatures import HTTPMessageSigner, algorithms

from simtrust.api import create_app
from simtrust.market import sign_request
from simtrust.market._events import MAX_ATTEMPTS, RefusedTarget, resolve_callback
from simtrust.runtime import Runtime
from simtrust.store import open_database

from .conftest import CATALOG, LOOPBACK, ORDERING, Listener, TmfCheck

SELLER_URL = "http://seller.example"


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    seller = Runtime.ephemeral(tmp_path / "a")
    buyer = Runtime.ephemeral(tmp_path / "b")
    buyer.ledger = seller.ledger
    try:
        yield seller, buyer
    finally:
        buyer.close()
        seller.close()


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        pause.wait(0.02)


def test_a_replayed_signature_is_refused_by_every_process(
        operators: tuple[Runtime, Runtime], tmf_check: TmfCheck) -> None:
    seller, buyer = operators
    url = f"{SELLER_URL}{CATALOG}/productOffering"
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        first = api.build_request("GET", url)
        sign_request(first, buyer.identity.issuer())
        assert 200 == api.send(first).status_code
        # The same bytes again (a captured request): refused.
        again = api.send(httpx.Request("GET", url, headers=first.headers))
        assert 401 == again.status_code
        tmf_check("620", "Error", again.json())
        assert "already used" in again.json()["reason"] + again.json().get("message", "")
        # A fresh signature from the same partner still passes.
        fresh = api.build_request("GET", url)
        sign_request(fresh, buyer.identity.issuer())
        assert 200 == api.send(fresh).status_code

    # Another process on the same store refuses it too (the nonces live in the store).
    other = Runtime(seller.settings, open_database(seller.settings.store_url), seller.keyring,
                    seller.clock)
    other.ledger = seller.ledger
    try:
        with TestClient(create_app(other), base_url=SELLER_URL) as api:
            assert 401 == api.send(httpx.Request("GET", url, headers=first.headers)).status_code
    finally:
        other.close()

    # Records outlive no signature: expired ones are purged as new ones arrive.
    seller.db.execute("UPDATE market_nonces SET expires_at = ?", (time.time() - 1,))
    seller.federation._nonce_inserts = 0
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        late = api.build_request("GET", url)
        sign_request(late, buyer.identity.issuer())
        assert 200 == api.send(late).status_code
    rows = seller.db.query("SELECT expires_at FROM market_nonces")
    assert 1 == len(rows)
    assert rows[0][0] <= time.time() + 300


def test_signatures_without_nonce_or_too_old_are_refused(
        operators: tuple[Runtime, Runtime]) -> None:
    seller, buyer = operators
    url = f"{SELLER_URL}{CATALOG}/productOffering"
    signer = buyer.identity.issuer()
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        bare = api.build_request("GET", url)
        hms = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=None)
        prepared = hms.prepare(bare, key_id=signer.verification_method,
                               created=datetime.now(UTC), tag="simtrust-tmf",
                               covered_component_ids=("@method", "@target-uri",
                                                      "content-digest"), body=b"")
        hms.apply(bare, prepared, signer.sign(prepared.signature_base))
        assert 401 == api.send(bare).status_code
        old = api.build_request("GET", url)
        sign_request(old, signer, now=datetime.now(UTC) - timedelta(minutes=10))
        assert 401 == api.send(old).status_code
    assert not seller.db.query("SELECT nonce FROM market_nonces")


@pytest.mark.parametrize("callback", [
    "http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x", "http://10.1.2.3/x",
    "http://169.254.169.254/latest/meta-data", "http://192.168.0.1/", "http://100.64.0.1/",
    "http://[::ffff:127.0.0.1]/x", "http://[fe80::1]/x", "http://0.0.0.0/", "http://224.0.0.1/"])
def test_hub_refuses_internal_callback_literals(
        sqlite_runtime: Runtime, operator_headers: dict[str, str], tmf_check: TmfCheck,
        callback: str) -> None:
    with TestClient(create_app(sqlite_runtime)) as api:
        answer = api.post(f"{ORDERING}/hub", json={"callback": callback},
                          headers=operator_headers)
    assert 400 == answer.status_code, answer.text
    tmf_check("622", "Error", answer.json())
    assert not sqlite_runtime.db.query("SELECT id FROM market_hubs")


def test_resolution_picks_the_checked_public_address() -> None:
    table = {"mixed.example": ["10.0.0.5", "93.184.215.14"],
             "inside.example": ["127.0.0.1", "192.168.1.1", "fd00::1"]}
    target, host, address = resolve_callback(
        "https://mixed.example:8443/cb?x=1", (), lambda name, port: table[name])
    assert ("https://93.184.215.14:8443/cb?x=1", "mixed.example") == (target, host)
    assert ipaddress.ip_address("93.184.215.14") == address
    with pytest.raises(RefusedTarget):
        resolve_callback("http://inside.example/cb", (), lambda name, port: table[name])
    allowed = (ipaddress.ip_network("fd00::/8"),)
    target, _, _ = resolve_callback("http://inside.example/cb", allowed,
                                    lambda name, port: table["inside.example"][2:])
    assert "http://[fd00::1]/cb" == target


def _event(rt: Runtime) -> None:
    with rt.db.transaction():
        rt.market_events.emit("productOrdering", "ProductOrderStateChangeEvent",
                              "productOrder", {"id": "o-1", "state": "completed"}, None)


def _settled(rt: Runtime) -> list[Any]:
    return rt.db.query("SELECT delivered, last_error FROM market_events")


def test_one_registration_queues_each_event_once(sqlite_runtime: Runtime) -> None:
    """The first listener of a fresh node (its cache loaded after the INSERT) counts once."""
    events = sqlite_runtime.market_events
    events.register("productOrdering", None, {"callback": "http://listener.example/x"})
    events.register("productOrdering", "acme", {"callback": "http://listener.example/y"})
    assert 2 == len(events._load())
    events.close()
    _event(sqlite_runtime)
    assert 2 == len(_settled(sqlite_runtime))


def test_delivery_connects_to_the_checked_address_only(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    events = rt.market_events
    events.retry_base = 0.001
    listener = Listener()
    port = listener.url.split(":")[2].split("/")[0]
    name = f"listener.example:{port}"
    # The name resolves to loopback: refused while loopback is not allowed.
    events.resolve = lambda host, p: ["127.0.0.1"]
    try:
        events.register("productOrdering", None, {"callback": f"http://{name}/listener"})
        _event(rt)
        _until(lambda: _settled(rt)[0][0] == -1)
        assert "no allowed address" in _settled(rt)[0][1]
        assert [] == listener.hosts
        # Allowed: the post goes to the checked address, the Host header keeps the name.
        events.allowed_networks = LOOPBACK
        _event(rt)
        listener.wait_for(lambda e: e["event"]["productOrder"]["id"] == "o-1")
        _until(lambda: _settled(rt)[1][0] == 1)
        assert [(-1, "no allowed address"), (1, None)] == [
            (d, e and e[-len("no allowed address"):]) for d, e in _settled(rt)]
        assert [name] == listener.hosts
    finally:
        listener.close()


def test_delivery_does_not_follow_redirects(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    events = rt.market_events
    events.retry_base = 0.001
    events.allowed_networks = LOOPBACK
    target, bouncer = Listener(), Listener()
    bouncer.redirect_to = target.url
    try:
        events.register("productOrdering", None, {"callback": bouncer.url})
        _event(rt)
        _until(lambda: _settled(rt)[0][0] == -1)
        # Every attempt reached the bouncer, none its redirect target.
        assert [(-1, "status 307")] == _settled(rt)
        assert MAX_ATTEMPTS == len(bouncer.hosts)
        assert [] == target.hosts
    finally:
        target.close()
        bouncer.close()


def test_processes_of_a_node_share_listeners_and_post_each_event_once(
        sqlite_runtime: Runtime) -> None:
    """Two runtimes on one store (two API worker processes): a listener registered
    through one hears the other's events, and each event is posted once, although
    both delivery workers read the same outbox."""
    a = sqlite_runtime
    b = Runtime(a.settings, open_database(a.settings.store_url), a.keyring, a.clock)
    listener = Listener()
    try:
        for rt in (a, b):
            rt.market_events.retry_base = 0.001
            rt.market_events.allowed_networks = LOOPBACK
        assert [] == b.market_events._load()  # b looked before a registered
        a.market_events.register("productOrdering", None, {"callback": listener.url})
        for n in range(15):
            for rt in (a, b):
                with rt.db.transaction():
                    rt.market_events.emit("productOrdering", "ProductOrderStateChangeEvent",
                                          "productOrder", {"id": f"o-{n}", "state": "completed"},
                                          None)
        assert 30 == len(_settled(a))
        _until(lambda: all(d == 1 for d, _ in _settled(a)))
        ids = [e["eventId"] for e in listener.events]
        assert 30 == len(ids)
        assert 30 == len(set(ids))
    finally:
        listener.close()
        b.close()
