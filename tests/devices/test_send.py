"""LwM2M 1.2 Send (POST /dp): a registered device pushes values, over DTLS from the
package's client and over the NoSec link from aiocoap; the values reach the server's
listeners and update what it knows of the device; unregistered senders, other content
formats and malformed SenML are refused."""

from __future__ import annotations

import json
from typing import Any

import aiocoap

from simtrust.devices import CF_SENML_JSON, Code, new_endpoint_name

from .conftest import IMEI1, IMEI2, Env, dm_client, imsi
from .test_peers import AiocoapDevice


def test_registered_devices_send_values(env: Env) -> None:
    m = env.devices.manager
    pushed: list[tuple[str, dict[Any, Any]]] = []
    env.devices.run_sync(lambda: m.report_listeners.append(
        lambda reg, values: pushed.append((reg.endpoint, dict(values)))))
    dev = dm_client(env, 1, IMEI1)
    aio = AiocoapDevice(new_endpoint_name(IMEI2, imsi(2).value))
    uri = f"coap://127.0.0.1:{env.devices.nosec_port}/dp"
    senml = json.dumps([{"bn": "/3/0/", "n": "3", "vs": "4.5.6"},
                        {"n": "9", "v": 80}]).encode()

    async def scenario() -> list[Any]:
        codes: list[Any] = []
        stranger = await aiocoap.Context.create_client_context()
        try:
            codes.append((await stranger.request(aiocoap.Message(
                code=aiocoap.POST, uri=uri, payload=senml,
                content_format=CF_SENML_JSON)).response).code)
        finally:
            await stranger.shutdown()
        await dev.register()
        codes.append(await dev.send({(3, 0, 3): "1.2.3", (6, 0, 0): 48.1}))
        ctx = await aio.register(env.devices.nosec_port or 0)
        try:
            for payload, fmt in ((senml, CF_SENML_JSON), (b"4.5.6", 0),
                                 (b"[{\"n\":", CF_SENML_JSON)):
                codes.append((await ctx.request(aiocoap.Message(
                    code=aiocoap.POST, uri=uri, payload=payload,
                    content_format=fmt)).response).code)
        finally:
            await ctx.shutdown()
            dev.close()
        return codes

    codes = env.devices.call(scenario())
    assert aiocoap.FORBIDDEN == codes[0]  # not registered
    assert Code.CHANGED == codes[1]
    assert [aiocoap.CHANGED, aiocoap.UNSUPPORTED_CONTENT_FORMAT,
            aiocoap.BAD_REQUEST] == codes[2:]
    assert [(dev.endpoint_name, {(3, 0, 3): "1.2.3", (6, 0, 0): 48.1}),
            (aio.name, {(3, 0, 3): "4.5.6", (3, 0, 9): 80})] == pushed
    assert "1.2.3" == env.devices.run_sync(lambda: m.get(dev.endpoint_name).firmware)
    assert "4.5.6" == env.devices.run_sync(lambda: m.get(aio.name).firmware)
    assert 1 == m.refused["send-not-registered"]
