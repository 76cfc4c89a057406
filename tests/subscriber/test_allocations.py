"""SIM identifier allocations: a tenant provisions only inside its own ICCID/IMSI
ranges, so creating another tenant's SIM answers exactly like creating any SIM
outside the caller's ranges and never reveals that it exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simtrust.errors import Conflict, InvalidInput, PermissionDenied
from simtrust.runtime import Runtime
from simtrust.subscriber import ImportRejected, SubscriberServices, build_services

from .conftest import K1, OPC1, TENANT, iccid, imsi, spec


@pytest.fixture
def two(sqlite_runtime: Runtime) -> SubscriberServices:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    sqlite_runtime.tenants.create_tenant("globex", "Globex")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[])
    # acme: ICCIDs 89882000000000000x.. (n < 100), globex: the rest of 89882...
    services.inventory.allocations.set(TENANT, iccid_prefixes=["8988200000000000000"[:16]],
                                       imsi_prefixes=["0010100000000"], actor="test")
    services.inventory.allocations.set("globex", iccid_prefixes=["8988200000000001"],
                                       imsi_prefixes=["0010100000001"], actor="test")
    return services


def test_own_range_is_provisioned_foreign_and_free_ranges_answer_alike(
        two: SubscriberServices) -> None:
    inv = two.inventory
    inv.add_sim(TENANT, spec(1), actor="acme", own_allocation=True)
    inv.add_sim("globex", spec(100), actor="globex", own_allocation=True)
    with pytest.raises(PermissionDenied) as taken:
        inv.add_sim(TENANT, spec(100), actor="acme", own_allocation=True)   # globex holds it
    with pytest.raises(PermissionDenied) as free:
        inv.add_sim(TENANT, spec(101), actor="acme", own_allocation=True)   # nobody holds it
    assert taken.value.detail.replace(iccid(100).value, "X") == \
        free.value.detail.replace(iccid(101).value, "X")
    with pytest.raises(Conflict):  # inside the own range, a clash is with an own SIM
        inv.add_sim(TENANT, spec(1), actor="acme", own_allocation=True)


def test_operator_may_not_provision_into_another_tenants_range(two: SubscriberServices) -> None:
    with pytest.raises(Conflict, match="globex"):
        two.inventory.add_sim(TENANT, spec(100), actor="operator")
    two.inventory.add_sim("globex", spec(100), actor="operator")


def test_ranges_never_overlap_nor_cover_other_tenants_sims(two: SubscriberServices) -> None:
    allocations = two.inventory.allocations
    with pytest.raises(Conflict, match="overlaps"):
        allocations.set(TENANT, iccid_prefixes=["89882"], imsi_prefixes=[], actor="test")
    two.inventory.add_sim("globex", spec(100), actor="operator")
    allocations.set("globex", iccid_prefixes=[], imsi_prefixes=[], actor="test")
    with pytest.raises(Conflict, match="holds SIMs"):
        allocations.set(TENANT, iccid_prefixes=["89882"], imsi_prefixes=[], actor="test")
    with pytest.raises(InvalidInput):
        allocations.set(TENANT, iccid_prefixes=["89x"], imsi_prefixes=[], actor="test")


def test_import_rows_of_another_tenant_answer_like_free_ones(
        two: SubscriberServices, tmp_path: Path) -> None:
    two.inventory.add_sim("globex", spec(100), actor="operator")
    rows = [f"{iccid(n)},{imsi(n)},{K1.hex()},{OPC1.hex()}" for n in (100, 101)]
    path = tmp_path / "probe.csv"
    path.write_text("ICCID,IMSI,KI,OPC\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        two.importer.import_file(path, TENANT, actor="acme", own_allocation=True)
    taken, free = info.value.errors
    assert (taken.field, taken.message.replace(iccid(100).value, "X")) == \
        (free.field, free.message.replace(iccid(101).value, "X"))


def test_over_http_a_foreign_iccid_answers_like_a_free_one(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        two: SubscriberServices) -> None:
    key = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    acme = {"Authorization": f"Bearer {key.secret}"}
    body = {"k": K1.hex(), "opc": OPC1.hex()}
    held = api.post("/v1/sims", json={**body, "tenant_id": "globex", "iccid": iccid(100).value,
                                      "imsi": imsi(100).value}, headers=operator_headers)
    assert 201 == held.status_code, held.text
    answers = [api.post("/v1/sims", json={**body, "iccid": iccid(n).value,
                                          "imsi": imsi(n).value}, headers=acme)
               for n in (100, 101)]
    masked = [a.text.replace(iccid(n).value, "X") for a, n in zip(answers, (100, 101),
                                                                   strict=True)]
    assert 403 == answers[0].status_code
    assert masked[0] == masked[1]
    got = api.get(f"/v1/tenants/{TENANT}/sim-allocation", headers=acme).json()
    assert ["0010100000000"] == got["imsi_prefixes"]
    refused = api.put(f"/v1/tenants/{TENANT}/sim-allocation", json={}, headers=acme)
    assert 403 == refused.status_code
