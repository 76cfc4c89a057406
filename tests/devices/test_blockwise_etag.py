"""ETags on block-wise transfers (RFC 7252 §5.10.6, RFC 7959 §2.4 and §3.4): an aiocoap
device whose Device object changes while the server fetches its blocks is read again
from block 0 and the server gets one whole representation, never a mix; a resource that
never holds still is given up after a bounded number of restarts; the package's own
client marks every block of a representation with the same ETag, notifications too."""

from __future__ import annotations

import asyncio
from typing import Any

import aiocoap
import aiocoap.resource as resource
import pytest

from simtrust.devices import (
    CF_SENML_JSON,
    CON,
    Code,
    Lwm2mClient,
    Message,
    OperationFailed,
    Opt,
    new_endpoint_name,
)
from simtrust.devices._blockwise import (
    MAX_RESTARTS,
    Block,
    block2_slice,
    encode_block,
    representation_etag,
)

from .conftest import IMEI1, Env, dm_client, imsi
from .test_peers import AiocoapDevice, senml


class ChangingDevice(AiocoapDevice):
    """/3/0 is larger than one block; its serial number changes after each of the first
    ``changes`` renders. The resource slices its own Block2 answers (aiocoap would
    otherwise serve the later blocks from the first render), each with the ETag of the
    representation it slices."""

    def __init__(self, name: str, *, changes: int) -> None:
        super().__init__(name)
        dev = self
        self.renders = 0

        class Device(resource.Resource):  # type: ignore[misc]
            async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
                return False  # it slices its own answers

            async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
                dev.renders += 1
                generation = min(dev.renders - 1, changes)
                payload = senml("/3/0", {0: "simtrust", 2: chr(65 + generation % 26) * 1500})
                whole = aiocoap.Message(code=aiocoap.CONTENT, payload=payload,
                                        content_format=CF_SENML_JSON,
                                        etag=representation_etag(payload))
                block = request.opt.block2
                num, szx = (0, 5) if block is None else (block.block_number,
                                                          block.size_exponent)
                return whole._extract_block(num, szx, 1024)

        self.site.add_resource(["3", "0"], Device())


def test_block2_slices_carry_one_etag_per_representation() -> None:
    body = bytes(range(200))
    tags = set()
    for num in range(4):
        req = Message(CON, Code.GET, 1, b"t", ((Opt.BLOCK2, encode_block(Block(num, False, 2))),))
        tags.add(block2_slice(req, req.reply(Code.CONTENT, body)).first(Opt.ETAG))
    assert {representation_etag(body)} == tags
    other = Message(CON, Code.GET, 1, b"t", ((Opt.BLOCK2, encode_block(Block(0, False, 2))),))
    assert representation_etag(body) != block2_slice(
        other, other.reply(Code.CONTENT, body[::-1])).first(Opt.ETAG)
    small = Message(CON, Code.GET, 1, b"t", ())
    assert None is block2_slice(small, small.reply(Code.CONTENT, b"x")).first(Opt.ETAG)


def test_a_representation_changing_mid_transfer_is_read_again_whole(env: Env) -> None:
    device = ChangingDevice(new_endpoint_name(IMEI1, imsi(1).value), changes=1)

    async def scenario() -> dict[Any, Any]:
        ctx = await device.register(env.devices.nosec_port or 0)
        try:
            return await env.devices.manager.read(device.name, (3, 0), fmt=CF_SENML_JSON)
        finally:
            await ctx.shutdown()

    values = env.devices.call(scenario())
    # block 0 came from "A" * 1500, block 1 from "B" * 1500: read again from block 0
    assert "B" * 1500 == values[(3, 0, 2)]
    assert device.renders >= 4


def test_a_representation_that_never_holds_still_is_given_up(env: Env) -> None:
    device = ChangingDevice(new_endpoint_name(IMEI1, imsi(1).value), changes=10_000)

    async def scenario() -> None:
        ctx = await device.register(env.devices.nosec_port or 0)
        try:
            await env.devices.manager.read(device.name, (3, 0), fmt=CF_SENML_JSON)
        finally:
            await ctx.shutdown()

    with pytest.raises(OperationFailed, match="kept changing"):
        env.devices.call(scenario())
    assert device.renders == 2 + 2 * MAX_RESTARTS


def test_own_client_notifications_and_reads_carry_the_etag(env: Env) -> None:
    dev: Lwm2mClient = dm_client(env, 3, IMEI1)
    dev.values[(3, 0, 2)] = "Z" * 1800
    m = env.devices.manager
    tags: list[bytes | None] = []
    original = m.endpoint.request

    async def tap(peer: Any, msg: Message, **kw: Any) -> Message:
        answer = await original(peer, msg, **kw)
        if answer.first(Opt.BLOCK2) is not None:
            tags.append(answer.first(Opt.ETAG))
        return answer

    m.endpoint.request = tap  # type: ignore[method-assign]

    async def scenario() -> None:
        changed = asyncio.Event()
        try:
            await dev.register()
            await m.read(dev.endpoint_name, (3, 0))
            await m.observe(dev.endpoint_name, (3, 0), lambda _v: changed.set())
            changed.clear()
            dev.set((3, 0, 9), 42)
            await asyncio.wait_for(changed.wait(), 30)
        finally:
            dev.close()

    env.devices.call(scenario())
    assert tags
    assert None not in tags
    assert len(set(tags)) >= 2  # the notification is another representation
