"""Completed product orders provision real objects; failures undo them; hubs hear about it.

Every TMF response is validated against the official files (TMF622, TMF633,
TMF637, TMF638, TMF641); the objects are read back from the security services
(inventory, AAA, policy, CAs, ledger). Notifications reach a real HTTP listener,
which refuses the first delivery so that the retry is exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from simtrust.config import load_settings
from simtrust.policy import Scope
from simtrust.runtime import Runtime
from simtrust.settlement import parse_sla_contract
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

RULES = [{"kind": "destination", "id": "cloud",
          "allow": [{"cidrs": ["192.0.2.0/24"], "ports": [443], "protocols": ["tcp"]}],
          "actions": ["block", "log"]}]


def _keys(rt: Runtime, operator: dict[str, str]) -> dict[str, dict[str, str]]:
    out = {"operator": operator}
    for tenant in ("acme", "globex"):
        rt.tenants.create_tenant(tenant, tenant.title())
        key = rt.tenants.create_key("tenant-admin", "admin", tenant_id=tenant)
        out[tenant] = {"Authorization": f"Bearer {key.secret}"}
    allocations = rt.subscriber.inventory.allocations
    allocations.set_addresses("acme", networks=["10.0.0.0/12", "10.20.0.0/16"], actor="test")
    allocations.set_addresses("globex", networks=["10.30.0.0/16"], actor="test")
    return out


def _private_apn_offering(api: Any, headers: dict[str, str], check: TmfCheck) -> dict[str, Any]:
    return publish(api, headers, "Private APN with SIMs", [
        service_spec("TenantCa", "Enterprise device CA", char("caLabel", mandatory=True)),
        service_spec("PrivateApn", "Private APN", char("apnName", mandatory=True),
                     char("addressPool", mandatory=True), char("radiusAuth", default="pap")),
        service_spec("NetworkPolicy", "Cloud-only policy",
                     char("policyRules", default=RULES, configurable=False, value_type="array")),
        service_spec("SimBatch", "IoT SIMs",
                     char("stockTenant", default="stock", configurable=False),
                     char("apnName")),
    ], check)


def test_order_provisions_and_failure_compensates(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck, listener: Listener) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    add_stock(rt, 3)
    rt.market_events.retry_base = 0.01
    rt.market_events.allowed_networks = LOOPBACK
    hub = api.post(f"{ORDERING}/hub", json={
        "callback": listener.url,
        "query": "eventType=ProductOrderStateChangeEvent"}, headers=keys["acme"])
    assert 201 == hub.status_code, hub.text
    tmf_check("622", "EventSubscription", hub.json())
    offering = _private_apn_offering(api, operator_headers, tmf_check)

    made = api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], 2, apnName="acme.iot", addressPool="10.20.0.0/24", caLabel="fleet"),
        headers=keys["acme"])
    assert 201 == made.status_code, made.text
    assert "acknowledged" == made.json()["state"]
    order = api.get(f"{ORDERING}/productOrder/{made.json()['id']}", headers=keys["acme"]).json()
    tmf_check("622", "ProductOrder", order)
    assert ("completed", ["completed"]) == (
        order["state"], [i["state"] for i in order["productOrderItem"]])

    # The real objects, read from the services that own them.
    inventory = rt.subscriber.inventory
    assert "10.20.0.0/24" == str(inventory.get_apn("acme", "acme.iot").pool)
    assert "pap" == rt.aaa.apns.access("acme", "acme.iot").auth
    sims = inventory.list_sims("acme")
    assert [(SimState.ACTIVE, "acme.iot")] * 2 == [(s.state, s.apn) for s in sims]
    assert ["fleet"] == [ca.label for ca in rt.bootstrap.cas.cas("acme")]
    assert rt.policy.store.get("acme", Scope.parse("tenant")).active

    service_orders = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=keys["acme"])
    tmf_check("641", "ServiceOrder", service_orders.json())
    assert [("completed", order["id"])] == [
        (o["state"], o["orderRelationship"][0]["id"]) for o in service_orders.json()]
    services = api.get(f"{SERVICE_INVENTORY}/service", headers=keys["acme"])
    tmf_check("638", "Service", services.json())
    assert ["4", "4"] == [services.headers["x-total-count"], services.headers["x-result-count"]]
    by_kind = {s["category"]: s for s in services.json()}
    iccids = next(c["value"] for c in by_kind["SimBatch"]["serviceCharacteristic"]
                  if c["name"] == "iccid")
    assert sorted(s.iccid.value for s in sims) == sorted(iccids)
    one = api.get(f"{SERVICE_INVENTORY}/service/{by_kind['PrivateApn']['id']}",
                  headers=keys["acme"])
    tmf_check("638", "Service", one.json())
    assert 404 == api.get(f"{SERVICE_INVENTORY}/service/{by_kind['PrivateApn']['id']}",
                          headers=keys["globex"]).status_code
    products = api.get(f"{INVENTORY}/product", headers=keys["acme"]).json()
    tmf_check("637", "Product", products)
    assert sorted(s["id"] for s in services.json()) == sorted(
        r["id"] for r in products[0]["realizingService"])

    # The seller cannot move an orchestrated order by hand.
    refused = api.patch(f"{ORDERING}/productOrder/{order['id']}", json={"state": "failed"},
                        headers=operator_headers)
    assert 409 == refused.status_code

    # The listener heard about the completion, after one refused delivery.
    event = listener.wait_for(lambda e: e["event"]["productOrder"]["state"] == "completed")
    tmf_check("622", "ProductOrderStateChangeEvent", event)
    assert order["id"] == event["event"]["productOrder"]["id"]
    assert 1 == listener.refused

    # globex wants 5 SIMs; the stock holds 1: everything done before is undone.
    failed = api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], 5, apnName="globex.iot", addressPool="10.30.0.0/24", caLabel="fleet"),
        headers=keys["globex"])
    assert 201 == failed.status_code, failed.text
    order = api.get(f"{ORDERING}/productOrder/{failed.json()['id']}",
                    headers=keys["globex"]).json()
    tmf_check("622", "ProductOrder", order)
    assert "failed" == order["state"]
    assert "stock" in order["note"][-1]["text"]
    assert [] == inventory.list_apns("globex")
    assert [] == rt.bootstrap.cas.cas("globex")
    assert not rt.policy.store.get("globex", Scope.parse("tenant")).active
    assert 1 == inventory.count_sims("stock").get("inventory")
    service_order = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=keys["globex"]).json()
    tmf_check("641", "ServiceOrder", service_order)
    assert ["failed"] == [o["state"] for o in service_order]
    assert ["cancelled", "cancelled", "cancelled", "failed"] == [
        i["state"] for i in service_order[0]["serviceOrderItem"]]
    assert "SimBatch" in service_order[0]["errorMessage"][0]["message"]
    assert [] == api.get(f"{SERVICE_INVENTORY}/service", headers=keys["globex"]).json()
    assert [] == api.get(f"{INVENTORY}/product", headers=keys["globex"]).json()


def test_bad_orders_write_nothing(api: Any, sqlite_runtime: Runtime,
                                  operator_headers: dict[str, str], tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    add_stock(rt, 2)
    offering = _private_apn_offering(api, operator_headers, tmf_check)
    sims_only = publish(api, operator_headers, "SIMs", [service_spec(
        "SimBatch", "IoT SIMs", char("stockTenant", default="stock", configurable=False),
        char("apnName"))])
    rt.subscriber.inventory.create_apn("acme", "acme.private", actor="test", pool="10.9.0.0/24")
    before = rt.db.query_one("SELECT COUNT(*) FROM market_orders")

    cases = [
        (order_body(offering["id"], apnName="a.iot", addressPool="10.1.0.0/24"), 422,
         "missing-characteristic"),
        (order_body(offering["id"], apnName="a.iot", addressPool="10.1.0.0/24", caLabel="x",
                    stockTenant="acme"), 422, "not-configurable"),
        (order_body(offering["id"], apnName="a.iot", addressPool="10.1.0.0/24", caLabel="x",
                    colour="red"), 422, "unknown-characteristic"),
        (order_body(offering["id"], apnName="a.iot", addressPool="not-a-cidr", caLabel="x"),
         400, "invalid-input"),
        # another tenant's APN answers like a missing one
        (order_body(sims_only["id"], apnName="acme.private"), 404, "not-found"),
    ]
    for body, status, code in cases:
        answer = api.post(f"{ORDERING}/productOrder", json=body, headers=keys["globex"])
        assert status == answer.status_code, answer.text
        tmf_check("622", "Error", answer.json())
        assert code == answer.json()["code"], answer.json()
    # a pool inside another tenant's network answers exactly like one nobody holds:
    # an order's pool must lie in the ordering tenant's own address allocation
    answers = []
    for pool in ("10.20.5.0/24", "10.99.5.0/24"):
        answer = api.post(f"{ORDERING}/productOrder", json=order_body(
            offering["id"], apnName="g.iot", addressPool=pool, caLabel="x"),
            headers=keys["globex"])
        tmf_check("622", "Error", answer.json())
        answers.append((answer.status_code,
                        json.dumps(answer.json(), sort_keys=True).replace(pool, "POOL")))
    assert 403 == answers[0][0], answers
    assert answers[0] == answers[1]
    assert "acme" not in answers[0][1]
    assert before == rt.db.query_one("SELECT COUNT(*) FROM market_orders")
    assert [] == rt.subscriber.inventory.list_apns("globex")

    # acme's own APN is fine for acme
    ok = api.post(f"{ORDERING}/productOrder", json=order_body(sims_only["id"],
                                                              apnName="acme.private"),
                  headers=keys["acme"])
    assert 201 == ok.status_code, ok.text
    assert "completed" == rt.market.get_order(ok.json()["id"]).state
    assert ["acme.private"] == [s.apn for s in rt.subscriber.inventory.list_sims("acme")]


def test_slice_order_creates_the_sla_contract_on_the_ledger(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    keys = _keys(rt, operator_headers)
    profile = {"sST": 1, "availability": 99.9, "dLLatency": 20, "dLThptPerSlice": {
        "guaThpt": 50000}}
    offering = publish(api, operator_headers, "e-health slice", [service_spec(
        "SliceSla", "e-health slice SLA (TS 28.541 ServiceProfile)",
        char("serviceProfile", default=profile, configurable=False, value_type="object"),
        char("feeMinorUnits", default=150000, configurable=False, value_type="integer"),
        char("sliceName", mandatory=True), char("consumerParty", mandatory=True))])
    consumer = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    made = api.post(f"{ORDERING}/productOrder", json=order_body(
        offering["id"], sliceName="ehealth", consumerParty=consumer), headers=keys["acme"])
    assert 201 == made.status_code, made.text
    assert "completed" == rt.market.get_order(made.json()["id"]).state
    service = api.get(f"{SERVICE_INVENTORY}/service", headers=keys["acme"]).json()
    tmf_check("638", "Service", service)
    values = {c["name"]: c["value"] for c in service[0]["serviceCharacteristic"]}

    state = rt.contracts.state(values["contractId"])
    assert ("proposed", consumer) == (state["state"]["status"],
                                      state["state"]["parties"]["consumer"])
    contract = parse_sla_contract(state["state"]["document"])
    assert contract.fee_minor_units == 150000
    assert rt.ledger.get_message(bytes.fromhex(values["ledgerMessageId"])).payload
    assert "99.9" == str(json.loads(state["state"]["document"],
                                    parse_float=str)["service_profile"]["availability"])


def test_orchestration_on_both_stores(runtime: Runtime) -> None:
    """The same saga on SQLite and PostgreSQL: completed, then failed and undone."""
    rt = runtime
    for tenant in ("acme", "globex"):
        rt.tenants.create_tenant(tenant, tenant)
    rt.subscriber.inventory.allocations.set_addresses("acme", networks=["10.5.0.0/24"],
                                                      actor="test")
    rt.subscriber.inventory.allocations.set_addresses("globex", networks=["10.6.0.0/24"],
                                                      actor="test")
    add_stock(rt, 2)
    market = rt.market
    refs = [{"id": market.create_item("serviceSpecification", None, body, "t").document["id"]}
            for body in (
                service_spec("PrivateApn", "APN", char("apnName", mandatory=True),
                             char("addressPool", default="10.5.0.0/24")),
                service_spec("SimBatch", "SIMs", char("stockTenant", default="stock",
                                                      configurable=False), char("apnName")))]
    product = market.create_item("productSpecification", None,
                                 {"name": "p", "serviceSpecification": refs}, "t")
    offering = market.create_item("productOffering", None, {
        "name": "o", "lifecycleStatus": "Launched",
        "productSpecification": {"id": product.document["id"]}}, "t")
    ok = market.create_order("acme", order_body(offering.document["id"], 2, apnName="a.iot"),
                             "t")
    assert "completed" == rt.orchestrator.process(ok.document["id"])
    assert ["a.iot", "a.iot"] == [s.apn for s in rt.subscriber.inventory.list_sims("acme")]
    failed = market.create_order("globex", order_body(offering.document["id"], 1,
                                                      apnName="g.iot",
                                                      addressPool="10.6.0.0/24"), "t")
    assert "failed" == rt.orchestrator.process(failed.document["id"])
    assert [] == rt.subscriber.inventory.list_apns("globex")
    assert [["completed", "completed"], ["cancelled", "failed"]] == [
        [i["state"] for i in o.document["serviceOrderItem"]]
        for o in market.list_service_orders(None, True)]
    assert 2 == len(market.list_services(None, True))


_CRASH = """
import os, signal, sys
from pathlib import Path
from simtrust.config import load_settings
from simtrust.runtime import Runtime
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
rt.provisioners["SimBatch"].provision = die
rt.orchestrator.process(sys.argv[2])
"""


def test_a_killed_node_recovers_its_orders(tmp_path: Path) -> None:
    """kill -9 in the middle of an order: on restart its finished steps are undone."""
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant("acme", "Acme")
        rt.subscriber.inventory.allocations.set_addresses("acme", networks=["10.5.0.0/24"],
                                                          actor="test")
        add_stock(rt, 1)
        market = rt.market
        refs = [{"id": market.create_item("serviceSpecification", None, body, "t")
                 .document["id"]} for body in (
            service_spec("PrivateApn", "APN", char("apnName", mandatory=True),
                         char("addressPool", default="10.5.0.0/24")),
            service_spec("SimBatch", "SIMs", char("stockTenant", default="stock",
                                                  configurable=False)))]
        product = market.create_item("productSpecification", None,
                                     {"name": "p", "serviceSpecification": refs}, "t")
        offering = market.create_item("productOffering", None, {
            "name": "o", "lifecycleStatus": "Launched",
            "productSpecification": {"id": product.document["id"]}}, "t")
        order = market.create_order("acme", order_body(offering.document["id"],
                                                       apnName="a.iot"), "t")
    finally:
        rt.close()
    order_id = order.document["id"]
    done = subprocess.run([sys.executable, "-c", _CRASH, str(home), order_id],
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          capture_output=True, timeout=120, check=False)
    assert -signal.SIGKILL == done.returncode, done.stderr.decode()[-500:]

    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        assert "inProgress" == rt.market.get_order(order_id).state
        assert ["a.iot"] == [a.name for a in rt.subscriber.inventory.list_apns("acme")]
        assert 1 == rt.orchestrator.recover()
        order_doc = rt.market.get_order(order_id).document
        assert "failed" == order_doc["state"]
        assert "interrupted" in order_doc["note"][-1]["text"] or \
            "stopped" in order_doc["note"][-1]["text"]
        assert [] == rt.subscriber.inventory.list_apns("acme")
        assert 1 == rt.subscriber.inventory.count_sims("stock")["inventory"]
    finally:
        rt.close()
