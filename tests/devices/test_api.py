"""The LwM2M and firmware-campaign API: a tenant sees and drives only its own devices;
another tenant's SIM or campaign answers like a missing one."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.devices import Lwm2mClient, new_endpoint_name

from .conftest import IMEI1, TENANT, Env, iccid, imsi


@pytest.fixture
def api(env: Env) -> Iterator[Any]:
    with TestClient(create_app(env.rt)) as client:
        yield client


def headers(env: Env, role: str, tenant: str | None) -> dict[str, str]:
    key = env.rt.tenants.create_key(role, "k", tenant)
    return {"Authorization": f"Bearer {key.secret}"}


def test_tenant_reads_writes_executes_its_device(env: Env, api: Any) -> None:
    env.rt.tenants.create_tenant("globex", "Globex")
    acme = headers(env, "tenant-admin", TENANT)
    globex = headers(env, "tenant-admin", "globex")
    operator = headers(env, "operator-admin", None)
    made = api.post("/v1/lwm2m/bootstrap-psks", json={"imsi": imsi(1).value}, headers=acme)
    assert 201 == made.status_code, made.text
    assert made.json()["identity"].startswith("bootstrap-")
    assert 404 == api.post("/v1/lwm2m/bootstrap-psks", json={"imsi": imsi(1).value},
                           headers=globex).status_code
    dev = Lwm2mClient(new_endpoint_name(IMEI1, imsi(1).value))
    psk = made.json()

    async def up() -> None:
        await dev.bootstrap(psk["bootstrap_uri"].replace("localhost", "127.0.0.1"),
                            psk["identity"], bytes.fromhex(psk["key_hex"]))
        await dev.register()

    env.devices.call(up())
    try:
        listed = api.get("/v1/lwm2m/devices", headers=acme).json()
        assert [IMEI1] == [d["imei"] for d in listed]
        assert [] == api.get("/v1/lwm2m/devices", headers=globex).json()
        sim = iccid(1).value
        assert sim == api.get(f"/v1/lwm2m/devices/{sim}", headers=acme).json()["iccid"]
        hidden = api.get(f"/v1/lwm2m/devices/{sim}", headers=globex)
        nobody = api.get(f"/v1/lwm2m/devices/{iccid(77).value}", headers=globex)
        assert (404, "application/problem+json") == (hidden.status_code,
                                                     hidden.headers["content-type"])
        assert hidden.json()["detail"].replace(sim, "x") == \
            nobody.json()["detail"].replace(iccid(77).value, "x")
        read = api.post(f"/v1/lwm2m/devices/{sim}/read",
                        json={"path": "/3/0", "format": "tlv"}, headers=acme)
        assert 200 == read.status_code, read.text
        assert "1.0.0" == read.json()["values"]["/3/0/3"]
        wrote = api.post(f"/v1/lwm2m/devices/{sim}/write",
                         json={"path": "/1/1/1", "values": {"/1/1/1": 900}}, headers=acme)
        assert 200 == wrote.status_code, wrote.text
        assert 900 == dev.values[(1, 1, 1)]
        bad = api.post(f"/v1/lwm2m/devices/{sim}/write",
                       json={"path": "/1/1", "values": {"/3/0/1": "x"}}, headers=acme)
        assert 400 == bad.status_code
        assert 200 == api.post(f"/v1/lwm2m/devices/{sim}/execute", json={"path": "/3/0/4"},
                               headers=acme).status_code
        refused = api.post(f"/v1/lwm2m/devices/{sim}/execute", json={"path": "/3/0/3"},
                           headers=acme)
        assert 502 == refused.status_code
        stats = api.get("/v1/lwm2m/stats", headers=operator).json()
        assert 1 == stats["registered"]
        assert 403 == api.get("/v1/lwm2m/stats", headers=acme).status_code
        group = env.subs.inventory.create_group(TENANT, "meters", actor="test")
        env.subs.inventory.update_sim(iccid(1), group_id=group.id, actor="test")
        env.devices.run_sync(lambda: env.devices.manager.get(dev.endpoint_name))
        config = api.post("/v1/fota/config", json={"group_id": group.id, "path": "/1/1",
                                                    "values": {"/1/1/3": 3600}}, headers=acme)
        assert 200 == config.status_code, config.text
    finally:
        dev.close()


def test_campaign_of_another_tenant_answers_like_a_missing_one(env: Env, api: Any) -> None:
    env.rt.tenants.create_tenant("globex", "Globex")
    acme = headers(env, "tenant-admin", TENANT)
    globex = headers(env, "tenant-admin", "globex")
    identity, key = env.devices.credentials.issue("dm", imsi(2).value, TENANT)
    dev = Lwm2mClient(new_endpoint_name(IMEI1, imsi(2).value))
    dev.values.update({(0, 1, 0): f"coaps://127.0.0.1:{env.devices.dm_port}",
                       (0, 1, 3): identity.encode(), (0, 1, 5): key})
    group = env.subs.inventory.create_group(TENANT, "meters", actor="test")
    env.subs.inventory.update_sim(iccid(2), group_id=group.id, actor="test")
    env.devices.call(dev.register())
    try:
        made = api.post("/v1/fota/campaigns", json={
            "package_uri": "http://127.0.0.1:9/fw.bin", "version": "2.0.0",
            "groups": [group.id]}, headers=acme)
        assert 201 == made.status_code, made.text
        cid = made.json()["campaign_id"]
        mine = api.get(f"/v1/fota/campaigns/{cid}", headers=acme)
        assert 200 == mine.status_code
        theirs = api.get(f"/v1/fota/campaigns/{cid}", headers=globex)
        missing = api.get("/v1/fota/campaigns/000000000000", headers=globex)
        assert (404, missing.json()) == (theirs.status_code, theirs.json() | {
            "instance": missing.json()["instance"]})
        assert [] == api.get("/v1/fota/campaigns", headers=globex).json()
        empty = api.post("/v1/fota/campaigns", json={
            "package_uri": "http://127.0.0.1:9/fw.bin", "version": "2.0.0",
            "groups": [group.id + 1000]}, headers=acme)
        assert 400 == empty.status_code
        pushed = api.post("/v1/fota/campaigns", json={
            "package_base64": base64.b64encode(b"firmware 2.0.0").decode(), "version": "2.0.0",
            "groups": [group.id]}, headers=acme)
        assert 201 == pushed.status_code, pushed.text
        assert ("push", 14, "") == (pushed.json()["delivery"], pushed.json()["package_size"],
                                    pushed.json()["package_uri"])
        for bad in ({"package_base64": "not base64!"},
                    {"package_base64": "AAAA", "package_uri": "http://127.0.0.1:9/fw.bin"},
                    {}):
            refused = api.post("/v1/fota/campaigns", json={
                "version": "2.0.0", "groups": [group.id], **bad}, headers=acme)
            assert 400 == refused.status_code, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        env.devices.call(asyncio.sleep(0))
        dev.close()
