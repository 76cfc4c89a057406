"""Client TMF641 service orders in the market service: saga, compensation, recovery.

The HTTP side (official schemas, tenant isolation, cancellation over the wire)
is in ``test_buyer.py`` and ``test_tmf_openapi.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simtrust.cli._root import _start_service_orders
from simtrust.errors import InvalidInput, NotFound, Rejected
from simtrust.market import ServiceOrder
from simtrust.runtime import Runtime

from .conftest import add_stock, char, service_spec


def _specs(rt: Runtime) -> dict[str, str]:
    made = {}
    for function, body in (
            ("PrivateApn", service_spec("PrivateApn", "Private APN",
                                        char("apnName", mandatory=True),
                                        char("addressPool", mandatory=True))),
            ("SimBatch", service_spec("SimBatch", "IoT SIMs",
                                      char("stockTenant", default="stock", configurable=False),
                                      char("apnName")))):
        made[function] = rt.market.create_item("serviceSpecification", None, body,
                                               "test").document["id"]
    return made


@pytest.fixture
def rt(tmp_path: Path) -> Any:
    runtime = Runtime.ephemeral(tmp_path / "node")
    runtime.tenants.create_tenant("acme", "Acme")
    runtime.subscriber.inventory.allocations.set_addresses("acme", networks=["10.0.0.0/8"],
                                                           actor="test")
    yield runtime
    runtime.close()


def _order(rt: Runtime, specs: dict[str, str], sims: int) -> ServiceOrder:
    return rt.market.client_services.create_order("acme", {"serviceOrderItem": [
        {"id": "sims", "action": "add", "quantity": sims, "service": {
            "serviceSpecification": {"id": specs["SimBatch"]},
            "serviceCharacteristic": [{"name": "apnName", "value": "fleet.io"}]}},
        {"id": "apn", "action": "add", "service": {
            "serviceSpecification": {"id": specs["PrivateApn"]},
            "serviceCharacteristic": [{"name": "apnName", "value": "fleet.io"},
                                      {"name": "addressPool", "value": "10.1.0.0/24"}]}},
    ]}, "test")


def test_a_failed_step_compensates_the_done_ones(rt: Runtime) -> None:
    specs = _specs(rt)
    add_stock(rt, 1)
    order = _order(rt, specs, 2)  # one SIM in stock: the SIM step fails after the APN
    assert "failed" == rt.market.client_services.process(order.document["id"])
    doc = rt.market.get_service_order(order.document["id"]).document
    assert {"apn": "cancelled", "sims": "failed"} == {
        i["id"]: i["state"] for i in doc["serviceOrderItem"]}
    assert doc["errorMessage"][0]["serviceOrderItem"][0]["id"] == "sims"
    with pytest.raises(NotFound):
        rt.subscriber.inventory.get_apn("acme", "fleet.io")
    assert [] == rt.market.list_services("acme", False)


def test_modify_and_delete_items_act_on_the_tenants_services(rt: Runtime) -> None:
    specs = _specs(rt)
    add_stock(rt, 2)
    services = rt.market.client_services
    order = _order(rt, specs, 2)
    assert "completed" == services.process(order.document["id"])
    made = {s.document["category"]: s.document["id"]
            for s in rt.market.list_services("acme", False)}
    with pytest.raises(Rejected, match="no serviceSpecification"):
        services.create_order("acme", {"serviceOrderItem": [{"id": "1", "service": {
            "serviceSpecification": {"id": "none"}}}]}, "test")
    rt.tenants.create_tenant("other", "Other")
    with pytest.raises(NotFound):
        services.create_order("other", {"serviceOrderItem": [{
            "id": "1", "action": "delete", "service": {"id": made["PrivateApn"]}}]}, "test")
    change = services.create_order("acme", {"serviceOrderItem": [{
        "id": "1", "action": "modify", "service": {
            "id": made["PrivateApn"],
            "serviceCharacteristic": [{"name": "radiusAuth", "value": "chap"}]}}]}, "test")
    assert "completed" == services.process(change.document["id"])
    apn = rt.market.get_service(made["PrivateApn"]).document
    assert {"name": "radiusAuth", "value": "chap"} in apn["serviceCharacteristic"]
    end = services.create_order("acme", {"serviceOrderItem": [{
        "id": "1", "action": "delete", "service": {"id": made["SimBatch"]}}]}, "test")
    assert "completed" == services.process(end.document["id"])
    assert "terminated" == rt.market.get_service(made["SimBatch"]).document["state"]
    assert 2 == len(rt.subscriber.inventory.list_sims("stock"))


def test_recovery_fails_an_interrupted_order_and_runs_waiting_ones(rt: Runtime) -> None:
    specs = _specs(rt)
    add_stock(rt, 4)
    services = rt.market.client_services
    stuck, waiting = _order(rt, specs, 1), _order(rt, specs, 1)
    rt.db.execute("UPDATE market_service_orders SET state = 'inProgress' WHERE id = ?",
                  (stuck.document["id"],))
    assert 2 == services.recover()
    assert "failed" == rt.market.get_service_order(stuck.document["id"]).document["state"]
    assert "completed" == rt.market.get_service_order(waiting.document["id"]).document["state"]


def test_a_future_requested_start_waits_in_the_store_for_serves_scheduler(
        tmp_path: Path) -> None:
    """TMF641 ``requestedStartDate``: the order waits ``acknowledged`` (durably) and the
    scheduler of ``simtrust serve`` runs it once due, also after a restart."""
    then = datetime.now(UTC) - timedelta(days=1)
    first = Runtime.ephemeral(tmp_path / "node", clock=lambda: then)
    first.tenants.create_tenant("acme", "Acme")
    first.subscriber.inventory.allocations.set_addresses("acme", networks=["10.0.0.0/8"],
                                                         actor="test")
    specs = _specs(first)
    add_stock(first, 2)
    services = first.market.client_services

    def placed(start: datetime) -> str:
        order = services.create_order("acme", {
            "requestedStartDate": start.isoformat(), "serviceOrderItem": [
                {"id": "sims", "action": "add", "service": {
                    "serviceSpecification": {"id": specs["SimBatch"]}}}]}, "test")
        return str(order.document["id"])

    soon, later = placed(then + timedelta(hours=1)), placed(then + timedelta(days=30))
    with pytest.raises(InvalidInput):
        services.create_order("acme", {"requestedStartDate": "tomorrow", "serviceOrderItem": [
            {"id": "1", "service": {"serviceSpecification": {"id": specs["SimBatch"]}}}]},
            "test")
    assert "acknowledged" == services.process(soon)
    assert (0, 0) == (services.run_due(), services.recover())
    settings = first.settings
    first.close()

    second = Runtime.open(settings)  # a day later, by the real clock: ``soon`` is due
    try:
        stop = _start_service_orders(second, 0.05)
        try:
            deadline = time.monotonic() + 120  # a bound for a broken scheduler only
            while second.market.get_service_order(soon).document["state"] == "acknowledged" \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop()
        assert "completed" == second.market.get_service_order(soon).document["state"]
        assert "acknowledged" == second.market.get_service_order(later).document["state"]
        assert 1 == len(second.market.list_services("acme", False))
    finally:
        second.close()
