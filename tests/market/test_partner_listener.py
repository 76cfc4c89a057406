"""A seller's events reach the buyer's own TMF listeners: signed, retried, durable, deduplicated.

Operator A (seller) and operator B (buyer) each run a simtrust on a real HTTP
server on loopback, over their own stores, sharing the consortium ledger. B
registers its listener bases (its TMF622 and TMF637 base paths) on A's hubs
with DID-signed requests; A POSTs each event to
``{callback}/listener/{eventName}`` signed by A's DID; B verifies, drops
repeats and updates its copy of the order and its products. Every request
B's listeners get and every answer they give is checked against the official
TMF622 / TMF637 definitions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from simtrust.api import create_app
from simtrust.market import EVENT_TAG, SIGNATURE_TAG, MarketEvents, Publication, sign_request
from simtrust.runtime import Runtime

from .conftest import INVENTORY, LOOPBACK, ORDERING, TmfCheck, add_stock, char, order_body
from .conftest import service_spec as spec

Seen = list[tuple[str, bytes, int, bytes]]


class Recorder:
    """ASGI wrapper keeping each listener request body with the status and body answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: Seen = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/listener/" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        asked: list[bytes] = []
        answered: list[bytes] = []
        status: list[int] = []

        async def recv() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                asked.append(message.get("body", b""))
            return message

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                answered.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recv, snd)
        self.seen.append((scope["path"], b"".join(asked), status[0], b"".join(answered)))


@contextmanager
def serve(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        until(lambda: server.started)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def until(condition: Callable[[], Any], timeout: float = 300.0) -> None:
    """Wait for ``condition()`` (another thread makes it true); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        pause.wait(0.02)


def check_listener_traffic(seen: Seen, tmf_check: TmfCheck) -> None:
    """Each delivery against the official ``*Event`` and each answer against its schema.

    (A body refused with 400 is the one the test made invalid on purpose.)
    """
    assert seen
    for path, asked, status, answered in seen:
        api = "637" if path.startswith(INVENTORY) else "622"
        name = path.rsplit("/", 1)[-1]
        if status != 400:
            tmf_check(api, name[:1].upper() + name[1:], json.loads(asked))
        tmf_check(api, "EventSubscription" if status == 201 else "Error", json.loads(answered))


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    seller = Runtime.ephemeral(tmp_path / "a")
    buyer = Runtime.ephemeral(tmp_path / "b")
    buyer.ledger = seller.ledger  # the consortium ledger both validate
    # an event can come before B recorded the order it sent: B answers 404, A retries
    seller.market_events.retry_base = 0.05
    seller.market_events.allowed_networks = LOOPBACK
    try:
        yield seller, buyer
    finally:
        buyer.close()
        seller.close()


def _offering(seller: Runtime, url: str) -> dict[str, Any]:
    add_stock(seller, 2)
    spec_id = seller.market.create_item("serviceSpecification", None, spec(
        "SimBatch", "IoT SIMs", char("stockTenant", default="stock", configurable=False)),
        "t").document["id"]
    product = seller.market.create_item("productSpecification", None, {
        "name": "p", "serviceSpecification": [{"id": spec_id}]}, "t")
    offering = seller.market.create_item("productOffering", None, {
        "name": "IoT SIM", "lifecycleStatus": "Launched",
        "productSpecification": {"id": product.document["id"]}}, "t").document
    seller.federation.publish(url, [offering])
    return offering


def test_seller_events_update_the_buyers_records(
        operators: tuple[Runtime, Runtime], tmf_check: TmfCheck) -> None:
    seller, buyer = operators
    recorder = Recorder(create_app(buyer))
    with serve(create_app(seller)) as a_url, serve(recorder) as b_url, \
            httpx.Client(timeout=30) as client:
        offering = _offering(seller, a_url)
        publication = buyer.federation.discover()[0]
        hubs = [buyer.federation.subscribe(client, publication, f"{b_url}{ORDERING}"),
                buyer.federation.subscribe(client, publication, f"{b_url}{INVENTORY}",
                                           api=INVENTORY)]
        tmf_check("622", "EventSubscription", hubs[0])
        tmf_check("637", "EventSubscription", hubs[1])
        order = buyer.federation.order(client, publication, order_body(offering["id"]))

        # B's copy follows A's order to completed, from A's signed events alone.
        until(lambda: buyer.partner_inbox.purchase(order["id"])["state"] == "completed")
        until(lambda: buyer.partner_inbox.products(order["id"]))
        product = buyer.partner_inbox.products(order["id"])[0]
        tmf_check("637", "Product", product)
        assert order["id"] == product["productOrderItem"][0]["productOrderId"]
        at_seller = seller.market.get_order(order["id"]).document
        assert at_seller["state"] == buyer.partner_inbox.purchase(order["id"])["state"]
        until(lambda: seller.market_events.pending() == 0)

    check_listener_traffic(recorder.seen, tmf_check)
    delivered = {path.rsplit("/", 1)[-1] for path, _, status, _ in recorder.seen
                 if status == 201}
    assert {"productOrderCreateEvent", "productOrderStateChangeEvent",
            "productCreateEvent"} <= delivered
    # every delivery was signed by A's DID (nothing reached B unsigned and was accepted)
    # a delivery retried after a slow answer is accepted again (201) but stored once
    assert buyer.partner_inbox.received() == len(
        {json.loads(s[1])["eventId"] for s in recorder.seen if s[2] == 201})


def _event(order: dict[str, Any], state: str, *, event_id: str = "e-1",
           at: datetime | None = None) -> dict[str, Any]:
    moment = (at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return {"eventId": event_id, "eventTime": moment,
            "eventType": "ProductOrderStateChangeEvent",
            "event": {"productOrder": {**order, "state": state}}}


def _deliver(client: httpx.Client, url: str, event: dict[str, Any], signer: Any,
             tag: str = EVENT_TAG) -> httpx.Response:
    request = client.build_request("POST", f"{url}{ORDERING}/listener/"
                                           "productOrderStateChangeEvent", json=event)
    if signer is not None:
        sign_request(request, signer, tag=tag)
    return client.send(request)


def test_listener_verifies_dedups_and_keeps_the_latest(
        operators: tuple[Runtime, Runtime], tmf_check: TmfCheck) -> None:
    seller, buyer = operators
    recorder = Recorder(create_app(buyer))
    seller_did = seller.federation.did
    order = {"id": "po-1", "state": "acknowledged", "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "o"}}]}
    buyer.db.execute("INSERT INTO market_purchases (id, seller, api, body, created_at)"
                     " VALUES (?, ?, ?, ?, ?)", ("po-1", seller_did, "http://a.example",
                                                 json.dumps(order), "2026-01-01T00:00:00"))
    a_key = seller.identity.issuer()
    now = datetime.now(UTC)
    with serve(recorder) as b_url, httpx.Client(timeout=30) as client:
        first = _deliver(client, b_url, _event(order, "inProgress", at=now), a_key)
        assert 201 == first.status_code, first.text
        again = _deliver(client, b_url, _event(order, "inProgress", at=now), a_key)
        assert 201 == again.status_code  # a repeat is acknowledged ...
        assert first.json()["id"] == again.json()["id"] == "e-1"
        assert 1 == buyer.partner_inbox.duplicates  # ... and applied once
        assert 1 == buyer.partner_inbox.received()

        later = _event(order, "completed", event_id="e-3", at=now + timedelta(seconds=2))
        assert 201 == _deliver(client, b_url, later, a_key).status_code
        stale = _event(order, "inProgress", event_id="e-2", at=now + timedelta(seconds=1))
        assert 201 == _deliver(client, b_url, stale, a_key).status_code
        assert "completed" == buyer.partner_inbox.purchase("po-1")["state"]

        # Refused: unsigned, signed for an API call, signed by another operator, unknown order.
        unsigned = _deliver(client, b_url, _event(order, "failed", event_id="x1"), None)
        assert 401 == unsigned.status_code
        as_api_call = _deliver(client, b_url, _event(order, "failed", event_id="x2"), a_key,
                               tag=SIGNATURE_TAG)
        assert 401 == as_api_call.status_code
        other = _deliver(client, b_url, _event(order, "failed", event_id="x3"),
                         buyer.identity.issuer())
        assert 404 == other.status_code
        unknown = _deliver(client, b_url, _event({**order, "id": "po-9"}, "failed",
                                                 event_id="x4"), a_key)
        assert 404 == unknown.status_code
        bad = _deliver(client, b_url, {**_event(order, "failed", event_id="x5"),
                                       "eventType": 7}, a_key)
        assert 400 == bad.status_code
        assert "completed" == buyer.partner_inbox.purchase("po-1")["state"]
        assert 3 == buyer.partner_inbox.received()
    check_listener_traffic(recorder.seen, tmf_check)


def test_undelivered_events_survive_a_restart_of_the_sender(
        operators: tuple[Runtime, Runtime], tmf_check: TmfCheck) -> None:
    """B's listener is down: A retries with back-off, stops, and a new A process delivers."""
    seller, buyer = operators
    seller.market_events.retry_base = 0.2  # eight attempts span ~50 s: none gives up here
    recorder = Recorder(create_app(buyer))
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    b_url = f"http://127.0.0.1:{down.getsockname()[1]}"
    with serve(create_app(seller)) as a_url, httpx.Client(timeout=30) as client:
        offering = _offering(seller, a_url)
        publication: Publication = buyer.federation.discover()[0]
        buyer.federation.subscribe(client, publication, f"{b_url}{ORDERING}",
                                   query="eventType=ProductOrderStateChangeEvent")
        order = buyer.federation.order(client, publication, order_body(offering["id"]))
        until(lambda: seller.market_events.failed_attempts >= 2)
    seller.market_events.close()  # the sending process stops with events in its outbox
    assert seller.market_events.pending() >= 1
    assert "acknowledged" == buyer.partner_inbox.purchase(order["id"])["state"]

    down.close()
    restarted = MarketEvents(seller.db, seller.clock, allowed_networks=LOOPBACK,
                             signer_for=seller.event_signer)
    restarted.retry_base = 0.01
    b_port = int(b_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", b_port))
    server = uvicorn.Server(uvicorn.Config(recorder, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        until(lambda: server.started)
        restarted.start()
        until(lambda: restarted.pending() == 0)
    finally:
        restarted.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert "completed" == buyer.partner_inbox.purchase(order["id"])["state"]
    states = [json.loads(asked)["event"]["productOrder"]["state"]
              for _, asked, status, _ in recorder.seen if status == 201]
    assert ["inProgress", "completed"] == states  # what the stopped process left undelivered
    assert restarted.delivered == 2
    check_listener_traffic(recorder.seen, tmf_check)
