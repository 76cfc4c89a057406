"""The seams the policy engine uses: the address map (ip → IMSI) and the device directory."""

from __future__ import annotations

from simtrust.domain import DeviceContext
from simtrust.policy import AddressMap
from simtrust.runtime import Runtime
from simtrust.subscriber import Plmn, SimState, build_services

from .conftest import TENANT, imei, imsi, spec


def test_leases_can_fill_the_policy_address_map(sqlite_runtime: Runtime) -> None:

    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[])
    gateway_map = AddressMap()

    def forward(imsi_: str, apn: str | None, address: str | None) -> None:
        if address is None:
            gateway_map.detach(imsi_)
        else:
            gateway_map.attach(imsi_, apn or "", address)

    services.addresses.subscribe(forward)
    try:
        services.inventory.add_sim(TENANT, spec(1, static_ip="192.0.2.10"), actor="test")
        assert services.attach.decide(imsi(1), imei(1), Plmn("001", "01")).allowed
        assert imsi(1).value == gateway_map.lookup("192.0.2.10")
        assert imsi(1).value == services.addresses.lookup("192.0.2.10")
        services.addresses.release(imsi(1).value)
        assert gateway_map.lookup("192.0.2.10") is None
    finally:
        services.close()


def test_directory_gives_the_policy_engine_device_context(sqlite_runtime: Runtime) -> None:

    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[])
    try:
        inv = services.inventory
        group = inv.create_group(TENANT, "meters", actor="test")
        inv.create_apn(TENANT, "iot", actor="test", pool="10.70.0.0/29")
        sim = inv.add_sim(TENANT, spec(1, apn="iot", group_id=group.id), actor="test")
        directory = services.directory(tz="Europe/Berlin")
        assert directory.context(imsi(9).value) is None
        assert services.attach.decide(imsi(1), imei(1), Plmn("001", "01")).allowed
        context = directory.context(imsi(1).value)
        assert DeviceContext(imsi=imsi(1).value, tenant_id=TENANT, apn="iot", group="meters",
                             tz="Europe/Berlin", serving_mcc="001", active=True) == context
        inv.transition(sim.iccid, SimState.SUSPENDED, actor="test")
        suspended = directory.context(imsi(1).value)
        assert suspended is not None
        assert not suspended.active
        assert imsi(1).value == services.addresses.lookup("10.70.0.1")
    finally:
        services.close()
