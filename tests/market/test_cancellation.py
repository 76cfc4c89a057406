"""TMF622 cancelProductOrder as an asynchronous task, and v5 DELETE productOrder.

The task goes acknowledged → inProgress → done / terminatedWithError; the order
assessingCancellation → pendingCancellation → cancelled (or partial when a
ledger contract cannot be undone). A cancellation arriving while orchestration
runs is made deterministic by requesting it from inside a provisioning step;
a node killed (SIGKILL) in the middle of a cancellation finishes it on restart.
Answers and events are validated against the official TMF622 / TMF641 files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import SimState

from .conftest import (
    LOOPBACK,
    ORDERING,
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
CONSUMER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def _acme(rt: Runtime) -> dict[str, str]:
    rt.tenants.create_tenant("acme", "Acme")
    rt.subscriber.inventory.allocations.set_addresses("acme", networks=["10.20.0.0/16"],
                                                      actor="test")
    key = rt.tenants.create_key("tenant-admin", "admin", tenant_id="acme")
    return {"Authorization": f"Bearer {key.secret}"}


def _apn_and_sims(api: Any, headers: dict[str, str], *extra: dict[str, Any],
                  ) -> dict[str, Any]:
    return publish(api, headers, "APN with SIMs", [
        service_spec("PrivateApn", "Private APN", char("apnName", mandatory=True),
                     char("addressPool", default="10.20.0.0/24")),
        service_spec("SimBatch", "IoT SIMs", char("stockTenant", default="stock",
                                                  configurable=False), char("apnName")),
        *extra])


def _cancel(api: Any, base: str, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """POST cancelProductOrder; the task as answered (the cancellation runs after it)."""
    made = api.post(f"{base}/cancelProductOrder", json={
        "productOrder": {"id": order_id}, "cancellationReason": "project stopped"},
        headers=headers)
    assert 201 == made.status_code, made.text
    doc: dict[str, Any] = made.json()
    return doc


def test_cancelled_before_orchestration_provisions_nothing(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    acme = _acme(rt)
    add_stock(rt, 1)
    rt.market_events.retry_base = 0.01
    rt.market_events.allowed_networks = LOOPBACK
    listener = Listener()
    try:
        assert 201 == api.post(f"{ORDERING}/hub", json={"callback": listener.url},
                               headers=acme).status_code
        offering = _apn_and_sims(api, operator_headers)
        # Accepted, not yet taken on by the orchestrator.
        order = rt.market.create_order("acme", order_body(offering["id"], apnName="a.iot"),
                                       "test")
        order_id = order.document["id"]
        task = _cancel(api, ORDERING, order_id, acme)
        tmf_check("622", "CancelProductOrder", task)
        assert "acknowledged" == task["state"]
        task = api.get(f"{ORDERING}/cancelProductOrder/{task['id']}", headers=acme).json()
        tmf_check("622", "CancelProductOrder", task)
        assert "done" == task["state"]
        assert "cancelled" == rt.orchestrator.process(order_id)
        doc = api.get(f"{ORDERING}/productOrder/{order_id}", headers=acme).json()
        tmf_check("622", "ProductOrder", doc)
        assert ("cancelled", ["cancelled"], "project stopped") == (
            doc["state"], [i["state"] for i in doc["productOrderItem"]],
            doc["cancellationReason"])
        assert [] == rt.subscriber.inventory.list_apns("acme")
        assert [] == rt.market.list_service_orders(None, True)

        for state in ("assessingCancellation", "cancelled"):
            event = listener.wait_for(
                lambda e, s=state: e["eventType"] == "ProductOrderStateChangeEvent"
                and e["event"]["productOrder"]["state"] == s)
            tmf_check("622", "ProductOrderStateChangeEvent", event)
        event = listener.wait_for(
            lambda e: e["eventType"] == "CancelProductOrderStateChangeEvent")
        tmf_check("622", "CancelProductOrderStateChangeEvent", event)
        assert "done" == event["event"]["cancelProductOrder"]["state"]
        created = listener.wait_for(lambda e: e["eventType"] == "CancelProductOrderCreateEvent")
        tmf_check("622", "CancelProductOrderCreateEvent", created)
    finally:
        listener.close()


def test_cancelled_while_running_undoes_the_steps(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    acme = _acme(rt)
    stock = add_stock(rt, 2)
    offering = _apn_and_sims(api, operator_headers)
    apns = rt.provisioners["PrivateApn"]
    original = apns.provision
    seen: list[str] = []

    def provision_then_cancel(tenant_id: str, values: Any, **kw: Any) -> Any:
        # The buyer's cancellation lands while the orchestrator works on the first step
        # (same thread, inside the step's transaction: deterministic).
        result = original(tenant_id, values, **kw)
        order = rt.market.list_orders("acme", False)[-1]
        task = rt.market.cancel_order(order, {"cancellationReason": "stop"}, "test")
        seen.append(rt.market.process_cancellation(task.document["id"]))
        seen.append(rt.market.get_order(order.document["id"]).state)
        return result

    apns.provision = provision_then_cancel  # type: ignore[method-assign]
    try:
        made = api.post(f"{ORDERING}/productOrder", json=order_body(
            offering["id"], 2, apnName="a.iot"), headers=acme)
    finally:
        apns.provision = original  # type: ignore[method-assign]
    assert 201 == made.status_code, made.text
    # The task was taken on while the steps ran (inProgress, pendingCancellation);
    # the orchestrator stopped before the SIMs and undid the APN.
    assert ["inProgress", "pendingCancellation"] == seen
    order = api.get(f"{V5}/productOrder/{made.json()['id']}", headers=acme).json()
    assert ("cancelled", ["cancelled"]) == (order["state"],
                                            [i["state"] for i in order["productOrderItem"]])
    order = api.get(f"{ORDERING}/productOrder/{made.json()['id']}", headers=acme).json()
    tmf_check("622", "ProductOrder", order)
    task = api.get(f"{ORDERING}/cancelProductOrder", headers=acme).json()[0]
    tmf_check("622", "CancelProductOrder", task)
    assert "done" == task["state"]
    assert [] == rt.subscriber.inventory.list_apns("acme")
    assert [("stock", SimState.INVENTORY)] * 2 == [
        (s.tenant_id, s.state) for s in map(rt.subscriber.inventory.get_sim, stock)]
    so = api.get(f"{SERVICE_ORDERING}/serviceOrder", headers=acme).json()
    tmf_check("641", "ServiceOrder", so)
    assert [("cancelled", ["cancelled", "cancelled"])] == [
        (o["state"], [i["state"] for i in o["serviceOrderItem"]]) for o in so]
    assert [] == rt.market.list_products("acme", False)


def test_a_ledger_contract_makes_the_cancellation_end_with_error(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    acme = _acme(rt)
    add_stock(rt, 1)
    offering = _apn_and_sims(api, operator_headers, service_spec(
        "SliceSla", "slice SLA", char("serviceProfile", default={"sST": 1, "dLLatency": 20},
                                      value_type="object"),
        char("sliceName", default="s1"), char("consumerParty", default=CONSUMER)))
    slices = rt.provisioners["SliceSla"]
    original = slices.provision

    def provision_then_cancel(tenant_id: str, values: Any, **kw: Any) -> Any:
        # The cancellation lands after the last step, before the order completes.
        result = original(tenant_id, values, **kw)
        order = rt.market.list_orders("acme", False)[-1]
        task = rt.market.cancel_order(order, {}, "test")
        rt.market.process_cancellation(task.document["id"])
        return result

    slices.provision = provision_then_cancel  # type: ignore[method-assign]
    try:
        made = api.post(f"{ORDERING}/productOrder", json=order_body(
            offering["id"], apnName="a.iot"), headers=acme)
    finally:
        slices.provision = original  # type: ignore[method-assign]
    assert 201 == made.status_code, made.text
    order = api.get(f"{ORDERING}/productOrder/{made.json()['id']}", headers=acme).json()
    tmf_check("622", "ProductOrder", order)
    assert "partial" == order["state"]
    assert "SliceSla" in order["note"][-1]["text"]
    task = api.get(f"{ORDERING}/cancelProductOrder", headers=acme).json()[0]
    tmf_check("622", "CancelProductOrder", task)
    assert "terminatedWithError" == task["state"]
    assert [] == rt.subscriber.inventory.list_apns("acme")  # undone
    services = rt.market.list_services("acme", False)
    assert ["SliceSla"] == [s.document["category"] for s in services]  # what exists


_CRASH = """
import os, signal, sys
from pathlib import Path
from simtrust.config import load_settings
from simtrust.runtime import Runtime
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
state = rt.orchestrator.state
calls = []
def cancel_and_die(order_id):
    # The orchestrator reads the order's state before each step: before the second
    # step (the APN exists), the buyer cancels, the task is taken on, the node dies.
    calls.append(order_id)
    if len(calls) == 2:
        task = rt.market.cancel_order(rt.market.get_order(order_id), {}, "test")
        rt.market.process_cancellation(task.document["id"])
        os.kill(os.getpid(), signal.SIGKILL)
    return state(order_id)
rt.orchestrator.state = cancel_and_die
rt.orchestrator.process(sys.argv[2])
"""


def test_a_node_killed_during_a_cancellation_finishes_it(tmp_path: Path) -> None:
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
        assert "pendingCancellation" == rt.market.get_order(order_id).state
        assert ["a.iot"] == [a.name for a in rt.subscriber.inventory.list_apns("acme")]
        assert 1 == rt.orchestrator.recover()
        assert 0 == rt.market.cancellations.recover()
        assert "cancelled" == rt.market.get_order(order_id).state
        assert ["done"] == [t.document["state"]
                            for t in rt.market.list_cancellations(None, True)]
        assert [] == rt.subscriber.inventory.list_apns("acme")
        assert 1 == rt.subscriber.inventory.count_sims("stock")["inventory"]
    finally:
        rt.close()


def test_v5_delete_cancels_an_open_order_and_removes_a_final_one(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        tmf_check: TmfCheck) -> None:
    rt = sqlite_runtime
    acme = _acme(rt)
    made = api.post("/tmf-api/productCatalogManagement/v4/productOffering",
                    json={"name": "consulting", "lifecycleStatus": "Launched"},
                    headers=operator_headers)
    assert 201 == made.status_code, made.text
    order = api.post(f"{V5}/productOrder", json={"@type": "ProductOrder", **order_body(
        made.json()["id"])}, headers=acme).json()
    url = f"{V5}/productOrder/{order['id']}"
    accepted = api.delete(url, headers=acme)
    assert 202 == accepted.status_code, accepted.text
    task = api.get(accepted.headers["location"], headers=acme).json()
    assert ("done", "DELETE productOrder") == (task["state"], task["cancellationReason"])
    tmf_check("622", "CancelProductOrder", api.get(
        f"{ORDERING}/cancelProductOrder/{task['id']}", headers=acme).json())
    assert "cancelled" == api.get(url, headers=acme).json()["state"]
    refused = api.delete(url, headers=acme)  # the seller's list: a buyer cannot remove it
    assert (403, "permission-denied") == (refused.status_code, refused.json()["code"])
    assert 204 == api.delete(url, headers=operator_headers).status_code
    assert 404 == api.get(url, headers=acme).status_code
    assert 404 == api.delete(url, headers=operator_headers).status_code
    # The audit trail keeps the order's history.
    actions = [r.action for r in rt.audit.query(subject=f"productOrder:{order['id']}")]
    assert "market.productOrder.delete" == actions[-1]
