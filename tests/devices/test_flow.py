"""A device bootstraps with its SIM-derived key, registers, is read, written, executed and
observed over DTLS (the package's own client; independent peers are in test_peers.py)."""

from __future__ import annotations

import asyncio

from simtrust.devices import (
    CF_SENML_CBOR,
    CF_SENML_JSON,
    CF_TLV,
    EnterpriseServer,
    Lwm2mClient,
    Path,
    Value,
    new_endpoint_name,
)

from .conftest import IMEI1, TENANT, Env, imsi


def test_gba_bootstrap_then_register_read_write_execute_observe(env: Env) -> None:
    identity, key = env.gba(1)
    name = new_endpoint_name(IMEI1, imsi(1).value)

    async def scenario() -> None:
        dev = Lwm2mClient(name)
        try:
            await dev.bootstrap(env.bs_uri, identity, key)
            uri, dm_identity, _ = dev.server_account()
            assert uri == f"coaps://127.0.0.1:{env.devices.dm_port}"
            assert dm_identity.startswith("dm-")
            loc = await dev.register()
            assert "rd" == loc[0]
            m = env.devices.manager
            reg = m.get(name)
            assert (imsi(1).value, IMEI1) == (reg.imsi, reg.imei)
            for fmt in (CF_SENML_CBOR, CF_SENML_JSON, CF_TLV):
                values = await m.read(name, (3, 0), fmt=fmt)
                assert "1.0.0" == values[(3, 0, 3)]
            await m.write(name, (1, 1, 1), {(1, 1, 1): 600}, fmt=CF_TLV, replace=True)
            assert 600 == dev.values[(1, 1, 1)]
            seen: list[dict[Path, Value]] = []
            await m.observe(name, (3, 0, 9), seen.append)
            dev.set((3, 0, 9), 42)
            for _ in range(200):
                if len(seen) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert 42 == seen[-1][(3, 0, 9)]
            await m.execute(name, (3, 0, 4))
            assert 0x44 == await dev.update()
            assert 0x42 == await dev.deregister()
            assert 0 == len(m)
        finally:
            dev.close()

    env.devices.call(scenario())
    assert "finished" == env.devices.bootstrap.status[name]


def test_bootstrap_adds_the_enterprise_server_account_when_the_tenant_has_one(env: Env) -> None:
    env.devices.bootstrap.enterprise = lambda tenant: EnterpriseServer(
        "coaps://lwm2m.acme.example:5684", short_server_id=7) if tenant == TENANT else None
    identity, key = env.gba(2)
    dev = Lwm2mClient(new_endpoint_name(IMEI1, imsi(2).value))

    async def scenario() -> None:
        try:
            await dev.bootstrap(env.bs_uri, identity, key, fmt=CF_SENML_CBOR)
        finally:
            dev.close()

    env.devices.call(scenario())
    uri, ent_identity, ent_key = dev.server_account(2)
    assert "coaps://lwm2m.acme.example:5684" == uri
    assert (7, 7) == (dev.values[(0, 2, 10)], dev.values[(1, 2, 0)])
    assert ent_identity.startswith("ent7-")
    assert len(ent_key) == 16
    assert ("ent7", imsi(2).value) == (
        env.devices.credentials.resolve(ent_identity, "ent7").purpose,  # type: ignore[union-attr]
        env.devices.credentials.resolve(ent_identity, "ent7").imsi)  # type: ignore[union-attr]
