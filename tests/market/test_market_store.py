"""The market service on SQLite and PostgreSQL: durable documents, guarded state changes."""

from __future__ import annotations

import pytest

from simtrust.errors import InvalidTransition, NotFound
from simtrust.market import ORDER_TRANSITIONS, merge_patch
from simtrust.runtime import Runtime


def test_catalog_and_orders_round_trip(runtime: Runtime) -> None:
    market = runtime.market
    offering = market.create_item("productOffering", None,
                                  {"name": "IoT 1 GB", "lifecycleStatus": "Launched"}, "test")
    private = market.create_item("productOffering", "acme", {"name": "Acme only"}, "test")
    assert [offering.document["id"]] == [
        i.document["id"] for i in market.list_items("productOffering", "globex", False)]
    assert 2 == len(market.list_items("productOffering", None, True))
    order = market.create_order("acme", {"productOrderItem": [
        {"id": "a", "action": "add", "productOffering": {"id": offering.document["id"]}}]},
        "test")
    with pytest.raises(NotFound):
        market.create_order("globex", {"productOrderItem": [
            {"id": "a", "action": "add", "productOffering": {"id": private.document["id"]}}]},
            "test")
    moved = market.patch_order(order, {"state": "inProgress"}, "test", may_change_state=True)
    with pytest.raises(InvalidTransition):
        market.patch_order(order, {"state": "rejected"}, "test", may_change_state=True)
    assert "inProgress" == market.get_order(order.document["id"]).state == moved.state
    assert [moved.document] == [o.document for o in market.list_orders("acme", False)]
    assert [] == market.list_orders("globex", False)
    done = market.patch_order(moved, {"state": "completed"}, "test", may_change_state=True)
    products = market.list_products("acme", False)
    assert [("acme", "active", done.document["id"])] == [
        (p.tenant_id, p.document["status"], p.document["productOrderItem"][0]["productOrderId"])
        for p in products]
    assert products[0] == market.get_product(products[0].document["id"])
    assert [] == market.list_products("globex", False)
    events = runtime.db.query("SELECT action FROM audit_events ORDER BY seq")
    assert ("market.productOrder.update",) == events[-1]


def test_final_states_have_no_way_out() -> None:
    for state in ("completed", "failed", "partial", "rejected"):
        assert frozenset() == ORDER_TRANSITIONS[state]
    assert {"a": {"c": 1}} == merge_patch({"a": {"b": 1}, "d": 2}, {"a": {"b": None, "c": 1},
                                                                     "d": None})
