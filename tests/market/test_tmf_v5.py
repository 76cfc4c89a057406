"""TMF622 v5 under ``/tmf-api/productOrderingManagement/v5``, checked against the official
``TMF622-ProductOrdering-v5.0.0.oas.yaml`` (its ``components.schemas``, refs resolved within
the file): v5 orders, and orders placed through v4, read in the v5 model; the v5 hub and
its events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from simtrust.runtime import Runtime

from .conftest import LOOPBACK, ORDERING, Listener, add_stock, char, publish, service_spec

V5 = "/tmf-api/productOrderingManagement/v5"


@pytest.fixture(scope="module")
def v5(shared_dir: Path) -> Any:
    doc = yaml.safe_load((shared_dir / "specs" / "tmf" / "TMF622-ProductOrdering-v5.0.0.oas.yaml")
                         .read_text(encoding="utf-8"))
    cache: dict[str, Draft7Validator] = {}

    def check(name: str, body: Any) -> None:
        if name not in cache:
            cache[name] = Draft7Validator({"$ref": f"#/components/schemas/{name}",
                                           "components": doc["components"]},
                                          format_checker=Draft7Validator.FORMAT_CHECKER)
        for element in body if isinstance(body, list) else [body]:
            errors = sorted(cache[name].iter_errors(element), key=str)
            assert not errors, (name, [e.message for e in errors[:3]])

    return check


def test_v5_orders(api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
                   v5: Any) -> None:
    rt = sqlite_runtime
    rt.tenants.create_tenant("acme", "Acme")
    key = rt.tenants.create_key("tenant-admin", "admin", tenant_id="acme")
    acme = {"Authorization": f"Bearer {key.secret}"}
    add_stock(rt, 2)
    offering = publish(api, operator_headers, "SIMs on an APN", [
        service_spec("SimBatch", "SIMs", char("stockTenant", default="stock",
                                              configurable=False), char("apnName"))])
    rt.subscriber.inventory.create_apn("acme", "acme.iot", actor="t", pool="10.1.0.0/24")
    body = {"@type": "ProductOrder", "description": "two SIMs", "productOrderItem": [{
        "@type": "ProductOrderItem", "id": "1", "action": "add", "quantity": 2,
        "productOffering": {"@type": "ProductOfferingRef", "id": offering["id"]},
        "product": {"@type": "Product", "productCharacteristic": [
            {"@type": "StringCharacteristic", "name": "apnName", "value": "acme.iot"}]}}]}
    made = api.post(f"{V5}/productOrder", json=body, headers=acme)
    assert 201 == made.status_code, made.text
    v5("ProductOrder", made.json())
    assert made.headers["location"] == made.json()["href"]
    done = api.get(f"{V5}/productOrder/{made.json()['id']}", headers=acme)
    v5("ProductOrder", done.json())
    assert "completed" == done.json()["state"]
    assert ["acme.iot", "acme.iot"] == [s.apn for s in rt.subscriber.inventory.list_sims("acme")]

    # An order placed through v4 reads in the v5 model too.
    v4 = api.post(f"{ORDERING}/productOrder", json={"productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": offering["id"]}}]}, headers=acme)
    assert 201 == v4.status_code, v4.text
    listed = api.get(f"{V5}/productOrder", headers=acme)
    v5("ProductOrder", listed.json())
    assert ["2", "2"] == [listed.headers["x-total-count"], listed.headers["x-result-count"]]
    missing = api.get(f"{V5}/productOrder/nothing", headers=acme)
    assert 404 == missing.status_code
    v5("Error", missing.json())
    refused = api.post(f"{V5}/productOrder", json={**body, "requestedInitialState": "held"},
                       headers=acme)
    assert 400 == refused.status_code
    v5("Error", refused.json())


def test_v5_patch_and_cancel(api: Any, sqlite_runtime: Runtime, v5: Any) -> None:
    """PATCH (merge patch) and CancelProductOrder under v5, validated by the v5 file."""
    rt = sqlite_runtime
    rt.tenants.create_tenant("acme", "Acme")
    key = rt.tenants.create_key("tenant-admin", "admin", tenant_id="acme")
    acme = {"Authorization": f"Bearer {key.secret}"}
    # An offering without service specifications: the order waits in acknowledged.
    offering = rt.market.create_item("productOffering", None,
                                     {"name": "Consulting", "lifecycleStatus": "Launched"},
                                     "t").document
    made = api.post(f"{V5}/productOrder", json={"@type": "ProductOrder", "productOrderItem": [{
        "@type": "ProductOrderItem", "id": "1", "action": "add",
        "productOffering": {"@type": "ProductOfferingRef", "id": offering["id"]}}]},
        headers=acme)
    assert 201 == made.status_code, made.text
    order_id = made.json()["id"]
    patched = api.patch(f"{V5}/productOrder/{order_id}",
                        content=b'{"@type": "ProductOrder", "description": "urgent"}',
                        headers={**acme, "Content-Type": "application/merge-patch+json"})
    assert 200 == patched.status_code, patched.text
    v5("ProductOrder", patched.json())
    assert "urgent" == patched.json()["description"]
    # A tenant does not set the state (the seller does): refused with a v5 Error.
    state = api.patch(f"{V5}/productOrder/{order_id}", content=b'{"state": "completed"}',
                      headers={**acme, "Content-Type": "application/merge-patch+json"})
    assert state.status_code in (400, 403, 409), state.text
    v5("Error", state.json())

    cancel = api.post(f"{V5}/cancelProductOrder", json={
        "@type": "CancelProductOrder", "cancellationReason": "no longer needed",
        "productOrder": {"@type": "ProductOrderRef", "id": order_id}}, headers=acme)
    assert 201 == cancel.status_code, cancel.text
    v5("CancelProductOrder", cancel.json())
    assert cancel.headers["location"] == cancel.json()["href"]
    listed = api.get(f"{V5}/cancelProductOrder", headers=acme)
    v5("CancelProductOrder", listed.json())
    assert [cancel.json()["id"]] == [t["id"] for t in listed.json()]
    one = api.get(f"{V5}/cancelProductOrder/{cancel.json()['id']}", headers=acme)
    v5("CancelProductOrder", one.json())
    after = api.get(f"{V5}/productOrder/{order_id}", headers=acme)
    v5("ProductOrder", after.json())
    assert "cancelled" == after.json()["state"]
    # A cancelled order cannot be cancelled again; another tenant's order is not found.
    again = api.post(f"{V5}/cancelProductOrder", json={
        "productOrder": {"id": order_id}}, headers=acme)
    assert 409 == again.status_code
    v5("Error", again.json())
    rt.tenants.create_tenant("other", "Other")
    other = rt.tenants.create_key("tenant-admin", "o", tenant_id="other")
    hidden = api.post(f"{V5}/cancelProductOrder", json={"productOrder": {"id": order_id}},
                      headers={"Authorization": f"Bearer {other.secret}"})
    assert 404 == hidden.status_code
    v5("Error", hidden.json())


def test_v5_hub_hears_orders_in_the_v5_model(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str], v5: Any,
        listener: Listener) -> None:
    """POST /hub (Hub_FVO → Hub), events in the v5 model (@type everywhere), DELETE /hub/{id}."""
    rt = sqlite_runtime
    rt.market_events.retry_base = 0.01
    rt.market_events.allowed_networks = LOOPBACK
    rt.tenants.create_tenant("acme", "Acme")
    key = rt.tenants.create_key("tenant-admin", "admin", tenant_id="acme")
    acme = {"Authorization": f"Bearer {key.secret}"}
    hub = api.post(f"{V5}/hub", json={"@type": "Hub", "callback": listener.url,
                                      "query": "eventType=ProductOrderStateChangeEvent"},
                   headers=acme)
    assert 201 == hub.status_code, hub.text
    v5("Hub", hub.json())
    assert hub.headers["location"].endswith(f"{V5}/hub/{hub.json()['id']}")
    refused = api.post(f"{V5}/hub", json={"callback": "http://10.0.0.1/x"}, headers=acme)
    assert 400 == refused.status_code
    v5("Error", refused.json())
    offering = rt.market.create_item("productOffering", None,
                                     {"name": "Consulting", "lifecycleStatus": "Launched"},
                                     "t").document
    # Placed through v4, cancelled: the v5 listener hears the state change in v5.
    made = api.post(f"{ORDERING}/productOrder", json={"productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": offering["id"]}}]}, headers=acme)
    assert 201 == made.status_code, made.text
    cancel = api.post(f"{V5}/cancelProductOrder", json={"productOrder": {"id": made.json()["id"]}},
                      headers=acme)
    assert 201 == cancel.status_code, cancel.text
    event = listener.wait_for(lambda e: e["event"]["productOrder"]["state"] == "cancelled")
    v5("ProductOrderStateChangeEvent", event)
    assert "ProductOrderStateChangeEvent" == event["@type"]
    order = event["event"]["productOrder"]
    assert ("ProductOrder", f"{V5}/productOrder/{made.json()['id']}") == (
        order["@type"], order["href"][-len(f"{V5}/productOrder/{made.json()['id']}"):])
    assert ["ProductOrderItem"] == [i["@type"] for i in order["productOrderItem"]]
    # Another tenant cannot remove it; the owner can, once.
    rt.tenants.create_tenant("other", "Other")
    other = rt.tenants.create_key("tenant-admin", "o", tenant_id="other")
    url = f"{V5}/hub/{hub.json()['id']}"
    assert 404 == api.delete(url, headers={"Authorization": f"Bearer {other.secret}"}).status_code
    assert 204 == api.delete(url, headers=acme).status_code
    gone = api.delete(url, headers=acme)
    assert 404 == gone.status_code
    v5("Error", gone.json())
    assert not rt.db.query("SELECT id FROM market_hubs")
