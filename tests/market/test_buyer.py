"""simtrust as a buyer: TMF622 / TMF641 / TMF638 calls to partner sellers over real HTTP.

Two sellers on loopback: a simtrust node (product orders: create, read, cancel,
v5 DELETE; the buyer authenticated by an API key or by its DID) and a small
independent TMF641 / TMF638 seller written here that checks every request body
against the official files (``ServiceOrder_Create``, ``CancelServiceOrder_Create``,
``Service_Create``, ``Service_Update``) and refuses the rest with a TMF ``Error``.
Every answer the buyer gets is checked against the official definitions. The CLI
runs the same operations (``simtrust market buy …``; one line and exit 2 on a
refusal, the key never printed).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from simtrust.cli import main
from simtrust.errors import InvalidInput, NotFound, Unavailable
from simtrust.market import CANCELLING, PartnerSeller, bearer, sign_request
from simtrust.runtime import Runtime

from .conftest import TmfCheck, char, order_body, service_spec
from .loopback import Node, until

SERVICE_ORDERING = "/tmf-api/serviceOrdering/v4"
SERVICE_INVENTORY = "/tmf-api/serviceInventory/v4"
PARTNER_KEY = "partner-secret-key-0123456789"


class ServiceSeller:
    """An independent TMF641 / TMF638 seller: official request checks, in-memory state."""

    def __init__(self, shared_dir: Path) -> None:
        folder = shared_dir / "specs" / "tmf"
        docs = {api: json.loads((folder / name).read_text(encoding="utf-8")) for api, name in (
            ("641", "TMF641-ServiceOrdering-v4.1.0.swagger.json"),
            ("638", "TMF638-ServiceInventory-v4.0.0.swagger.json"))}
        self.requests: list[tuple[str, str]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        outer = self

        def check(api: str, name: str, body: Any) -> str | None:
            validator = Draft4Validator({"$ref": f"#/definitions/{name}",
                                         "definitions": docs[api]["definitions"]})
            error = next(iter(validator.iter_errors(body)), None)
            return None if error is None else error.message

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, doc: Any = None) -> None:
                data = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, reason: str) -> None:
                self._answer(status, {"code": code, "reason": reason, "status": str(status)})

            def _body(self, api: str, name: str) -> dict[str, Any] | None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._error(400, "invalid-json", "the body is not JSON")
                    return None
                problem = check(api, name, body)
                if problem is not None:
                    self._error(400, "invalid-body", f"not a {name}: {problem}")
                    return None
                return dict(body)

            def _allowed(self) -> bool:
                outer.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {PARTNER_KEY}":
                    self._error(401, "unauthorized", "unknown key")
                    return False
                return True

            def do_POST(self) -> None:
                if not self._allowed():
                    return
                base = f"http://{self.headers['Host']}"
                if self.path == f"{SERVICE_ORDERING}/serviceOrder":
                    body = self._body("641", "ServiceOrder_Create")
                    if body is None:
                        return
                    order_id = str(uuid.uuid4())
                    doc = {**body, "id": order_id, "state": "acknowledged",
                           "href": f"{base}{SERVICE_ORDERING}/serviceOrder/{order_id}",
                           "orderDate": "2026-12-06T02:00:00Z"}
                    outer.orders[order_id] = doc
                    self._answer(201, doc)
                elif self.path == f"{SERVICE_ORDERING}/cancelServiceOrder":
                    body = self._body("641", "CancelServiceOrder_Create")
                    if body is None:
                        return
                    target = outer.orders.get(body["serviceOrder"]["id"])
                    if target is None:
                        self._error(404, "not-found", "no such serviceOrder")
                        return
                    target["state"] = "cancelled"
                    self._answer(201, {**body, "id": str(uuid.uuid4()), "state": "done"})
                elif self.path == f"{SERVICE_INVENTORY}/service":
                    body = self._body("638", "Service_Create")
                    if body is None:
                        return
                    service_id = str(uuid.uuid4())
                    doc = {**body, "id": service_id,
                           "href": f"{base}{SERVICE_INVENTORY}/service/{service_id}"}
                    outer.services[service_id] = doc
                    self._answer(201, doc)
                else:
                    self._error(404, "not-found", "no such resource")

            def do_GET(self) -> None:
                if not self._allowed():
                    return
                order = outer.orders.get(self.path.rsplit("/", 1)[-1])
                if order is None or not self.path.startswith(f"{SERVICE_ORDERING}/"):
                    self._error(404, "not-found", "no such serviceOrder")
                    return
                self._answer(200, order)

            def do_PATCH(self) -> None:
                if not self._allowed():
                    return
                service = outer.services.get(self.path.rsplit("/", 1)[-1])
                if service is None:
                    self._error(404, "not-found", "no such service")
                    return
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    self._error(415, "media-type", "a merge patch is expected")
                    return
                body = self._body("638", "Service_Update")
                if body is None:
                    return
                service.update(body)
                self._answer(200, service)

            def do_DELETE(self) -> None:
                if not self._allowed():
                    return
                if outer.services.pop(self.path.rsplit("/", 1)[-1], None) is None:
                    self._error(404, "not-found", "no such service")
                    return
                self._answer(204)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service_seller(shared_dir: Path) -> Iterator[ServiceSeller]:
    seller = ServiceSeller(shared_dir)
    yield seller
    seller.close()


@pytest.fixture
def simtrust_seller(tmp_path: Path) -> Iterator[Node]:
    node = Node(Runtime.ephemeral(tmp_path / "seller"))
    try:
        yield node
    finally:
        node.close()
        node.rt.close()


def _manual_offering(node: Node) -> str:
    """A launched offering nothing provisions for: its orders wait for the seller."""
    offering = node.client.post("/tmf-api/productCatalogManagement/v4/productOffering", json={
        "name": "Consulting", "lifecycleStatus": "Launched", "isSellable": True})
    assert 201 == offering.status_code, offering.text
    return str(offering.json()["id"])


def _settled(state: Callable[[], str]) -> str:
    """The order's state once its cancellation, accepted by the answer just received and
    carried out after it, is no longer being assessed (``CANCELLING``)."""
    seen: list[str] = []

    def final() -> bool:
        seen.append(state())
        return seen[-1] not in CANCELLING

    until(final)
    return seen[-1]


def test_product_orders_placed_and_cancelled_with_a_simtrust_seller(
        simtrust_seller: Node, tmf_check: TmfCheck) -> None:
    node = simtrust_seller
    offering = _manual_offering(node)
    node.rt.tenants.create_tenant("partner", "Partner operator")
    key = node.rt.tenants.create_key("tenant-admin", "buyer", tenant_id="partner").secret
    with httpx.Client(timeout=30) as client:
        seller = PartnerSeller(client, node.url, bearer(key))
        assert key not in repr(seller)
        order = seller.order_product(order_body(offering))
        tmf_check("622", "ProductOrder", order)
        assert "acknowledged" == order["state"]
        assert order == seller.product_order(order["id"])
        task = seller.cancel_product_order(order["id"], "no longer needed")
        tmf_check("622", "CancelProductOrder", task)
        assert order["id"] == task["productOrder"]["id"]
        # the task is carried out after the answer (a background task): wait for it to end
        assert "cancelled" == _settled(lambda: seller.product_order(order["id"])["state"])
        with pytest.raises(InvalidInput) as twice:
            seller.cancel_product_order(order["id"])
        assert "409" in twice.value.detail
        with pytest.raises(InvalidInput) as unknown:
            seller.order_product(order_body("no-such-offering"))
        assert "404" in unknown.value.detail
        assert key not in unknown.value.detail

        # v5: an open order is cancelled by DELETE (202), a final one removed by the seller
        fresh = seller.order_product(order_body(offering), v5=True)
        assert "ProductOrder" == fresh["@type"]
        assert 202 == seller.delete_product_order(fresh["id"], v5=True)
        assert "cancelled" == _settled(
            lambda: seller.product_order(fresh["id"], v5=True)["state"])
        with pytest.raises(InvalidInput) as buyer_delete:
            seller.delete_product_order(fresh["id"], v5=True)
        assert "403" in buyer_delete.value.detail
        operator = PartnerSeller(client, node.url, bearer(
            node.rt.tenants.create_key("operator-admin", "seller").secret))
        assert 204 == operator.delete_product_order(fresh["id"], v5=True)

        with pytest.raises(InvalidInput):
            seller.product_order("../catalog")
        dead = PartnerSeller(client, "http://127.0.0.1:9", bearer(key))
        with pytest.raises(Unavailable):
            dead.order_product(order_body(offering))


def test_a_did_signed_buyer_orders_from_a_simtrust_seller(
        simtrust_seller: Node, tmp_path: Path, tmf_check: TmfCheck) -> None:
    """No API key: the request carries an RFC 9421 signature by the buyer node's DID."""
    node = simtrust_seller
    offering = _manual_offering(node)
    buyer = Runtime.ephemeral(tmp_path / "buyer")
    buyer.ledger = node.rt.ledger  # the consortium ledger both resolve DIDs on
    try:
        signer = buyer.identity.issuer()
        with httpx.Client(timeout=30) as client:
            seller = PartnerSeller(client, node.url, lambda r: sign_request(r, signer))
            order = seller.order_product(order_body(offering))
            tmf_check("622", "ProductOrder", order)
            task = seller.cancel_product_order(order["id"])
            tmf_check("622", "CancelProductOrder", task)
        partner = node.rt.federation.partner(buyer.federation.did)
        assert [order["id"]] == [o.document["id"] for o in node.rt.market.list_orders(
            partner, False)]
    finally:
        buyer.close()


def test_service_orders_and_inventory_writes_with_a_partner_seller(
        service_seller: ServiceSeller, tmf_check: TmfCheck) -> None:
    with httpx.Client(timeout=30) as client:
        seller = PartnerSeller(client, service_seller.url, bearer(PARTNER_KEY))
        order = seller.order_service({"serviceOrderItem": [{
            "id": "1", "action": "add",
            "service": {"name": "IoT APN", "serviceSpecification": {"id": "apn-spec"}}}]})
        tmf_check("641", "ServiceOrder", order)
        assert order == seller.service_order(order["id"])
        task = seller.cancel_service_order(order["id"], "wrong APN")
        assert "cancelled" == seller.service_order(order["id"])["state"]
        assert order["id"] == task["serviceOrder"]["id"]

        made = seller.create_service({"name": "slice-1", "state": "active",
                                      "serviceSpecification": {"id": "slice-spec"}})
        tmf_check("638", "Service", made)
        patched = seller.patch_service(made["id"], {"state": "inactive"})
        tmf_check("638", "Service", patched)
        assert "inactive" == patched["state"]
        assert 204 == seller.delete_service(made["id"])
        with pytest.raises(InvalidInput) as gone:
            seller.delete_service(made["id"])
        assert "404 not-found" in gone.value.detail
        with pytest.raises(InvalidInput) as refused:  # the official schema wants an array
            seller.order_service({"serviceOrderItem": {"id": "1"}})
        assert "invalid-body" in refused.value.detail
        stranger = PartnerSeller(client, service_seller.url, bearer("wrong"))
        with pytest.raises(InvalidInput) as unauthorized:
            stranger.create_service({"name": "x", "state": "active",
                                     "serviceSpecification": {"id": "slice-spec"}})
        assert "401" in unauthorized.value.detail
    assert ("DELETE", f"{SERVICE_INVENTORY}/service/{made['id']}") in service_seller.requests


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_cli_buys_cancels_and_writes_services(
        simtrust_seller: Node, service_seller: ServiceSeller, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmf_check: TmfCheck) -> None:
    node = simtrust_seller
    offering = _manual_offering(node)
    node.rt.tenants.create_tenant("partner", "Partner operator")
    key = node.rt.tenants.create_key("tenant-admin", "buyer", tenant_id="partner").secret
    monkeypatch.setenv("SIMTRUST_PARTNER_KEY", key)
    body = tmp_path / "order.json"
    body.write_text(json.dumps(order_body(offering)))

    code, out, err = _run(["market", "buy", node.url, "-f", str(body), "--json"], capsys)
    assert 0 == code, err
    order = json.loads(out)
    tmf_check("622", "ProductOrder", order)
    code, out, _ = _run(["market", "purchase", node.url, order["id"]], capsys)
    assert (0, f"productOrder {order['id']} acknowledged") == (code, out.strip())
    code, out, _ = _run(["market", "cancel", node.url, order["id"], "--reason", "r",
                         "--json"], capsys)
    assert 0 == code
    tmf_check("622", "CancelProductOrder", json.loads(out))

    # the seller's refusal: one line, exit 2, the key nowhere
    code, out, err = _run(["market", "cancel", node.url, order["id"]], capsys)
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    assert "409" in err
    assert key not in err + out
    body.write_text("[1]")
    code, _, err = _run(["market", "buy", node.url, "-f", str(body)], capsys)
    assert 2 == code
    assert "JSON object" in err

    monkeypatch.setenv("SIMTRUST_PARTNER_KEY", PARTNER_KEY)
    service = tmp_path / "service.json"
    service.write_text(json.dumps({"name": "apn-1", "state": "active",
                                   "serviceSpecification": {"id": "apn-spec"}}))
    code, out, err = _run(["market", "service", service_seller.url, "create", "-f",
                           str(service), "--json"], capsys)
    assert 0 == code, err
    made = json.loads(out)
    tmf_check("638", "Service", made)
    code, out, _ = _run(["market", "service", service_seller.url, "delete", made["id"]], capsys)
    assert (0, f"service {made['id']} 204") == (code, out.strip())
    code, _, err = _run(["market", "service", service_seller.url, "delete", made["id"]],
                        capsys)
    assert 2 == code
    assert "404" in err
    code, _, err = _run(["market", "service", service_seller.url, "rename", "x"], capsys)
    assert 2 == code
    order_file = tmp_path / "so.json"
    order_file.write_text(json.dumps({"serviceOrderItem": [
        {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "apn-spec"}}}]}))
    code, out, err = _run(["market", "order-service", service_seller.url, "-f",
                           str(order_file), "--json"], capsys)
    assert 0 == code, err
    tmf_check("641", "ServiceOrder", json.loads(out))


def _apn_spec(node: Node) -> str:
    made = node.client.post("/tmf-api/serviceCatalogManagement/v4/serviceSpecification",
                            json=service_spec("PrivateApn", "Private APN",
                                              char("apnName", mandatory=True),
                                              char("addressPool", mandatory=True),
                                              char("radiusAuth", default="pap")))
    assert 201 == made.status_code, made.text
    return str(made.json()["id"])


def _apn_item(spec: str, name: str, pool: str) -> dict[str, Any]:
    return {"name": "IoT APN", "serviceSpecification": {"id": spec},
            "serviceCharacteristic": [{"name": "apnName", "value": name},
                                      {"name": "addressPool", "value": pool}]}


def test_service_orders_and_inventory_writes_with_a_simtrust_seller(
        simtrust_seller: Node, tmf_check: TmfCheck) -> None:
    """The buyer's TMF641 / TMF638 calls against simtrust itself: real provisioning."""
    node = simtrust_seller
    spec = _apn_spec(node)
    for tenant in ("partner", "other"):
        node.rt.tenants.create_tenant(tenant, tenant)
    key = node.rt.tenants.create_key("tenant-admin", "buyer", tenant_id="partner").secret
    other = node.rt.tenants.create_key("tenant-admin", "o", tenant_id="other").secret
    inventory = node.rt.subscriber.inventory
    inventory.allocations.set_addresses("partner", networks=["10.0.0.0/8"], actor="test")
    with httpx.Client(timeout=30) as client:
        seller = PartnerSeller(client, node.url, bearer(key))
        order = seller.order_service({"serviceOrderItem": [{
            "id": "1", "action": "add", "service": _apn_item(spec, "iot.one", "10.8.0.0/24")}]})
        tmf_check("641", "ServiceOrder", order)
        until(lambda: seller.service_order(order["id"])["state"] == "completed")
        done = seller.service_order(order["id"])
        tmf_check("641", "ServiceOrder", done)
        assert "iot.one" == inventory.get_apn("partner", "iot.one").name
        with pytest.raises(InvalidInput) as started:
            seller.cancel_service_order(order["id"], "too late")
        assert "409" in started.value.detail

        # unknown specification: 422, nothing written
        before = len(node.rt.market.list_service_orders(None, True))
        with pytest.raises(InvalidInput) as unknown:
            seller.order_service({"serviceOrderItem": [{
                "id": "1", "action": "add", "service": _apn_item("nope", "x.y", "10.9.0.0/24")}]})
        assert "422" in unknown.value.detail
        assert "unknown-specification" in unknown.value.detail
        assert before == len(node.rt.market.list_service_orders(None, True))
        with pytest.raises(InvalidInput) as malformed:
            seller.order_service({"serviceOrderItem": {"id": "1"}})
        assert "400" in malformed.value.detail

        # TMF638: create, modify, terminate by DELETE; another tenant sees nothing
        made = seller.create_service({**_apn_item(spec, "iot.two", "10.10.0.0/24"), "state": "active"})
        tmf_check("638", "Service", made)
        assert "active" == made["state"]
        patched = seller.patch_service(made["id"], {"serviceCharacteristic": [
            {"name": "radiusAuth", "value": "chap"}]})
        tmf_check("638", "Service", patched)
        assert {"name": "radiusAuth", "value": "chap"} in patched["serviceCharacteristic"]
        stranger = PartnerSeller(client, node.url, bearer(other))
        for call in (lambda: stranger.delete_service(made["id"]),
                     lambda: stranger.patch_service(made["id"], {"name": "x"})):
            with pytest.raises(InvalidInput) as hidden:
                call()
            assert "404" in hidden.value.detail
        assert 204 == seller.delete_service(made["id"])
        with pytest.raises(NotFound):
            inventory.get_apn("partner", "iot.two")
        with pytest.raises(InvalidInput) as gone:
            seller.delete_service(made["id"])
        assert "404" in gone.value.detail


def test_an_acknowledged_service_order_is_cancelled_before_it_runs(
        simtrust_seller: Node, tmf_check: TmfCheck) -> None:
    """Orders placed but not yet run (created here without their background run)."""
    node = simtrust_seller
    spec = _apn_spec(node)
    node.rt.tenants.create_tenant("partner", "Partner")
    node.rt.subscriber.inventory.allocations.set_addresses("partner", networks=["10.0.0.0/8"],
                                                           actor="test")
    key = node.rt.tenants.create_key("tenant-admin", "buyer", tenant_id="partner").secret
    services = node.rt.market.client_services

    def placed(name: str) -> str:
        order = services.create_order("partner", {"serviceOrderItem": [{
            "id": "1", "action": "add",
            "service": _apn_item(spec, name, "10.11.0.0/24")}]}, "test")
        assert "acknowledged" == order.document["state"]
        return str(order.document["id"])

    first, second = placed("iot.c"), placed("iot.d")
    with httpx.Client(timeout=30) as client:
        seller = PartnerSeller(client, node.url, bearer(key))
        task = seller.cancel_service_order(first, "wrong APN")
        tmf_check("641", "CancelServiceOrder", task)
        assert first == task["serviceOrder"]["id"]
        cancelled = seller.service_order(first)
        tmf_check("641", "ServiceOrder", cancelled)
        assert ("cancelled", "wrong APN") == (cancelled["state"],
                                              cancelled["cancellationReason"])
        # PATCH (merge patch): descriptive members, and ``state: cancelled``
        answer = client.patch(f"{node.url}{SERVICE_ORDERING}/serviceOrder/{second}",
                              content=json.dumps({"description": "later", "state": "cancelled"}),
                              headers={"Authorization": f"Bearer {key}",
                                       "Content-Type": "application/merge-patch+json"})
        assert 200 == answer.status_code, answer.text
        tmf_check("641", "ServiceOrder", answer.json())
        assert ("cancelled", "later") == (answer.json()["state"], answer.json()["description"])
        refused = client.patch(f"{node.url}{SERVICE_ORDERING}/serviceOrder/{second}",
                               content=json.dumps({"state": "completed"}),
                               headers={"Authorization": f"Bearer {key}",
                                        "Content-Type": "application/merge-patch+json"})
        assert 409 == refused.status_code, refused.text
    assert "cancelled" == services.process(first)
    assert "cancelled" == services.process(second)
    with pytest.raises(NotFound):
        node.rt.subscriber.inventory.get_apn("partner", "iot.c")
