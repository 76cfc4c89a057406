"""Composite operations (LwM2M 1.2: Read-Composite and Observe-Composite as FETCH /,
Write-Composite as iPATCH /, SenML only): against an aiocoap device (an independent CoAP
stack carrying FETCH and iPATCH, RFC 8132) and the package's own client over DTLS,
notifications larger than a block joined by FETCH, through the API; the path decoder
fuzzed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiocoap
import aiocoap.resource as resource
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from simtrust.api import create_app
from simtrust.devices import (
    CF_SENML_CBOR,
    CF_SENML_JSON,
    Lwm2mClient,
    decode_paths,
    encode_paths,
    new_endpoint_name,
    observe_composite,
    read_composite,
    write_composite,
)
from simtrust.errors import DecodeError, InvalidInput

from .conftest import IMEI1, IMEI2, TENANT, Env, dm_client, iccid, imsi


@given(st.binary(max_size=200), st.sampled_from([CF_SENML_JSON, CF_SENML_CBOR]))
def test_path_decoder_never_crashes(data: bytes, fmt: int) -> None:
    try:
        paths = decode_paths(fmt, data)
    except DecodeError:
        return
    assert all(1 <= len(p) <= 4 for p in paths)


def test_paths_round_trip_in_both_senml_formats() -> None:
    paths = [(3, 0, 3), (4, 0), (6,)]
    for fmt in (CF_SENML_JSON, CF_SENML_CBOR):
        assert paths == decode_paths(fmt, encode_paths(fmt, paths))
    assert [(3, 0, 1)] == decode_paths(CF_SENML_JSON, b'[{"bn":"/3/0/","n":"1"}]')
    for bad in (b"[]", b'[{"n":"/x"}]', b'{"n":"/3"}', b'[{"bn":1}]'):
        with pytest.raises(DecodeError):
            decode_paths(CF_SENML_JSON, bad)


class CompositeDevice:
    """An aiocoap server answering FETCH / and iPATCH / with SenML-JSON (the payload
    semantics written here; FETCH and iPATCH themselves are aiocoap's)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[str, Any] = {"/3/0/0": "acme", "/3/0/3": "1.2.0", "/4/0/2": -71,
                                       "/4/0/8": 4242, "/6/0/0": 45.5, "/7/0/8": 0}
        self.methods: list[str] = []
        dev = self

        class Root(resource.Resource):  # type: ignore[misc]
            async def render_fetch(self, request: aiocoap.Message) -> aiocoap.Message:
                dev.methods.append("FETCH")
                names = [rec["n"] for rec in json.loads(request.payload)]
                recs = [{"n": n, ("vs" if isinstance(v, str) else "v"): v}
                        for n, v in dev.values.items()
                        if any(n == w or n.startswith(w + "/") for w in names)]
                return aiocoap.Message(payload=json.dumps(recs).encode(),
                                       content_format=CF_SENML_JSON)

            async def render_ipatch(self, request: aiocoap.Message) -> aiocoap.Message:
                dev.methods.append("iPATCH")
                for rec in json.loads(request.payload):
                    dev.values[rec["n"]] = rec.get("vs", rec.get("v"))
                return aiocoap.Message(code=aiocoap.CHANGED)

        self.root = Root()

    async def register(self, port: int) -> aiocoap.Context:
        ctx = await aiocoap.Context.create_server_context(self.root, bind=("127.0.0.1", 0))
        req = aiocoap.Message(code=aiocoap.POST, content_format=40,
                              payload=b"</3/0>,</4/0>,</6/0>,</7/0>",
                              uri=f"coap://127.0.0.1:{port}/rd?ep={self.name}&lt=300&b=U")
        resp = await ctx.request(req).response
        assert aiocoap.CREATED == resp.code, resp
        return ctx


def test_aiocoap_device_takes_read_and_write_composite(env: Env) -> None:
    device = CompositeDevice(new_endpoint_name(IMEI1, imsi(1).value))
    m = env.devices.manager

    async def scenario() -> dict[Any, Any]:
        ctx = await device.register(env.devices.nosec_port or 0)
        try:
            await write_composite(m, device.name, {(3, 0, 14): "+01:00", (7, 0, 8): 60},
                                  fmt=CF_SENML_JSON)
            return await read_composite(m, device.name, [(3, 0, 3), (4, 0), (7, 0, 8),
                                                         (3, 0, 14)], fmt=CF_SENML_JSON)
        finally:
            await ctx.shutdown()

    values = env.devices.call(scenario())
    assert {(3, 0, 3): "1.2.0", (4, 0, 2): -71, (4, 0, 8): 4242, (7, 0, 8): 60,
            (3, 0, 14): "+01:00"} == values
    assert ["iPATCH", "FETCH"] == device.methods
    with pytest.raises(InvalidInput):
        env.devices.call(read_composite(m, device.name, [(3, 0, 3)], fmt=11542))


def test_own_client_read_write_observe_composite_over_dtls(env: Env) -> None:
    dev: Lwm2mClient = dm_client(env, 2, IMEI2)
    m = env.devices.manager
    notes: list[dict[Any, Any]] = []
    changed = asyncio.Event()

    def callback(values: dict[Any, Any]) -> None:
        notes.append(values)
        changed.set()

    async def scenario() -> dict[Any, Any]:
        try:
            await dev.register()
            await write_composite(m, dev.endpoint_name, {(3, 0, 15): "Europe/Paris",
                                                         (7, 0, 8): 30})
            got = await read_composite(m, dev.endpoint_name, [(3, 0, 15), (7, 0, 8), (6, 0)])
            await observe_composite(m, dev.endpoint_name, [(3, 0, 9), (4, 0, 2)], callback)
            changed.clear()
            dev.set((5, 0, 3), 1)  # not observed: no notification
            dev.set((4, 0, 2), -80)
            await asyncio.wait_for(changed.wait(), 30)
            changed.clear()
            dev.set((3, 0, 9), 55)
            await asyncio.wait_for(changed.wait(), 30)
            return got
        finally:
            dev.close()

    got = env.devices.call(scenario())
    assert {(3, 0, 15): "Europe/Paris", (7, 0, 8): 30, (6, 0, 0): 48.8566,
            (6, 0, 1): 2.3522, (6, 0, 5): 0} == got
    assert [{(3, 0, 9): 100, (4, 0, 2): -95}, {(3, 0, 9): 100, (4, 0, 2): -80},
            {(3, 0, 9): 55, (4, 0, 2): -80}] == notes


def test_composite_notification_larger_than_a_block_is_joined_by_fetch(env: Env) -> None:
    dev: Lwm2mClient = dm_client(env, 3, IMEI1)
    dev.values[(3, 0, 2)] = "Z" * 1800
    m = env.devices.manager
    notes: list[dict[Any, Any]] = []
    changed = asyncio.Event()

    def callback(values: dict[Any, Any]) -> None:
        notes.append(values)
        changed.set()

    async def scenario() -> None:
        try:
            await dev.register()
            await observe_composite(m, dev.endpoint_name, [(3, 0), (4, 0, 2)], callback)
            changed.clear()
            dev.set((4, 0, 2), -60)
            await asyncio.wait_for(changed.wait(), 30)
        finally:
            dev.close()

    env.devices.call(scenario())
    assert 2 == len(notes)
    assert "Z" * 1800 == notes[0][(3, 0, 2)] == notes[1][(3, 0, 2)]
    assert -60 == notes[1][(4, 0, 2)]
    assert 0 == m.endpoint.counters.malformed


@pytest.fixture
def api(env: Env) -> Iterator[Any]:
    with TestClient(create_app(env.rt)) as client:
        yield client


def test_api_read_and_write_composite(env: Env, api: Any) -> None:
    key = env.rt.tenants.create_key("tenant-admin", "k", TENANT)
    auth = {"Authorization": f"Bearer {key.secret}"}
    dev: Lwm2mClient = dm_client(env, 1, IMEI1)
    env.devices.call(dev.register())
    try:
        url = f"/v1/lwm2m/devices/{iccid(1).value}"
        wrote = api.post(f"{url}/write-composite", headers=auth,
                         json={"values": {"/3/0/14": "+02:00", "/7/0/8": 15}})
        assert 200 == wrote.status_code, wrote.text
        read = api.post(f"{url}/read-composite", headers=auth,
                        json={"paths": ["/3/0/14", "/7/0/8", "/3/0/3"], "format": "senml-json"})
        assert 200 == read.status_code, read.text
        assert {"/3/0/14": "+02:00", "/3/0/3": "1.0.0", "/7/0/8": 15} == read.json()["values"]
        bad = api.post(f"{url}/read-composite", headers=auth,
                       json={"paths": ["/3/0/3"], "format": "tlv"})
        assert 422 == bad.status_code
    finally:
        env.devices.call(asyncio.sleep(0))
        dev.close()
