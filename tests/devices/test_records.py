"""Reported firmware and radio values (LwM2M objects 3, 4 and 5) land on the inventory's
device records: read, notified or sent, from the project's client and from an aiocoap
device (an independent CoAP stack) taking a firmware rollout; a device the tenant has not
listed is listed by its first report; the CoAP loop hands reports to a writer thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simtrust.devices import CF_SENML_JSON, FirmwareCampaigns, Lwm2mClient, new_endpoint_name
from simtrust.domain import Imei
from simtrust.runtime import Runtime
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState

from .conftest import IMEI1, IMEI2, K1, OPC1, TENANT, Env, dm_client, iccid, imsi
from .test_peers import AiocoapDevice, package_server  # noqa: F401  (fixture)


def _wire(env: Env) -> None:
    inventory = env.subs.inventory

    def write(batch: Any) -> None:
        inventory.devices.record_reports(
            [(tenant, Imei(imei), fields, at) for tenant, imei, fields, at in batch],
            actor="devices")

    env.devices.keep_records(write)


def _flushed(env: Env) -> None:
    assert env.devices.records is not None
    env.devices.records.flush()


def test_read_and_sent_values_of_objects_3_4_5_reach_the_device_record(env: Env) -> None:
    _wire(env)
    inv = env.subs.inventory
    inv.add_device(TENANT, Imei(IMEI1), actor="test", label="meter in hall 2")
    dev = dm_client(env, 1, IMEI1)
    m = env.devices.manager
    dev.values[(4, 0, 4, 1)] = "2001:db8::7"

    async def scenario() -> None:
        try:
            await dev.register()
            await m.read(dev.endpoint_name, (3, 0))
            await m.read(dev.endpoint_name, (4, 0), fmt=CF_SENML_JSON)
            await m.read(dev.endpoint_name, (5, 0))
            assert 0x44 == await dev.send({(3, 0, 3): "1.0.1", (4, 0, 2): -87})
        finally:
            dev.close()

    env.devices.call(scenario())
    _flushed(env)
    device = inv.get_device(Imei(IMEI1), TENANT)
    assert "meter in hall 2" == device.label
    assert {
        "manufacturer": "simtrust", "model": "meter", "serial_number": "SN-0001",
        "firmware_version": "1.0.1", "battery_level": 100,
        "network_bearer": 7, "signal_strength_dbm": -87,
        "ip_addresses": ["10.45.0.7", "2001:db8::7"], "apns": ["meters.acme"],
        "cell_id": 26881, "mnc": 1, "mcc": 1,
        "firmware_state": 0, "firmware_update_result": 0,
    } == device.reported
    assert env.clock.now == device.reported_at
    assert device.to_json()["reported"]["firmware_version"] == "1.0.1"


def test_first_report_lists_an_unlisted_device_in_the_sims_tenant_only(env: Env) -> None:
    _wire(env)
    inv = env.subs.inventory
    env.rt.tenants.create_tenant("other", "Other Co")
    dev = dm_client(env, 2, IMEI2)

    async def scenario() -> None:
        try:
            await dev.register()
            await env.devices.manager.read(dev.endpoint_name, (3, 0, 3))
        finally:
            dev.close()

    assert inv.find_device(Imei(IMEI2), TENANT) is None
    env.devices.call(scenario())
    _flushed(env)
    device = inv.get_device(Imei(IMEI2), TENANT)
    assert {"firmware_version": "1.0.0"} == device.reported
    assert inv.find_device(Imei(IMEI2), "other") is None
    actions = [e.action for e in env.rt.audit.query(subject=f"device:{IMEI2}")]
    assert ["device.discover"] == actions


def test_an_older_report_does_not_overwrite_a_newer_one(env: Env) -> None:
    inv = env.subs.inventory
    now = env.clock.now
    inv.devices.record_reports([(TENANT, Imei(IMEI1), {"firmware_version": "2.0.0"}, now)],
                       actor="test")
    earlier = now.replace(year=now.year - 1)
    assert 0 == inv.devices.record_reports(
        [(TENANT, Imei(IMEI1), {"firmware_version": "1.0.0"}, earlier)], actor="test")
    assert {"firmware_version": "2.0.0"} == inv.get_device(Imei(IMEI1), TENANT).reported


def test_fields_outside_the_vocabulary_or_of_the_wrong_type_are_dropped(env: Env) -> None:
    inv = env.subs.inventory
    fields = {"firmware_version": "x" * 1000, "cell_id": "not a number", "secret": "k",
              "ip_addresses": ["10.0.0.1", 7], "mcc": True, "mnc": 2**70}
    inv.devices.record_reports([(TENANT, Imei(IMEI1), fields, env.clock.now)], actor="test")
    assert {"firmware_version": "x" * 255, "ip_addresses": ["10.0.0.1"]} == \
        inv.get_device(Imei(IMEI1), TENANT).reported


def test_aiocoap_device_firmware_rollout_updates_its_record(
        env: Env, package_server: str) -> None:  # noqa: F811
    _wire(env)
    inv = env.subs.inventory
    group = inv.create_group(TENANT, "fleet", actor="test")
    inv.update_sim(iccid(1), group_id=group.id, actor="test")
    device = AiocoapDevice(new_endpoint_name(IMEI1, imsi(1).value))
    campaigns = FirmwareCampaigns(env.devices.manager, step_timeout=30, fmt=CF_SENML_JSON)

    async def scenario() -> str:
        ctx = await device.register(env.devices.nosec_port or 0)
        try:
            campaign = campaigns.create(TENANT, f"{package_server}/fw-2.0.0.bin", "2.0.0",
                                        groups=[group.id], failure_threshold=0.0)
            return (await campaigns.run(campaign.campaign_id)).status
        finally:
            await ctx.shutdown()

    assert "completed" == env.devices.call(scenario())
    _flushed(env)
    reported = inv.get_device(Imei(IMEI1), TENANT).reported
    assert ("2.0.0", 0, 1) == (reported["firmware_version"], reported["firmware_state"],
                               reported["firmware_update_result"])


def test_runtime_wires_reports_to_the_inventory(tmp_path: Path) -> None:
    """The composition root's devices service writes reports without any extra wiring."""
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        rt.tenants.create_tenant(TENANT, "Acme Meters")
        rt.subscriber.inventory.add_sim(TENANT, SimSpec(
            iccid(1), imsi(1), secrets=SimSecrets(K1, OPC1, OpKind.OPC),
            state=SimState.ACTIVE), actor="test")
        services = rt.devices
        services.start()
        identity, key = services.credentials.issue("dm", imsi(1).value, TENANT)
        dev = Lwm2mClient(new_endpoint_name(IMEI1, imsi(1).value))
        dev.values.update({(0, 1, 0): f"coaps://127.0.0.1:{services.dm_port}",
                           (0, 1, 3): identity.encode(), (0, 1, 5): key})

        async def scenario() -> None:
            try:
                await dev.register()
                await services.manager.read(dev.endpoint_name, (3, 0, 3))
            finally:
                dev.close()

        services.call(scenario())
        services.stop()  # writes what is pending
        assert {"firmware_version": "1.0.0"} == \
            rt.subscriber.inventory.get_device(Imei(IMEI1), TENANT).reported
    finally:
        rt.close()
