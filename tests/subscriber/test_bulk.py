"""Bulk life-cycle changes and group moves: one transaction, one audit record per SIM."""

from __future__ import annotations

import io

import pytest

from simtrust.domain import Iccid
from simtrust.errors import InvalidInput, NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import SimState, luhn_check_digit


def _fleet(rt: Runtime, tenant: str, prefix: str, count: int) -> list[str]:
    rt.tenants.create_tenant(tenant, tenant)
    lines = ["ICCID,IMSI,KI,OPC,STATE"]
    for i in range(count):
        body = f"{prefix}{i:011d}"
        lines.append(f"{body}{luhn_check_digit(body)},00101{prefix[-3:]}{i:07d},"
                     f"{'11' * 16},{'22' * 16},active")
    rt.subscriber.importer.import_stream(io.StringIO("\n".join(lines) + "\n", newline=""),
                                         tenant, actor="test")
    return [s.iccid.value for s in rt.subscriber.inventory.list_sims(tenant)]


def test_transition_many_skips_with_reasons(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    inv = rt.subscriber.inventory
    mine = _fleet(rt, "acme", "8988211", 6)
    theirs = _fleet(rt, "globex", "8988222", 2)
    inv.transition(Iccid(mine[0]), SimState.TERMINATED, actor="test")
    inv.transition(Iccid(mine[1]), SimState.SUSPENDED, actor="test")
    before = rt.audit.count()
    outcome = inv.transition_many([*mine, theirs[0]], SimState.SUSPENDED, actor="ops",
                                  tenant_id="acme")
    assert 4 == outcome.changed
    assert {mine[1]: "already suspended", theirs[0]: "no such SIM"} == {
        k: v for k, v in outcome.skipped.items() if k != mine[0]}
    assert "terminated" in outcome.skipped[mine[0]]
    assert before + 4 == rt.audit.count()
    assert {SimState.SUSPENDED} == {inv.get_sim(Iccid(i)).state for i in mine[1:]}
    assert SimState.ACTIVE is inv.get_sim(Iccid(theirs[0])).state
    events = rt.audit.query(subject=f"sim:{mine[2]}", action="sim.transition")
    assert {"from": "active", "to": "suspended"} == {
        k: events[-1].details[k] for k in ("from", "to")}
    with pytest.raises(InvalidInput):
        inv.transition_many(mine, SimState.TERMINATED, actor="ops")


def test_move_group_many_stays_in_the_groups_tenant(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    inv = rt.subscriber.inventory
    mine = _fleet(rt, "acme", "8988211", 3)
    theirs = _fleet(rt, "globex", "8988222", 1)
    group = inv.create_group("acme", "north", actor="test")
    outcome = inv.move_group_many([*mine, *theirs], group.id, actor="ops")
    assert 3 == outcome.changed
    assert {theirs[0]: "the group belongs to another tenant"} == outcome.skipped
    assert {group.id} == {inv.get_sim(Iccid(i)).group_id for i in mine}
    with pytest.raises(NotFound):
        inv.move_group_many(theirs, group.id, actor="ops", tenant_id="globex")
