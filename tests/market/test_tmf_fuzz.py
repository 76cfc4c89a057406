"""Property run over the TMF622/TMF620/TMF633 write operations and the hubs: arbitrary JSON
bodies never make a server error or an undocumented status, and every error is the TMF Error
model; orders with arbitrary characteristics on an offering that provisions end completed,
failed with nothing left behind, or refused."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.runtime import Runtime

CATALOG = "/tmf-api/productCatalogManagement/v4"
ORDERING = "/tmf-api/productOrderingManagement/v4"
SERVICE_CATALOG = "/tmf-api/serviceCatalogManagement/v4"
SERVICE_ORDERING = "/tmf-api/serviceOrdering/v4"
SERVICE_INVENTORY = "/tmf-api/serviceInventory/v4"

_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_keys = st.sampled_from(["name", "lifecycleStatus", "validFor", "isSellable", "productOrderItem",
                         "productOffering", "id", "action", "quantity", "state", "note",
                         "startDateTime", "endDateTime", "requestedStartDate", "productOrder",
                         "cancellationReason"])
#: Bodies shaped like TMF documents (known member names, arbitrary values and nesting).
_shaped = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) |
                       st.dictionaries(_keys, inner, max_size=5), max_leaves=16)
_OPERATIONS = st.sampled_from([
    ("POST", f"{CATALOG}/productOffering"), ("POST", f"{ORDERING}/productOrder"),
    ("POST", f"{ORDERING}/cancelProductOrder"), ("PATCH", f"{CATALOG}/productOffering/{{o}}"),
    ("PATCH", f"{ORDERING}/productOrder/{{p}}"), ("POST", f"{SERVICE_CATALOG}/serviceSpecification"),
    ("POST", f"{ORDERING}/hub"), ("POST", f"{SERVICE_ORDERING}/hub")])


#: Per runtime: an orderable offering, an acme order on it, an acme admin key.
_WORLDS: dict[int, tuple[str, str, str]] = {}


def _world(rt: Runtime) -> tuple[str, str, str]:
    if id(rt) not in _WORLDS:
        _WORLDS.clear()
        rt.tenants.create_tenant("acme", "Acme")
        offering = rt.market.create_item("productOffering", None,
                                         {"name": "IoT", "lifecycleStatus": "Launched"}, "t")
        order = rt.market.create_order("acme", {"productOrderItem": [
            {"id": "1", "action": "add", "productOffering": {"id": offering.document["id"]}}]},
            "t")
        key = rt.tenants.create_key("tenant-admin", "a", tenant_id="acme")
        _WORLDS[id(rt)] = (offering.document["id"], order.document["id"], key.secret)
    return _WORLDS[id(rt)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(operation=_OPERATIONS, body=_json | _shaped, as_tenant=st.booleans())
def test_arbitrary_bodies_answer_documented_statuses(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        operation: tuple[str, str], body: Any, as_tenant: bool) -> None:
    world = _world(sqlite_runtime)
    offering_id, order_id, secret = world
    headers = {"Authorization": f"Bearer {secret}"} if as_tenant else operator_headers
    method, path = operation
    url = path.format(o=offering_id, p=order_id)
    response = api.request(method, url, json=body, headers=headers)
    doc = api.get("/openapi.json").json()
    declared = doc["paths"][path.replace("{o}", "{id}").replace("{p}", "{id}")][method.lower()]
    assert str(response.status_code) in declared["responses"], (response.status_code,
                                                                 response.text)
    if response.status_code >= 400:
        error = response.json()
        assert {"code", "reason", "message", "status"} <= set(error), error
        assert response.status_code < 500


_values = _scalars | st.lists(_scalars, max_size=2) | st.dictionaries(
    st.text(max_size=6), _scalars, max_size=2) | st.sampled_from(
    ["acme.iot", "10.8.0.0/24", "10.8.0.0/33", "pap", "fleet", "stock"])
_chars = st.dictionaries(st.sampled_from(["apnName", "addressPool", "radiusAuth", "caLabel",
                                          "stockTenant", "quantity", "other"]),
                         _values, max_size=4)
_PROVISIONING: dict[int, str] = {}


def _provisioning(rt: Runtime) -> str:
    if id(rt) not in _PROVISIONING:
        _PROVISIONING.clear()
        market = rt.market
        refs = [{"id": market.create_item("serviceSpecification", None, body, "t")
                 .document["id"]} for body in (
            {"name": "CA", "targetEntitySchema": {"@type": "TenantCa"},
             "specCharacteristic": [{"name": "caLabel", "minCardinality": 1}]},
            {"name": "APN", "targetEntitySchema": {"@type": "PrivateApn"},
             "specCharacteristic": [{"name": "apnName", "minCardinality": 1},
                                    {"name": "addressPool", "minCardinality": 1},
                                    {"name": "radiusAuth"}]},
            {"name": "SIMs", "targetEntitySchema": {"@type": "SimBatch"},
             "specCharacteristic": [{"name": "stockTenant", "configurable": False,
                                     "characteristicValueSpecification": [
                                         {"value": "stock", "isDefault": True}]}]})]
        product = market.create_item("productSpecification", None,
                                     {"name": "p", "serviceSpecification": refs}, "t")
        offering = market.create_item("productOffering", None, {
            "name": "APN", "lifecycleStatus": "Launched",
            "productSpecification": {"id": product.document["id"]}}, "t")
        _PROVISIONING[id(rt)] = offering.document["id"]
    return _PROVISIONING[id(rt)]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chars=_chars, quantity=st.integers(0, 3))
def test_orders_that_provision_never_stop_half_way(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        chars: dict[str, Any], quantity: int) -> None:
    rt = sqlite_runtime
    _, _, secret = _world(rt)
    offering = _provisioning(rt)
    body = {"productOrderItem": [{
        "id": "1", "action": "add", "quantity": quantity, "productOffering": {"id": offering},
        "product": {"productCharacteristic": [{"name": k, "value": v}
                                              for k, v in chars.items()]}}]}
    before = len(rt.subscriber.inventory.list_apns("acme"))
    response = api.post(f"{ORDERING}/productOrder", json=body,
                        headers={"Authorization": f"Bearer {secret}"})
    declared = api.get("/openapi.json").json()["paths"][f"{ORDERING}/productOrder"]["post"]
    assert str(response.status_code) in declared["responses"], response.text
    assert response.status_code < 500
    apns = len(rt.subscriber.inventory.list_apns("acme"))
    if response.status_code != 201:
        assert before == apns
        return
    state = rt.market.get_order(response.json()["id"]).state
    assert state in ("completed", "failed"), state
    # no stock: every order fails at its SIM step, and its APN and CA are undone
    assert "failed" == state
    assert before == apns
    assert [] == rt.bootstrap.cas.cas("acme")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chars=_chars, which=st.integers(0, 3), inventory=st.booleans())
def test_client_service_writes_never_stop_half_way(
        api: Any, sqlite_runtime: Runtime, chars: dict[str, Any], which: int,
        inventory: bool) -> None:
    """TMF641 ``POST serviceOrder`` and TMF638 ``POST service`` with arbitrary values."""
    rt = sqlite_runtime
    _, _, secret = _world(rt)
    _provisioning(rt)
    specs = [s.document["id"] for s in rt.market.list_items("serviceSpecification", None, True)]
    service = {"state": "active", "serviceSpecification": {"id": [*specs, "unknown"][which]},
               "serviceCharacteristic": [{"name": k, "value": v} for k, v in chars.items()]}
    path = (f"{SERVICE_INVENTORY}/service" if inventory
            else f"{SERVICE_ORDERING}/serviceOrder")
    body = service if inventory else {"serviceOrderItem": [
        {"id": "1", "action": "add", "service": service}]}
    written = (len(rt.market.list_service_orders("acme", False)),
               len(rt.market.list_services("acme", False)))
    apns = len(rt.subscriber.inventory.list_apns("acme"))
    response = api.post(path, json=body, headers={"Authorization": f"Bearer {secret}"})
    declared = api.get("/openapi.json").json()["paths"][path]["post"]
    assert str(response.status_code) in declared["responses"], response.text
    assert response.status_code < 500
    if response.status_code != 201:
        assert written == (len(rt.market.list_service_orders("acme", False)),
                           len(rt.market.list_services("acme", False)))
        assert apns == len(rt.subscriber.inventory.list_apns("acme"))
        return
    if not inventory:  # run in the background: done when the answer arrived
        state = rt.market.get_service_order(response.json()["id"]).document["state"]
        assert state in ("completed", "failed"), state
        if state == "failed":
            assert apns == len(rt.subscriber.inventory.list_apns("acme"))
