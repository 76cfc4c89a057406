"""TMF620 catalog and TMF622 ordering over HTTP, checked against the official swagger files.

Every response body is validated with jsonschema against the ``definitions``
of ``TMF620-ProductCatalog-v4.1.0.swagger.json`` and
``TMF622-ProductOrdering-v4.0.0.swagger.json`` (``$ref``s resolved within
each file), errors against their ``Error`` definition; the products completed
orders create against ``TMF637-ProductInventory-v4.0.0.swagger.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from simtrust.runtime import Runtime

CATALOG = "/tmf-api/productCatalogManagement/v4"
ORDERING = "/tmf-api/productOrderingManagement/v4"
INVENTORY = "/tmf-api/productInventory/v4"
Check = Callable[[str, str, Any], None]


@pytest.fixture(scope="module")
def swagger(shared_dir: Path) -> dict[str, dict[str, Any]]:
    folder = shared_dir / "specs" / "tmf"
    return {name: json.loads(Path(folder, file).read_text(encoding="utf-8"))
            for name, file in (("620", "TMF620-ProductCatalog-v4.1.0.swagger.json"),
                               ("622", "TMF622-ProductOrdering-v4.0.0.swagger.json"),
                               ("637", "TMF637-ProductInventory-v4.0.0.swagger.json"))}


@pytest.fixture(scope="module")
def check(swagger: dict[str, dict[str, Any]]) -> Check:
    """check(api, definition, body): body (or each element of a list) validates."""
    cache: dict[tuple[str, str], Draft4Validator] = {}

    def run(api: str, definition: str, body: Any) -> None:
        key = (api, definition)
        if key not in cache:
            doc = swagger[api]
            assert definition in doc["definitions"], definition
            schema = {"$ref": f"#/definitions/{definition}", "definitions": doc["definitions"]}
            cache[key] = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        for element in body if isinstance(body, list) else [body]:
            errors = sorted(cache[key].iter_errors(element), key=str)
            assert not errors, (definition, [e.message for e in errors[:3]])

    return run


@pytest.fixture
def keys(sqlite_runtime: Runtime, operator_headers: dict[str, str]) -> dict[str, dict[str, str]]:
    out = {"operator": operator_headers}
    for tenant in ("acme", "globex"):
        sqlite_runtime.tenants.create_tenant(tenant, tenant.title())
        admin = sqlite_runtime.tenants.create_key("tenant-admin", "admin", tenant_id=tenant)
        out[tenant] = {"Authorization": f"Bearer {admin.secret}"}
    viewer = sqlite_runtime.tenants.create_key("tenant-viewer", "viewer", tenant_id="acme")
    out["viewer"] = {"Authorization": f"Bearer {viewer.secret}"}
    return out


def _offering(api: Any, check: Check, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"name": "IoT connectivity 1 GB EU", "lifecycleStatus": "Launched",
            "isSellable": True, **extra}
    response = api.post(f"{CATALOG}/productOffering", json=body, headers=headers)
    assert 201 == response.status_code, response.text
    doc: dict[str, Any] = response.json()
    check("620", "ProductOffering", doc)
    assert response.headers["location"] == doc["href"]
    return doc


def _order(offering_id: str, **extra: Any) -> dict[str, Any]:
    return {"description": "connectivity for 100 meters", **extra, "productOrderItem": [
        {"id": "1", "action": "add", "quantity": 100,
         "productOffering": {"id": offering_id}}]}


def _error(check: Check, response: Any, status: int, api: str = "622") -> dict[str, Any]:
    assert status == response.status_code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    check(api, "Error", body)
    assert body["status"] == str(status)
    return body


def test_catalog_crud_query_and_patch(api: Any, keys: dict[str, dict[str, str]],
                                      check: Check) -> None:
    op = keys["operator"]
    start = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    spec = api.post(f"{CATALOG}/productSpecification", json={"name": "IoT connectivity"},
                    headers=op).json()["id"]
    first = _offering(api, check, op, validFor={"startDateTime": start},
                      productSpecification={"id": spec, "name": "IoT connectivity"})
    second = _offering(api, check, op, name="Private APN", lifecycleStatus="In design")
    assert first["@type"] == "ProductOffering"
    assert first["href"].endswith(first["id"])

    listed = api.get(f"{CATALOG}/productOffering", headers=keys["acme"])
    assert 200 == listed.status_code
    check("620", "ProductOffering", listed.json())
    assert ["2", "2"] == [listed.headers["x-total-count"], listed.headers["x-result-count"]]

    page = api.get(f"{CATALOG}/productOffering?offset=1&limit=1&fields=name",
                   headers=op)
    assert ["2", "1"] == [page.headers["x-total-count"], page.headers["x-result-count"]]
    assert [{"id", "href", "@type", "name"}] == [set(d) for d in page.json()]
    assert second["id"] == page.json()[0]["id"]

    found = api.get(f"{CATALOG}/productOffering?lifecycleStatus=Launched,Active"
                    f"&productSpecification.id={spec}", headers=op).json()
    assert [first["id"]] == [d["id"] for d in found]
    assert [] == api.get(f"{CATALOG}/productOffering?name=nothing", headers=op).json()

    one = api.get(f"{CATALOG}/productOffering/{first['id']}?fields=lifecycleStatus",
                  headers=keys["globex"])
    assert {"id", "href", "@type", "lifecycleStatus"} == set(one.json())

    patched = api.patch(f"{CATALOG}/productOffering/{second['id']}",
                        content=json.dumps({"lifecycleStatus": "Launched", "description": None,
                                            "version": "2"}),
                        headers={**op, "Content-Type": "application/merge-patch+json"})
    assert 200 == patched.status_code, patched.text
    check("620", "ProductOffering", patched.json())
    assert ("Launched", "2") == (patched.json()["lifecycleStatus"], patched.json()["version"])

    spec = api.post(f"{CATALOG}/productSpecification", json={"name": "IoT connectivity"},
                    headers=op)
    check("620", "ProductSpecification", spec.json())
    price = api.post(f"{CATALOG}/productOfferingPrice",
                     json={"name": "monthly", "priceType": "recurring",
                           "price": {"unit": "EUR", "value": 4.5}}, headers=op)
    assert 201 == price.status_code, price.text
    check("620", "ProductOfferingPrice", price.json())

    assert 204 == api.delete(f"{CATALOG}/productOffering/{second['id']}", headers=op).status_code
    _error(check, api.get(f"{CATALOG}/productOffering/{second['id']}", headers=op), 404, "620")


def test_catalog_bad_input_and_tenant_reach(api: Any, keys: dict[str, dict[str, str]],
                                            check: Check, sqlite_runtime: Runtime) -> None:
    op, url = keys["operator"], f"{CATALOG}/productOffering"
    before = api.get(url, headers=op).json()
    for body in ({}, {"name": ""}, {"name": 3}, {"name": "x", "isSellable": "yes"},
                 {"name": "x", "validFor": {"startDateTime": "yesterday"}},
                 {"name": "x", "validFor": {"startDateTime": "2030-01-01T00:00:00Z",
                                            "endDateTime": "2029-01-01T00:00:00Z"}},
                 {"name": "x", "id": "chosen"}):
        _error(check, api.post(url, json=body, headers=op), 400, "620")
    _error(check, api.post(url, content=b"{nope", headers={**op,
           "Content-Type": "application/json"}), 400, "620")
    _error(check, api.post(url, json=[1], headers=op), 422, "620")
    _error(check, api.post(url, json={"name": "x"}), 401, "620")
    _error(check, api.post(url, json={"name": "x"}, headers=keys["viewer"]), 403, "620")
    _error(check, api.get(f"{url}?limit=0", headers=op), 422, "620")
    assert before == api.get(url, headers=op).json()

    public = _offering(api, check, op)
    private = _offering(api, check, keys["acme"], name="Acme resale bundle")
    _error(check, api.patch(f"{url}/{public['id']}", json={"name": "y"},
                            headers=keys["acme"]), 403, "620")
    _error(check, api.patch(f"{url}/{public['id']}", json={"id": "y"}, headers=op), 400, "620")
    for who in ("globex", "viewer"):
        visible = {d["id"] for d in api.get(url, headers=keys[who]).json()}
        assert (public["id"] in visible, private["id"] in visible) == (True, who == "viewer")
    _error(check, api.get(f"{url}/{private['id']}", headers=keys["globex"]), 404, "620")
    _error(check, api.delete(f"{url}/{private['id']}", headers=keys["globex"]), 404, "620")
    assert 200 == api.get(f"{url}/{private['id']}", headers=op).status_code


def test_order_life_cycle(api: Any, keys: dict[str, dict[str, str]], check: Check) -> None:
    offering = _offering(api, check, keys["operator"])
    created = api.post(f"{ORDERING}/productOrder", json=_order(offering["id"]),
                       headers=keys["acme"])
    assert 201 == created.status_code, created.text
    order = created.json()
    check("622", "ProductOrder", order)
    assert "acknowledged" == order["state"] == order["productOrderItem"][0]["state"]
    assert offering["href"] == order["productOrderItem"][0]["productOffering"]["href"]
    url = order["href"].split("testserver", 1)[1]

    # The buyer may edit its notes, never the state.
    _error(check, api.patch(url, json={"state": "completed"}, headers=keys["acme"]), 409)
    noted = api.patch(url, json={"note": [{"text": "deliver to Lyon"}]}, headers=keys["acme"])
    assert 200 == noted.status_code, noted.text
    check("622", "ProductOrder", noted.json())

    op = keys["operator"]
    _error(check, api.patch(url, json={"state": "completed"}, headers=op), 409)
    _error(check, api.patch(url, json={"state": "teleported"}, headers=op), 400)
    _error(check, api.patch(url, json={"orderDate": "2020-01-01T00:00:00Z"}, headers=op), 400)
    for state in ("inProgress", "held", "inProgress", "completed"):
        moved = api.patch(url, json={"state": state}, headers=op)
        assert 200 == moved.status_code, moved.text
        check("622", "ProductOrder", moved.json())
    done = api.get(url, headers=keys["acme"]).json()
    check("622", "ProductOrder", done)
    assert ("completed", "completed") == (done["state"], done["productOrderItem"][0]["state"])
    assert "completionDate" in done
    _error(check, api.patch(url, json={"state": "inProgress"}, headers=op), 409)

    inventory = f"{INVENTORY}/product"
    products = api.get(inventory, headers=keys["acme"])
    check("637", "Product", products.json())
    assert ("1", "active", 100) == (products.headers["x-total-count"], products.json()[0]["status"],
                                    products.json()[0]["productCharacteristic"][0]["value"])
    product = products.json()[0]
    assert (order["id"], offering["id"]) == (product["productOrderItem"][0]["productOrderId"],
                                             product["productOffering"]["id"])
    check("637", "Product", api.get(f"{inventory}/{product['id']}", headers=op).json())
    assert [] == api.get(inventory, headers=keys["globex"]).json()
    _error(check, api.get(f"{inventory}/{product['id']}", headers=keys["globex"]), 404, "637")

    full = api.get(f"{ORDERING}/productOrder?productOrderItem.state=completed",
                   headers=keys["acme"])
    check("622", "ProductOrder", full.json())
    assert [order["id"]] == [d["id"] for d in full.json()]
    listed = api.get(f"{ORDERING}/productOrder?state=completed&fields=state",
                     headers=keys["acme"])
    assert ("1", [{"id", "href", "@type", "state"}]) == (
        listed.headers["x-total-count"], [set(d) for d in listed.json()])


def test_order_refused_writes_nothing(api: Any, keys: dict[str, dict[str, str]],
                                      check: Check) -> None:
    op, acme = keys["operator"], keys["acme"]
    past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    ended = _offering(api, check, op, validFor={"startDateTime": past, "endDateTime": past})
    retired = _offering(api, check, op, lifecycleStatus="Retired")
    unsold = _offering(api, check, op, isSellable=False)
    private = _offering(api, check, keys["globex"], name="Globex only")
    url = f"{ORDERING}/productOrder"
    cases: list[tuple[Any, int]] = [
        ({}, 400), ({"productOrderItem": []}, 400), ({"productOrderItem": [1]}, 400),
        ({"productOrderItem": [{"id": "1", "action": "add"}]}, 400),
        ({"productOrderItem": [{"id": "1", "action": "buy", "productOffering": {"id": "x"}}]},
         400),
        (_order(ended["id"], state="completed"), 400),
        (_order(ended["id"], requestedStartDate="soon"), 400),
        (_order("no-such-offering"), 404), (_order(private["id"]), 404),
        (_order(ended["id"]), 422), (_order(retired["id"]), 422), (_order(unsold["id"]), 422),
        ({"productOrderItem": [{"id": "1", "action": "delete", "product": {"id": "p"}}]}, 404),
        ({"productOrderItem": [{"id": "1", "action": "noChange", "product": {"id": "p"}}]},
         422),
        ([], 422),
    ]
    for body, status in cases:
        error = _error(check, api.post(url, json=body, headers=acme), status)
        assert error["message"]
    rejected = _error(check, api.post(url, json=_order(retired["id"]), headers=acme), 422)
    assert "not-orderable" == rejected["code"]
    _error(check, api.post(url, json=_order(retired["id"]), headers=keys["viewer"]), 403)
    assert "0" == api.get(url, headers=op).headers["x-total-count"]


def test_order_prices_must_be_the_offerings_and_valid(
        api: Any, keys: dict[str, dict[str, str]], check: Check) -> None:
    """An itemPrice's productOfferingPrice: exists in reach, is the offering's, is valid now."""
    op, acme = keys["operator"], keys["acme"]
    past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    def price(headers: dict[str, str], **extra: Any) -> str:
        made = api.post(f"{CATALOG}/productOfferingPrice", json={
            "name": "monthly", "priceType": "recurring", "lifecycleStatus": "Active",
            "price": {"unit": "EUR", "value": 4.5}, **extra}, headers=headers)
        assert 201 == made.status_code, made.text
        return str(made.json()["id"])

    current, expired = price(op), price(op, validFor={"endDateTime": past})
    later, retired = price(op, validFor={"startDateTime": future}), price(
        op, lifecycleStatus="Retired")
    other, private = price(op), price(keys["globex"])
    offering = _offering(api, check, op, productOfferingPrice=[
        {"id": p} for p in (current, expired, later, retired)])

    def order(price_id: str) -> dict[str, Any]:
        body = _order(offering["id"])
        body["productOrderItem"][0]["itemPrice"] = [
            {"priceType": "recurring", "productOfferingPrice": {"id": price_id}}]
        return body

    url = f"{ORDERING}/productOrder"
    for price_id, status, code in ((expired, 422, "expired-price"),
                                   (retired, 422, "expired-price"),
                                   (later, 422, "not-yet-valid"),
                                   (other, 422, "price-not-offered"),
                                   (private, 404, None), ("missing", 404, None)):
        error = _error(check, api.post(url, json=order(price_id), headers=acme), status)
        assert code in (None, error["code"]), (price_id, error)
    bad = _order(offering["id"])
    bad["productOrderItem"][0]["itemPrice"] = {"productOfferingPrice": {"id": current}}
    _error(check, api.post(url, json=bad, headers=acme), 400)
    assert "0" == api.get(url, headers=op).headers["x-total-count"]
    made = api.post(url, json=order(current), headers=acme)
    assert 201 == made.status_code, made.text
    check("622", "ProductOrder", made.json())


def test_orders_are_tenant_isolated(api: Any, keys: dict[str, dict[str, str]],
                                    check: Check) -> None:
    offering = _offering(api, check, keys["operator"])
    order = api.post(f"{ORDERING}/productOrder", json=_order(offering["id"]),
                     headers=keys["acme"]).json()
    url = f"{ORDERING}/productOrder/{order['id']}"
    globex = keys["globex"]
    missing = _error(check, api.get(f"{ORDERING}/productOrder/nothing", headers=globex), 404)
    hidden = _error(check, api.get(url, headers=globex), 404)
    assert missing["message"].replace("nothing", order["id"]) == hidden["message"]
    _error(check, api.patch(url, json={"description": "x"}, headers=globex), 404)
    assert [] == api.get(f"{ORDERING}/productOrder", headers=globex).json()
    assert [order["id"]] == [d["id"] for d in api.get(f"{ORDERING}/productOrder",
                                                       headers=keys["operator"]).json()]


def test_cancel_product_order(api: Any, keys: dict[str, dict[str, str]], check: Check) -> None:
    offering = _offering(api, check, keys["operator"])
    acme, url = keys["acme"], f"{ORDERING}/cancelProductOrder"
    orders = [api.post(f"{ORDERING}/productOrder", json=_order(offering["id"]),
                       headers=acme).json() for _ in range(2)]
    _error(check, api.post(url, json={"productOrder": {"id": orders[0]["id"]}},
                           headers=keys["globex"]), 404)
    _error(check, api.post(url, json={"productOrder": "x"}, headers=acme), 400)
    _error(check, api.post(url, json={"productOrder": {"id": orders[0]["id"]},
                                      "cancellationReason": 7}, headers=acme), 400)
    created = api.post(url, json={"productOrder": {"id": orders[0]["id"]},
                                  "cancellationReason": "project stopped"}, headers=acme)
    assert 201 == created.status_code, created.text
    task = created.json()
    check("622", "CancelProductOrder", task)
    assert "acknowledged" == task["state"]  # carried out after the answer (TMF622 task)
    task = api.get(f"{url}/{task['id']}", headers=acme).json()
    check("622", "CancelProductOrder", task)
    assert "done" == task["state"]
    assert "effectiveCancellationDate" in task
    cancelled = api.get(f"{ORDERING}/productOrder/{orders[0]['id']}", headers=acme).json()
    check("622", "ProductOrder", cancelled)
    assert ("cancelled", "cancelled", "project stopped") == (
        cancelled["state"], cancelled["productOrderItem"][0]["state"],
        cancelled["cancellationReason"])
    _error(check, api.post(url, json={"productOrder": {"id": orders[0]["id"]}}, headers=acme),
           409)
    _error(check, api.patch(f"{ORDERING}/productOrder/{orders[0]['id']}",
                            json={"state": "inProgress"}, headers=keys["operator"]), 409)

    op = keys["operator"]
    for state in ("inProgress", "completed"):
        api.patch(f"{ORDERING}/productOrder/{orders[1]['id']}", json={"state": state},
                  headers=op)
    _error(check, api.post(url, json={"productOrder": {"id": orders[1]["id"]}}, headers=acme),
           409)
    listed = api.get(url, headers=acme)
    check("622", "CancelProductOrder", listed.json())
    assert ("1", [task["id"]]) == (listed.headers["x-total-count"],
                                    [t["id"] for t in listed.json()])
    assert task == api.get(f"{url}/{task['id']}", headers=op).json()
    _error(check, api.get(f"{url}/{task['id']}", headers=keys["globex"]), 404)
    assert [] == api.get(url, headers=keys["globex"]).json()


def test_hidden_resources_answer_like_missing_ones(api: Any, keys: dict[str, dict[str, str]],
                                                   check: Check) -> None:
    """Another tenant's offering, order, product and cancellation: same 404 as none."""
    op, globex = keys["operator"], keys["globex"]
    private = _offering(api, check, keys["acme"], name="Acme only")
    public = _offering(api, check, op)
    orders = [api.post(f"{ORDERING}/productOrder", json=_order(public["id"]),
                       headers=keys["acme"]).json() for _ in range(2)]
    for state in ("inProgress", "completed"):
        api.patch(f"{ORDERING}/productOrder/{orders[0]['id']}", json={"state": state},
                  headers=op)
    task = api.post(f"{ORDERING}/cancelProductOrder",
                    json={"productOrder": {"id": orders[1]["id"]}}, headers=keys["acme"]).json()
    product = api.get(f"{INVENTORY}/product", headers=op).json()[0]
    for base, theirs in ((f"{CATALOG}/productOffering", private["id"]),
                         (f"{ORDERING}/productOrder", orders[0]["id"]),
                         (f"{ORDERING}/cancelProductOrder", task["id"]),
                         (f"{INVENTORY}/product", product["id"])):
        nobody = "0" * len(theirs)
        api_name = "620" if base.startswith(CATALOG) else "637" if "Inventory" in base else "622"
        hidden = _error(check, api.get(f"{base}/{theirs}", headers=globex), 404, api_name)
        missing = _error(check, api.get(f"{base}/{nobody}", headers=globex), 404, api_name)
        assert json.dumps(missing).replace(nobody, "<id>") == \
            json.dumps(hidden).replace(theirs, "<id>"), base
    hidden = api.post(f"{ORDERING}/productOrder", json=_order(private["id"]), headers=globex)
    missing = api.post(f"{ORDERING}/productOrder", json=_order("0" * len(private["id"])),
                       headers=globex)
    assert json.dumps(_error(check, missing, 404)).replace("0" * len(private["id"]), "<id>") == \
        json.dumps(_error(check, hidden, 404)).replace(private["id"], "<id>")
