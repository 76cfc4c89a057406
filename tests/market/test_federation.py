"""Two operators trade: a catalog published on the ledger, a DID-signed order, anchored states.

Operator A (seller) and operator B (buyer) each have their own data directory
and store; they share the consortium ledger (one validator here), where both
did:simtrust identities live. B discovers A's signed publication, checks A's
offerings against the published hash, orders over A's TMF622 API with an
RFC 9421 signature (no API key), and reads the order's anchored history; a
request signed by the ``http-message-signatures`` library (the independent
RFC 9421 implementation) with a key that is not the DID's is refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from simtrust.api import create_app
from simtrust.identity import did_key
from simtrust.market import SIGNATURE_TAG, sign_request
from simtrust.runtime import Runtime

from .conftest import (
    LOOPBACK,
    ORDERING,
    SERVICE_INVENTORY,
    Listener,
    TmfCheck,
    add_stock,
    char,
    order_body,
    publish,
)
from .conftest import service_spec as spec

SELLER_URL = "http://seller.example"


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    seller = Runtime.ephemeral(tmp_path / "a")
    buyer = Runtime.ephemeral(tmp_path / "b")
    buyer.ledger = seller.ledger  # the consortium ledger both validate
    try:
        yield seller, buyer
    finally:
        buyer.close()
        seller.close()


def test_two_operators_trade(operators: tuple[Runtime, Runtime], tmf_check: TmfCheck) -> None:
    seller, buyer = operators
    add_stock(seller, 3)
    admin = seller.tenants.create_key("operator-admin", "seller admin")
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        operator = {"Authorization": f"Bearer {admin.secret}"}
        offering = publish(api, operator, "IoT roaming bundle", [
            spec("SimBatch", "IoT SIMs", char("stockTenant", default="stock",
                                              configurable=False)),
            spec("RoamingAgreement", "Roaming for the bundle",
                 char("visitedPlmn", default="20810", configurable=False),
                 char("dataPerMb", default=150, configurable=False, value_type="integer"),
                 char("homePlmn", mandatory=True), char("consumerParty", mandatory=True))])
        published = seller.federation.publish(SELLER_URL, [offering])

        # B finds A's publication on the ledger and verifies it against A's API.
        found = buyer.federation.discover()
        assert [seller.federation.did] == [p.seller for p in found]
        offerings = buyer.federation.fetch_catalog(api, found[0])
        assert [offering["id"]] == [o["id"] for o in offerings]
        assert published.sha256 == found[0].sha256

        # Contract parties sign transitions with did:key: B's is its DID's own key.
        buyer_key = did_key(buyer.identity.issuer().public_key)
        order = buyer.federation.order(api, found[0], order_body(
            offering["id"], 2, homePlmn="26201", consumerParty=buyer_key))
        tmf_check("622", "ProductOrder", order)
        current = buyer.federation.refresh(api, order["id"])
        tmf_check("622", "ProductOrder", current)
        assert "completed" == current["state"]

        # Both sides hold the same history: every state anchored and signed by A.
        history = buyer.federation.history(order["id"])
        assert ["acknowledged", "inProgress", "completed"] == [h["state"] for h in history]
        assert {seller.federation.did} == {h["seller"] for h in history}
        assert {buyer.federation.did} == {h["buyer"] for h in history}
        assert buyer.federation.matches_anchor(current)
        assert seller.federation.history(order["id"]) == history

        # What A provisioned for B lives in B's partner tenant at A.
        partner = seller.federation.partner(buyer.federation.did)
        assert 2 == len(seller.subscriber.inventory.list_sims(partner))
        services = _signed(api, buyer, "GET", f"{SELLER_URL}{SERVICE_INVENTORY}/service")
        tmf_check("638", "Service", services)
        roaming = next(s for s in services if s["category"] == "RoamingAgreement")
        contract = next(c["value"] for c in roaming["serviceCharacteristic"]
                        if c["name"] == "contractId")
        state = buyer.contracts.state(contract)["state"]
        assert {"home": buyer_key, "visited": did_key(seller.ledger.signer.public_key)} == \
            state["parties"]

        # The RFC 9421 library signs with a key that is not in B's DID document: refused.
        stranger = Ed25519PrivateKey.generate()
        key_id = f"{buyer.federation.did}#key-1"
        request = httpx.Request("GET", f"{SELLER_URL}{ORDERING}/productOrder")
        HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                          key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: stranger})).sign(
            request, key_id=key_id, tag=SIGNATURE_TAG, created=datetime.now(UTC),
            covered_component_ids=("@method", "@target-uri", "content-digest"), body=b"")
        refused = api.send(request)
        assert 401 == refused.status_code
        tmf_check("622", "Error", refused.json())
        # ... and a signed request whose body was changed in transit too.
        tampered = api.build_request("POST", f"{SELLER_URL}{ORDERING}/productOrder",
                                     json=order_body(offering["id"]))
        from_buyer = buyer.identity.issuer()
        _sign(tampered, from_buyer)
        tampered = httpx.Request("POST", tampered.url, headers=tampered.headers,
                                 content=tampered.content.replace(b'"1"', b'"2"'))
        assert 401 == api.send(tampered).status_code


def _sign(request: httpx.Request, signer: Any) -> None:
    sign_request(request, signer)


def _signed(api: TestClient, rt: Runtime, method: str, url: str) -> Any:
    request = api.build_request(method, url)
    _sign(request, rt.identity.issuer())
    answer = api.send(request)
    assert 200 == answer.status_code, answer.text
    return answer.json()


def _until(condition: Any, timeout: float = 60.0) -> None:
    """Wait for ``condition()`` (another thread makes it true); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        pause.wait(0.02)


def test_partner_order_over_real_servers_with_notifications(
        operators: tuple[Runtime, Runtime], tmf_check: TmfCheck, listener: Listener) -> None:
    """A's API on a real HTTP server; B registers its listener on A's hub with its DID."""
    seller, buyer = operators
    add_stock(seller, 1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(seller), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    seller.market_events.retry_base = 0.01
    seller.market_events.allowed_networks = LOOPBACK
    try:
        _until(lambda: server.started)
        spec_id = seller.market.create_item("serviceSpecification", None, spec(
            "SimBatch", "IoT SIMs", char("stockTenant", default="stock", configurable=False)),
            "t").document["id"]
        product = seller.market.create_item("productSpecification", None, {
            "name": "p", "serviceSpecification": [{"id": spec_id}]}, "t")
        offering = seller.market.create_item("productOffering", None, {
            "name": "IoT SIM", "lifecycleStatus": "Launched",
            "productSpecification": {"id": product.document["id"]}}, "t").document
        seller.federation.publish(url, [offering])
        with httpx.Client(timeout=30) as client:
            publication = buyer.federation.discover()[0]
            buyer.federation.fetch_catalog(client, publication)
            hub = _signed_post(client, buyer, f"{url}{ORDERING}/hub", {
                "callback": listener.url, "query": "eventType=ProductOrderStateChangeEvent"})
            tmf_check("622", "EventSubscription", hub)
            order = buyer.federation.order(client, publication, order_body(offering["id"]))
            event = listener.wait_for(
                lambda e: e["event"]["productOrder"]["state"] == "completed")
            tmf_check("622", "ProductOrderStateChangeEvent", event)
            assert order["id"] == event["event"]["productOrder"]["id"]
            current = buyer.federation.refresh(client, order["id"])
        assert "completed" == current["state"]
        _until(lambda: buyer.federation.matches_anchor(current))
        assert ["acknowledged", "inProgress", "completed"] == [
            h["state"] for h in buyer.federation.history(order["id"])]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _signed_post(client: httpx.Client, rt: Runtime, url: str, body: dict[str, Any]) -> Any:
    request = client.build_request("POST", url, json=body)
    _sign(request, rt.identity.issuer())
    answer = client.send(request)
    assert 201 == answer.status_code, answer.text
    return answer.json()
