"""TMF622 ``modify`` and ``delete`` items change and terminate provisioned products.

The installed product (TMF637) names its realising services (TMF638); a
``modify`` item changes their characteristics through the security services
(RADIUS settings, the SIMs' APN, the policy, a new slice SLA contract), a
``delete`` item terminates them (SIMs back to stock, APN and CA removed, the
policy deactivated, the SLA contract terminated on the ledger). Every answer
and every notification is validated against the official files (TMF622 v4 and
v5, TMF637, TMF638, TMF641).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, validators

from simtrust.errors import Conflict, NotFound
from simtrust.policy import Scope
from simtrust.runtime import Runtime
from simtrust.subscriber import SimState

from .conftest import (
    INVENTORY,
    LOOPBACK,
    ORDERING,
    SERVICE_INVENTORY,
    SERVICE_ORDERING,
    Listener,
    TmfCheck,
    add_stock,
    char,
    order_body,
    publish,
    service_spec,
)

V5 = "/tmf-api/productOrderingManagement/v5"
RULES = [{"kind": "destination", "id": "cloud",
          "allow": [{"cidrs": ["192.0.2.0/24"], "ports": [443], "protocols": ["tcp"]}],
          "actions": ["block", "log"]}]
CONSUMER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def _discriminated_one_of(validator: Any, one_of: Any, instance: Any, schema: Any) -> Any:
    """OpenAPI 3.0 Discriminator Object: a oneOf with a discriminator takes the branch
    its mapping names for the instance's ``@type`` (plain oneOf cannot tell a v5
    ``ProductRef`` from a ``Product``: both accept an object with an id)."""
    found = schema.get("discriminator")
    if found is not None and isinstance(instance, dict):
        target = found.get("mapping", {}).get(instance.get(found["propertyName"]))
        if target is not None:
            yield from validator.descend(instance, {"$ref": target})
            return
    yield from Draft7Validator.VALIDATORS["oneOf"](validator, one_of, instance, schema)


_Discriminated = validators.extend(Draft7Validator, {"oneOf": _discriminated_one_of})


@pytest.fixture(scope="module")
def v5_check(shared_dir: Path) -> Any:
    doc = yaml.safe_load((shared_dir / "specs" / "tmf" / "TMF622-ProductOrdering-v5.0.0.oas.yaml")
                         .read_text(encoding="utf-8"))

    def run(name: str, body: Any) -> None:
        validator = _Discriminated({"$ref": f"#/components/schemas/{name}",
                                    "components": doc["components"]},
                                   format_checker=Draft7Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, [e.message for e in errors[:3]]

    return run


def _keys(rt: Runtime, operator: dict[str, str]) -> dict[str, dict[str, str]]:
    out = {"operator": operator}
    for tenant in ("acme", "globex"):
        rt.tenants.create_tenant(tenant, tenant.title())
        key = rt.tenants.create_key("tenant-admin", "admin", tenant_id=tenant)
        out[tenant] = {"Authorization": f"Bearer {key.secret}"}
    rt.subscriber.inventory.allocations.set_addresses("acme", networks=["10.20.0.0/16"],
                                                      actor="test")
    return out


def _connectivity(api: Any, headers: dict[str, str], check: TmfCheck) -> dict[str, Any]:
    return publish(api, headers, "Private APN with SIMs", [
        service_spec("PrivateApn", "Private APN", char("apnName", mandatory=True),
                     char("addressPool", mandatory=True), char("radiusAuth", default="pap"),
                     char("sessionTimeout", default=86400, value_type="integer")),
        service_spec("NetworkPolicy", "Cloud-only policy",
                     char("policyRules", default=RULES, value_type="array")),
        service_spec("SimBatch", "IoT SIMs",
                     char("stockTenant", default="stock", configurable=False),
                     char("apnName")),
    ], check)


def _modify(product_id: str, **chars: Any) -> dict[str, Any]:
    return {"productOrderItem": [{"id": "1", "action": "modify", "product": {
        "id": product_id,
        "productCharacteristic": [{"name": k, "value": v} for k, v in chars.items()]}}]}


def _delete(product_id: str) -> dict[str, Any]:
    return {"productOrderItem": [{"id": "1", "action": "delete", "product": {"id": product_id}}]}


def _chars(doc: dict[str, Any], member: str) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in doc[member]}


def _service(api: Any, headers: dict[str, str], category: str) -> dict[str, Any]:
    found = [s for s in api.get(f"{SERVICE_INVENTORY}/service", headers=headers).json()
             if s["category"] == category]
    assert 1 == len(found), found
    doc: dict[str, Any] = found[0]
    return doc


def test_modify_then_delete_a_provisioned_product(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck, v5_check: Any) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    acme = keys["acme"]
    stock = add_stock(rt, 2)
    rt.market_events.retry_base = 0.01
    rt.market_events.allowed_networks = LOOPBACK
    listener = Listener()
    try:
        for base in (INVENTORY, SERVICE_INVENTORY):
            assert 201 == api.post(f"{base}/hub", json={"callback": listener.url},
                                   headers=acme).status_code
        offering = _connectivity(api, operator_headers, tmf_check)
        made = api.post(f"{ORDERING}/productOrder", json=order_body(
            offering["id"], 2, apnName="acme.iot", addressPool="10.20.0.0/24"), headers=acme)
        assert 201 == made.status_code, made.text
        product = api.get(f"{INVENTORY}/product", headers=acme).json()[0]
        assert "active" == product["status"]
        inventory = rt.subscriber.inventory
        inventory.create_apn("acme", "acme.backup", actor="test", pool="10.20.1.0/24",
                             own_allocation=True)

        # modify (v4): RADIUS settings of the APN and the APN the SIMs use.
        mod = api.post(f"{ORDERING}/productOrder", json=_modify(
            product["id"], radiusAuth="chap", sessionTimeout=3600, apnName="acme.backup"),
            headers=acme)
        assert 201 == mod.status_code, mod.text
        order = api.get(f"{ORDERING}/productOrder/{mod.json()['id']}", headers=acme).json()
        tmf_check("622", "ProductOrder", order)
        assert ("completed", "modify") == (order["state"],
                                           order["productOrderItem"][0]["action"])
        access = rt.aaa.apns.access("acme", "acme.iot")
        assert ("chap", 3600) == (access.auth, access.session_timeout)
        assert ["acme.backup"] * 2 == [s.apn for s in inventory.list_sims("acme")]
        apn_service = _service(api, acme, "PrivateApn")
        tmf_check("638", "Service", apn_service)
        assert ("active", "chap", 3600) == (
            apn_service["state"], *(_chars(apn_service, "serviceCharacteristic")[k]
                                    for k in ("radiusAuth", "sessionTimeout")))
        assert ["add", "modify"] == [i["itemAction"] for i in apn_service["serviceOrderItem"]]
        product = api.get(f"{INVENTORY}/product/{product['id']}", headers=acme).json()
        tmf_check("637", "Product", product)
        assert "chap" == _chars(product, "productCharacteristic")["radiusAuth"]
        service_orders = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=acme).json()
        tmf_check("641", "ServiceOrder", service_orders)
        assert [["modify", "modify"]] == [[i["action"] for i in o["serviceOrderItem"]]
                                          for o in service_orders[1:]]

        # Refusals write nothing: a characteristic no function may change, another
        # tenant's product, an unknown product, a characteristic nobody declares.
        orders_before = len(rt.market.list_orders(None, True))
        for body, headers, status, code in (
                (_modify(product["id"], addressPool="10.20.2.0/24"), acme, 422,
                 "not-modifiable"),
                (_modify(product["id"], stockTenant="other"), acme, 422, "not-configurable"),
                (_modify(product["id"], colour="red"), acme, 422, "unknown-characteristic"),
                (_modify(product["id"]), acme, 422, "nothing-to-modify"),
                (_delete(product["id"]), keys["globex"], 404, "not-found"),
                (_delete("no-such-product"), acme, 404, "not-found")):
            refused = api.post(f"{ORDERING}/productOrder", json=body, headers=headers)
            assert status == refused.status_code, refused.text
            tmf_check("622", "Error", refused.json())
            assert code == refused.json()["code"]
        assert orders_before == len(rt.market.list_orders(None, True))

        # delete (v5): SIMs back to stock, APN, RADIUS settings and policy gone.
        gone = api.post(f"{V5}/productOrder", json={**_delete(product["id"]),
                                                     "@type": "ProductOrder"}, headers=acme)
        assert 201 == gone.status_code, gone.text
        v5_check("ProductOrder", gone.json())
        order = api.get(f"{V5}/productOrder/{gone.json()['id']}", headers=acme).json()
        v5_check("ProductOrder", order)
        assert "completed" == order["state"]
        sims = [inventory.get_sim(i) for i in stock]
        assert [("stock", SimState.INVENTORY, None)] * 2 == [(s.tenant_id, s.state, s.apn)
                                                             for s in sims]
        with pytest.raises(NotFound):
            inventory.get_apn("acme", "acme.iot")
        assert not rt.policy.store.get("acme", Scope.parse("tenant")).active
        product = api.get(f"{INVENTORY}/product/{product['id']}", headers=acme).json()
        tmf_check("637", "Product", product)
        assert "terminated" == product["status"]
        assert "terminationDate" in product
        services = api.get(f"{SERVICE_INVENTORY}/service", headers=acme).json()
        tmf_check("638", "Service", services)
        assert {"terminated"} == {s["state"] for s in services}
        last = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=acme).json()[-1]
        tmf_check("641", "ServiceOrder", last)
        assert ["delete"] * 3 == [i["action"] for i in last["serviceOrderItem"]]
        assert ["SimBatch", "NetworkPolicy", "PrivateApn"] == [
            i["service"]["category"] for i in last["serviceOrderItem"]]

        again = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]), headers=acme)
        assert (422, "product-not-active") == (again.status_code, again.json()["code"])

        # The hubs heard the life cycle, each event valid against its official model.
        terminated = listener.wait_for(
            lambda e: e["eventType"] == "ProductStateChangeEvent"
            and e["event"]["product"]["status"] == "terminated")
        tmf_check("637", "ProductStateChangeEvent", terminated)
        pending = listener.wait_for(
            lambda e: e["eventType"] == "ProductStateChangeEvent"
            and e["event"]["product"]["status"] == "pendingTerminate")
        tmf_check("637", "ProductStateChangeEvent", pending)
        changed = listener.wait_for(lambda e: e["eventType"] == "ServiceAttributeValueChangeEvent")
        tmf_check("638", "ServiceAttributeValueChangeEvent", changed)
        ended = listener.wait_for(
            lambda e: e["eventType"] == "ServiceStateChangeEvent"
            and e["event"]["service"]["category"] == "PrivateApn")
        tmf_check("638", "ServiceStateChangeEvent", ended)
        assert "terminated" == ended["event"]["service"]["state"]
    finally:
        listener.close()


def test_a_failed_modify_is_reverted_and_the_product_stays(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    add_stock(rt, 1)
    offering = _connectivity(api, operator_headers, tmf_check)
    assert 201 == api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], 1, apnName="acme.iot", addressPool="10.20.0.0/24"),
        headers=keys["acme"]).status_code
    product = api.get(f"{INVENTORY}/product", headers=keys["acme"]).json()[0]
    inventory = rt.subscriber.inventory
    inventory.create_apn("acme", "acme.backup", actor="test", pool="10.20.1.0/24",
                         own_allocation=True)
    # Accepted while the target APN exists; it disappears before the order runs.
    order = rt.market.create_order("acme", _modify(product["id"], radiusAuth="chap",
                                                   apnName="acme.backup"), "test")
    busy = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]),
                    headers=keys["acme"])
    assert (409, "conflict") == (busy.status_code, busy.json()["code"])
    inventory.delete_apn("acme", "acme.backup", actor="test")
    assert "failed" == rt.orchestrator.process(order.document["id"])

    doc = api.get(f"{ORDERING}/productOrder/{order.document['id']}",
                  headers=keys["acme"]).json()
    tmf_check("622", "ProductOrder", doc)
    assert "SimBatch" in doc["note"][0]["text"]
    assert "pap" == rt.aaa.apns.access("acme", "acme.iot").auth  # reverted
    assert ["acme.iot"] == [s.apn for s in inventory.list_sims("acme")]
    service = _service(api, keys["acme"], "PrivateApn")
    assert "pap" == _chars(service, "serviceCharacteristic")["radiusAuth"]
    so = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=keys["acme"]).json()[-1]
    tmf_check("641", "ServiceOrder", so)
    assert ("failed", ["cancelled", "failed"]) == (
        so["state"], [i["state"] for i in so["serviceOrderItem"]])
    # Once the failed order is final the product can be changed again.
    product = api.get(f"{INVENTORY}/product/{product['id']}", headers=keys["acme"]).json()
    assert "active" == product["status"]
    ok = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]), headers=keys["acme"])
    assert 201 == ok.status_code, ok.text
    assert "completed" == rt.market.get_order(ok.json()["id"]).state


def test_slice_modify_supersedes_and_delete_terminates_the_contract(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    profile = {"sST": 1, "availability": 99.9, "dLLatency": 20}
    offering = publish(api, operator_headers, "e-health slice", [service_spec(
        "SliceSla", "e-health slice SLA", char("serviceProfile", default=profile,
                                                value_type="object"),
        char("sliceName", mandatory=True), char("consumerParty", mandatory=True))])
    assert 201 == api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], sliceName="ehealth", consumerParty=CONSUMER),
        headers=keys["acme"]).status_code
    product = api.get(f"{INVENTORY}/product", headers=keys["acme"]).json()[0]
    first = _chars(_service(api, keys["acme"], "SliceSla"), "serviceCharacteristic")

    better = {**profile, "dLLatency": 10}
    mod = api.post(f"{ORDERING}/productOrder", json=_modify(product["id"],
                                                            serviceProfile=better),
                   headers=keys["acme"])
    assert 201 == mod.status_code, mod.text
    assert "completed" == rt.market.get_order(mod.json()["id"]).state
    service = _service(api, keys["acme"], "SliceSla")
    tmf_check("638", "Service", service)
    second = _chars(service, "serviceCharacteristic")
    assert second["supersedes"] == first["contractId"] != second["contractId"]
    assert "terminated" == rt.contracts.state(first["contractId"])["state"]["status"]
    assert "proposed" == rt.contracts.state(second["contractId"])["state"]["status"]
    assert 10 == second["document"]["service_profile"]["dLLatency"]

    gone = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]),
                    headers=keys["acme"])
    assert 201 == gone.status_code, gone.text
    assert "completed" == rt.market.get_order(gone.json()["id"]).state
    assert "terminated" == rt.contracts.state(second["contractId"])["state"]["status"]
    assert "terminated" == _service(api, keys["acme"], "SliceSla")["state"]


def test_a_roaming_agreement_is_not_terminated_by_an_order(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str]) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    offering = publish(api, operator_headers, "Roaming", [service_spec(
        "RoamingAgreement", "Roaming agreement", char("homePlmn", mandatory=True),
        char("visitedPlmn", default="00101"), char("consumerParty", mandatory=True))])
    assert 201 == api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], homePlmn="00102", consumerParty=CONSUMER),
        headers=keys["acme"]).status_code
    product = api.get(f"{INVENTORY}/product", headers=keys["acme"]).json()[0]
    refused = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]),
                       headers=keys["acme"])
    assert (422, "not-terminable") == (refused.status_code, refused.json()["code"])
    assert "active" == rt.market.get_product(product["id"]).document["status"]


def test_modify_and_delete_on_both_stores(runtime: Runtime) -> None:
    """The same life cycle on SQLite and PostgreSQL, and two orders racing for a product."""
    rt = runtime
    rt.tenants.create_tenant("acme", "acme")
    inventory = rt.subscriber.inventory
    inventory.allocations.set_addresses("acme", networks=["10.5.0.0/16"], actor="test")
    stock = add_stock(rt, 2)
    market = rt.market
    refs = [{"id": market.create_item("serviceSpecification", None, body, "t").document["id"]}
            for body in (
                service_spec("PrivateApn", "APN", char("apnName", mandatory=True),
                             char("addressPool", default="10.5.0.0/24"),
                             char("radiusAuth", default="pap")),
                service_spec("SimBatch", "SIMs", char("stockTenant", default="stock",
                                                      configurable=False), char("apnName")))]
    spec = market.create_item("productSpecification", None,
                              {"name": "p", "serviceSpecification": refs}, "t")
    offering = market.create_item("productOffering", None, {
        "name": "o", "lifecycleStatus": "Launched",
        "productSpecification": {"id": spec.document["id"]}}, "t")
    made = market.create_order("acme", order_body(offering.document["id"], 2, apnName="a.iot"),
                               "t")
    assert "completed" == rt.orchestrator.process(made.document["id"])
    product = market.list_products("acme", False)[0].document
    modify = market.create_order("acme", _modify(product["id"], radiusAuth="chap"), "t")
    with pytest.raises(Conflict):
        market.create_order("acme", _delete(product["id"]), "t")
    assert "completed" == rt.orchestrator.process(modify.document["id"])
    assert "chap" == rt.aaa.apns.access("acme", "a.iot").auth
    delete = market.create_order("acme", _delete(product["id"]), "t")
    assert "pendingTerminate" == market.get_product(product["id"]).document["status"]
    assert "completed" == rt.orchestrator.process(delete.document["id"])
    assert "terminated" == market.get_product(product["id"]).document["status"]
    assert {"terminated"} == {s.document["state"] for s in market.list_services(None, True)}
    assert [SimState.INVENTORY] * 2 == [inventory.get_sim(i).state for i in stock]
    assert [] == inventory.list_apns("acme")


def test_a_buyer_suspends_and_resumes_its_product(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    acme = keys["acme"]
    stock = add_stock(rt, 2)
    rt.market_events.retry_base = 0.01
    rt.market_events.allowed_networks = LOOPBACK
    listener = Listener()
    try:
        assert 201 == api.post(f"{INVENTORY}/hub", json={"callback": listener.url},
                               headers=acme).status_code
        offering = _connectivity(api, operator_headers, tmf_check)
        assert 201 == api.post(f"{ORDERING}/productOrder", json=order_body(
            offering["id"], 2, apnName="acme.iot", addressPool="10.20.0.0/24"),
            headers=acme).status_code
        product = api.get(f"{INVENTORY}/product", headers=acme).json()[0]
        url = f"{INVENTORY}/product/{product['id']}"
        inventory = rt.subscriber.inventory

        suspended = api.patch(url, json={"status": "suspended", "description": "paused"},
                              headers=acme)
        assert 200 == suspended.status_code, suspended.text
        tmf_check("637", "Product", suspended.json())
        assert ("suspended", "paused") == (suspended.json()["status"],
                                           suspended.json()["description"])
        assert [SimState.SUSPENDED] * 2 == [inventory.get_sim(i).state for i in stock]
        sims = _service(api, acme, "SimBatch")
        tmf_check("638", "Service", sims)
        assert ("inactive", False) == (sims["state"], sims["isServiceEnabled"])
        assert "active" == _service(api, acme, "PrivateApn")["state"]
        refused = api.post(f"{ORDERING}/productOrder", json=_delete(product["id"]),
                           headers=acme)
        assert (422, "product-not-active") == (refused.status_code, refused.json()["code"])

        resumed = api.patch(url, json={"status": "active"}, headers=acme)
        assert 200 == resumed.status_code, resumed.text
        assert [SimState.ACTIVE] * 2 == [inventory.get_sim(i).state for i in stock]
        assert "active" == _service(api, acme, "SimBatch")["state"]

        for body, headers, status in (
                ({"status": "terminated"}, acme, 409), ({"status": "pendingActive"}, acme, 409),
                ({"productOffering": {"id": "x"}}, acme, 400), ({"name": 7}, acme, 400),
                ({"status": "suspended"}, keys["globex"], 404)):
            answer = api.patch(url, json=body, headers=headers)
            assert status == answer.status_code, (body, answer.text)
            tmf_check("637", "Error", answer.json())
        assert [SimState.ACTIVE] * 2 == [inventory.get_sim(i).state for i in stock]

        for status in ("suspended", "active"):
            event = listener.wait_for(
                lambda e, s=status: e["eventType"] == "ProductStateChangeEvent"
                and e["event"]["product"]["status"] == s)
            tmf_check("637", "ProductStateChangeEvent", event)
    finally:
        listener.close()
