"""Address allocations: a tenant assigns static addresses and APN pools only inside
its own IP networks, so assigning an address another tenant's SIM holds answers
exactly like assigning a free address outside the caller's networks; inside its
networks a duplicate is its own SIM's (409). Overlap between tenants is refused
when the operator sets the networks (docs/decisions/subscriber-address-allocations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simtrust.errors import Conflict, InvalidInput, PermissionDenied
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    ImportRejected,
    SimState,
    SubscriberServices,
    build_services,
)

from .conftest import K1, OPC1, TENANT, iccid, imsi, spec


@pytest.fixture
def two(runtime: Runtime) -> SubscriberServices:
    """acme: SIMs 0-99, 10.1.0.0/16; globex: SIMs 100-199, 10.2.0.0/16 and 2001:db8:2::/48;
    globex's SIM 100 holds 10.2.0.5. On SQLite and PostgreSQL (the allocation tables
    come from the subscriber migrations of either store)."""
    return _two(runtime)


@pytest.fixture
def two_sqlite(sqlite_runtime: Runtime) -> SubscriberServices:
    """As :func:`two`, on the runtime the ``api`` client serves."""
    return _two(sqlite_runtime)


def _two(runtime: Runtime) -> SubscriberServices:
    runtime.tenants.create_tenant(TENANT, "Acme")
    runtime.tenants.create_tenant("globex", "Globex")
    services = build_services(runtime.db, runtime.keyring, runtime.audit,
                              runtime.clock, sinks=[])
    allocations = services.inventory.allocations
    allocations.set(TENANT, iccid_prefixes=["8988200000000000"],
                    imsi_prefixes=["0010100000000"], actor="test")
    allocations.set("globex", iccid_prefixes=["8988200000000001"],
                    imsi_prefixes=["0010100000001"], actor="test")
    allocations.set_addresses(TENANT, networks=["10.1.0.0/16"], actor="test")
    allocations.set_addresses("globex", networks=["10.2.0.0/16", "2001:db8:2::/48"],
                              actor="test")
    services.inventory.add_sim("globex", spec(100, static_ip="10.2.0.5"), actor="globex",
                               own_allocation=True)
    return services


def _masked(exc: pytest.ExceptionInfo[Any], address: str) -> tuple[str, str, object]:
    return (type(exc.value).__name__, exc.value.detail.replace(address, "X"),
            exc.value.context.get("field"))


def test_a_foreign_address_answers_like_a_free_one_on_create_and_update(
        two: SubscriberServices) -> None:
    inv = two.inventory
    with pytest.raises(PermissionDenied) as taken:
        inv.add_sim(TENANT, spec(1, static_ip="10.2.0.5"), actor="acme", own_allocation=True)
    with pytest.raises(PermissionDenied) as free:
        inv.add_sim(TENANT, spec(1, static_ip="10.2.0.6"), actor="acme", own_allocation=True)
    assert _masked(taken, "10.2.0.5") == _masked(free, "10.2.0.6")
    sim = inv.add_sim(TENANT, spec(1), actor="acme", own_allocation=True)
    with pytest.raises(PermissionDenied) as taken:
        inv.update_sim(sim.iccid, actor="acme", static_ip="10.2.0.5", own_allocation=True)
    with pytest.raises(PermissionDenied) as free:
        inv.update_sim(sim.iccid, actor="acme", static_ip="10.9.9.9", own_allocation=True)
    assert _masked(taken, "10.2.0.5") == _masked(free, "10.9.9.9")


def test_inside_the_own_networks_a_duplicate_is_a_conflict(two: SubscriberServices) -> None:
    inv = two.inventory
    inv.add_sim(TENANT, spec(1, static_ip="10.1.0.9"), actor="acme", own_allocation=True)
    with pytest.raises(Conflict, match="assigned to another SIM"):
        inv.add_sim(TENANT, spec(2, static_ip="10.1.0.9"), actor="acme", own_allocation=True)
    second = inv.add_sim(TENANT, spec(2), actor="acme", own_allocation=True)
    with pytest.raises(Conflict, match="assigned to another SIM"):
        inv.update_sim(second.iccid, actor="acme", static_ip="10.1.0.9", own_allocation=True)
    assert "10.1.0.10" == inv.update_sim(second.iccid, actor="acme", static_ip="10.1.0.10",
                                         own_allocation=True).static_ip


def test_apn_pools_lie_inside_the_own_networks(two: SubscriberServices) -> None:
    inv = two.inventory
    with pytest.raises(PermissionDenied) as overlapping:
        inv.create_apn(TENANT, "a", pool="10.2.0.0/24", actor="acme", own_allocation=True)
    with pytest.raises(PermissionDenied) as free:
        inv.create_apn(TENANT, "a", pool="10.3.0.0/24", actor="acme", own_allocation=True)
    assert _masked(overlapping, "10.2.0.0/24") == _masked(free, "10.3.0.0/24")
    assert "10.1.4.0/24" == str(inv.create_apn(TENANT, "a", pool="10.1.4.0/24", actor="acme",
                                               own_allocation=True).pool)
    with pytest.raises(Conflict, match="globex"):  # the operator: never into another's
        inv.create_apn(TENANT, "b", pool="10.2.0.0/24", actor="operator")


def test_the_operator_may_not_assign_inside_another_tenants_networks(
        two: SubscriberServices) -> None:
    inv = two.inventory
    with pytest.raises(Conflict, match="globex"):
        inv.add_sim(TENANT, spec(1, static_ip="10.2.0.7"), actor="operator")
    assert "192.0.2.1" == inv.add_sim(TENANT, spec(1, static_ip="192.0.2.1"),
                                      actor="operator").static_ip


def test_networks_never_overlap_nor_cover_another_tenants_addresses(
        two: SubscriberServices) -> None:
    allocations = two.inventory.allocations
    with pytest.raises(Conflict, match="overlaps"):
        allocations.set_addresses(TENANT, networks=["10.0.0.0/8"], actor="test")
    with pytest.raises(Conflict, match="overlaps"):
        allocations.set_addresses(TENANT, networks=["2001:db8::/32"], actor="test")
    allocations.set_addresses("globex", networks=[], actor="test")
    with pytest.raises(Conflict, match="holds an address"):  # globex's SIM 100 keeps 10.2.0.5
        allocations.set_addresses(TENANT, networks=["10.2.0.0/24"], actor="test")
    two.inventory.create_apn("globex", "g", pool="10.7.0.0/24", actor="operator")
    with pytest.raises(Conflict, match="APN pool"):
        allocations.set_addresses(TENANT, networks=["10.7.0.0/16"], actor="test")
    with pytest.raises(InvalidInput):
        allocations.set_addresses(TENANT, networks=["10.1.0.1/16"], actor="test")
    assert ("10.1.0.0/16", "10.3.0.0/16") == allocations.set_addresses(
        TENANT, networks=["10.3.0.0/16", "10.1.0.0/16"], actor="test").networks


def test_import_rows_with_a_foreign_address_answer_like_free_ones(
        two: SubscriberServices, tmp_path: Path) -> None:
    rows = [f"{iccid(n)},{imsi(n)},{K1.hex()},{OPC1.hex()},{ip}"
            for n, ip in ((1, "10.2.0.5"), (2, "10.2.0.6"))]
    path = tmp_path / "probe.csv"
    path.write_text("ICCID,IMSI,KI,OPC,STATIC_IP\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        two.importer.import_file(path, TENANT, actor="acme", own_allocation=True)
    taken, free = info.value.errors
    assert (taken.field, taken.message.replace("10.2.0.5", "X")) == \
        (free.field, free.message.replace("10.2.0.6", "X"))


def test_over_http_every_route_answers_a_foreign_address_like_a_free_one(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        two_sqlite: SubscriberServices) -> None:
    key = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    acme = {"Authorization": f"Bearer {key.secret}"}
    secrets = {"k": K1.hex(), "opc": OPC1.hex()}

    def create(address: str) -> Any:
        return api.post("/v1/sims", json={**secrets, "iccid": iccid(1).value,
                                          "imsi": imsi(1).value, "static_ip": address},
                        headers=acme)

    def patch(address: str) -> Any:
        return api.patch(f"/v1/sims/{iccid(2).value}", json={"static_ip": address},
                         headers=acme)

    def csv(address: str) -> Any:
        body = (f"ICCID,IMSI,KI,OPC,STATIC_IP\n"
                f"{iccid(3)},{imsi(3)},{K1.hex()},{OPC1.hex()},{address}\n")
        return api.post("/v1/sims/import", content=body,
                        headers={**acme, "Content-Type": "text/csv"})

    def apn(address: str) -> Any:
        return api.post("/v1/apns", json={"name": "probe", "pool": f"{address}/32"},
                        headers=acme)

    assert 201 == api.post("/v1/sims", json={**secrets, "iccid": iccid(2).value,
                                              "imsi": imsi(2).value}, headers=acme).status_code
    for call in (create, patch, csv, apn):
        held, free = call("10.2.0.5"), call("10.2.0.6")
        assert held.status_code == free.status_code, call.__name__
        assert held.status_code in (400, 403), (call.__name__, held.text)
        assert held.text.replace("10.2.0.5", "X") == free.text.replace("10.2.0.6", "X"), \
            call.__name__
    assert 201 == create("10.1.0.5").status_code
    clash = patch("10.1.0.5")
    assert 409 == clash.status_code, clash.text
    got = api.get(f"/v1/tenants/{TENANT}/address-allocation", headers=acme).json()
    assert {"tenant_id": TENANT, "networks": ["10.1.0.0/16"]} == got
    refused = api.put(f"/v1/tenants/{TENANT}/address-allocation",
                      json={"networks": ["10.2.0.0/16"]}, headers=acme)
    assert 403 == refused.status_code
    overlap = api.put(f"/v1/tenants/{TENANT}/address-allocation",
                      json={"networks": ["10.2.0.0/16"]}, headers=operator_headers)
    assert 409 == overlap.status_code
    foreign = api.get("/v1/tenants/globex/address-allocation", headers=acme)
    missing = api.get("/v1/tenants/nobody/address-allocation", headers=acme)
    assert (foreign.status_code, foreign.json()["detail"].replace("globex", "X")) == \
        (missing.status_code, missing.json()["detail"].replace("nobody", "X"))


def test_stock_goes_to_a_buyer_only_inside_what_the_buyer_may_hold(
        two: SubscriberServices, runtime: Runtime) -> None:
    """Moving stock SIMs to a buyer (a SimBatch order) re-checks the allocations:
    a SIM in another tenant's ranges (here the stock tenant's own) or with a static
    address outside the buyer's networks is not handed out; a stock device group
    does not travel (docs/decisions/market-stock-transfer.md)."""
    inv = two.inventory
    runtime.tenants.create_tenant("stock", "SIM stock")
    group = inv.create_group("stock", "pallet 7", actor="test")
    inv.add_sim("stock", spec(200, state=SimState.INVENTORY, group_id=group.id), actor="op")
    inv.add_sim("stock", spec(201, state=SimState.INVENTORY, static_ip="10.9.0.1"),
                actor="op")
    inv.add_sim("stock", spec(202, state=SimState.INVENTORY), actor="op")
    inv.allocations.set("stock", iccid_prefixes=[iccid(202).value[:18]], imsi_prefixes=[],
                        actor="test")

    with pytest.raises(Conflict, match="holds 1 SIMs for this tenant, 2 needed"):
        inv.allocate_stock("stock", TENANT, 2, actor="market")
    assert 3 == inv.count_sims("stock")["inventory"]

    assert [iccid(200)] == inv.allocate_stock("stock", TENANT, 1, actor="market")
    moved = inv.get_sim(iccid(200))
    assert (TENANT, SimState.ACTIVE, None) == (moved.tenant_id, moved.state, moved.group_id)
    assert ("stock", "stock") == (inv.get_sim(iccid(201)).tenant_id,
                                  inv.get_sim(iccid(202)).tenant_id)
    # The invariants still hold: the stock's ranges and networks cover only its own SIMs.
    inv.allocations.set("stock", iccid_prefixes=[iccid(202).value[:18]], imsi_prefixes=[],
                        actor="test")
    inv.allocations.set_addresses("stock", networks=["10.9.0.0/24"], actor="test")
    inv.return_stock([iccid(200)], TENANT, "stock", actor="market")
    assert 3 == inv.count_sims("stock")["inventory"]
