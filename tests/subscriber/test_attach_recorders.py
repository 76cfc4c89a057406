"""Recorders: what they write for attach decisions commits with the decisions' audit."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from simtrust.runtime import Runtime
from simtrust.subscriber import DecisionRow, Plmn, SubscriberServices, decision_history

from .conftest import TENANT, imei, imsi, spec

HOME = Plmn("001", "01")


def test_recorders_run_inside_the_transaction_of_the_audit_records(
    lite: SubscriberServices,
) -> None:
    """First use (a binding, stored at once), plain decisions (group commit) and a
    deferred burst: each recorder call is inside the store's transaction."""
    seen: list[tuple[bool, list[str]]] = []

    def recorder(rows: Sequence[DecisionRow]) -> None:
        seen.append((lite.inventory.db.in_transaction, [row[3] for row in rows]))

    lite.attach.add_recorder(recorder)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    lite.attach.decide(imsi(1), imei(1), HOME, actor="test")
    lite.attach.decide(imsi(1), imei(1), HOME, actor="test")
    with lite.attach.deferred_audit():
        lite.attach.decide(imsi(1), imei(1), HOME, actor="test")
        lite.attach.decide(imsi(9), imei(1), HOME, actor="test")
    lite.attach.decide(imsi(1), imei(1), HOME, actor="test", dry_run=True)
    one = imsi(1).value
    assert [(True, [one]), (True, [one]), (True, [one, imsi(9).value])] == seen


def test_a_failing_recorder_stores_no_decision(lite: SubscriberServices) -> None:
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    lite.attach.decide(imsi(1), imei(1), HOME, actor="test")
    before = len(decision_history(lite.inventory.audit, tenant_id=None))

    def recorder(_rows: Sequence[DecisionRow]) -> None:
        raise RuntimeError("recorder down")

    lite.attach.add_recorder(recorder)
    with pytest.raises(RuntimeError, match="recorder down"):
        lite.attach.decide(imsi(1), imei(1), HOME, actor="test")
    assert before == len(decision_history(lite.inventory.audit, tenant_id=None))


def test_a_forwarding_runtime_writes_one_location_event_per_decision(
    sqlite_runtime: Runtime,
) -> None:
    """An API worker's decisions reach the shared SIM event stream once each (in the
    decisions' transaction, not again from the listener)."""
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme Meters")
    sqlite_runtime.forward_sim_events()
    attach = sqlite_runtime.subscriber.attach
    sqlite_runtime.subscriber.inventory.add_sim(TENANT, spec(1), actor="test")
    for _ in range(3):
        assert attach.decide(imsi(1), imei(1), HOME, actor="test").allowed
    attach.decide(imsi(1), imei(1), HOME, actor="test", dry_run=True)
    bodies = [json.loads(body) for _seq, body in sqlite_runtime.sim_events.since(0)]
    assert [("location", imsi(1).value, imei(1).value, "00101", TENANT)] * 3 == [
        (b["kind"], b["imsi"], b["imei"], b["plmn"], b["tenant"]) for b in bodies]
    assert 3 == sqlite_runtime.detect.forwarded
