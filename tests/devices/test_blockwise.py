"""Block-wise transfers (RFC 7959): firmware pushed to /5/0/0 as Block1 blocks and reads
larger than one block joined from Block2 answers, against aiocoap (an independent CoAP
stack that assembles Block1 and slices Block2 itself) and the package's own client over
DTLS; the Block option codec fuzzed; the serving side's refusals."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiocoap
import aiocoap.resource as resource
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.devices import (
    CF_SENML_JSON,
    CON,
    Code,
    FirmwareCampaigns,
    Lwm2mClient,
    Message,
    Opt,
    new_endpoint_name,
)
from simtrust.devices._blockwise import (
    CONTINUE,
    REQUEST_ENTITY_INCOMPLETE,
    Block,
    Block1Assembler,
    block2_slice,
    decode_block,
    encode_block,
)
from simtrust.errors import DecodeError

from .conftest import IMEI1, IMEI2, TENANT, Env, dm_client, iccid, imsi
from .test_peers import CLIENTS, AiocoapDevice, coap_client, senml

PACKAGE = b"firmware 3.0.0\n" + bytes(range(256)) * 40  # 10,255 bytes: 21 blocks of 512


@given(st.binary(max_size=6))
def test_block_option_decoder_never_crashes(raw: bytes) -> None:
    try:
        block = decode_block(raw)
    except DecodeError:
        assert len(raw) > 3 or (raw and raw[-1] & 7 == 7)
        return
    assert decode_block(encode_block(block)) == block


def test_block_option_codec_and_reserved_size() -> None:
    assert Block(5, True, 2) == decode_block(encode_block(Block(5, True, 2)))
    assert b"" == encode_block(Block(0, False, 0))
    for bad in (b"\x0f", b"\x01\x02\x03\x04"):
        try:
            decode_block(bad)
        except DecodeError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def _block1(num: int, more: bool, payload: bytes, szx: int = 0) -> Message:
    return Message(CON, Code.PUT, num, b"t", ((Opt.URI_PATH, b"5"),
                                             (Opt.BLOCK1, encode_block(Block(num, more, szx)))),
                   payload)


def test_block1_assembler_refuses_gaps_wrong_sizes_and_oversized_bodies() -> None:
    refused: list[str] = []
    asm = Block1Assembler(64, on_refuse=refused.append)
    first = asm.feed("k", _block1(0, True, b"a" * 16))
    assert isinstance(first, Message)
    assert CONTINUE == first.code
    gap = asm.feed("k", _block1(2, True, b"c" * 16))
    assert isinstance(gap, Message)
    assert REQUEST_ENTITY_INCOMPLETE == gap.code
    short = asm.feed("k", _block1(0, True, b"a" * 3))
    assert isinstance(short, Message)
    assert Code.BAD_REQUEST == short.code
    big = asm.feed("k", _block1(4, False, b"e" * 16))
    assert isinstance(big, Message)
    assert Code.REQUEST_ENTITY_TOO_LARGE == big.code
    assert 64 == big.uint(Opt.SIZE1)
    asm.feed("k", _block1(0, True, b"a" * 16))
    assert b"a" * 16 + b"bb" == asm.feed("k", _block1(1, False, b"bb"))
    assert ["incomplete", "bad-block", "too-large"] == refused
    assert 0 == len(asm)


def test_block2_slices_follow_the_requested_block() -> None:
    body = bytes(range(200))
    req = Message(CON, Code.GET, 1, b"t", ((Opt.BLOCK2, encode_block(Block(1, False, 2))),))
    part = block2_slice(req, req.reply(Code.CONTENT, body))
    assert body[64:128] == part.payload
    assert Block(1, True, 2) == decode_block(part.first(Opt.BLOCK2) or b"")
    assert 200 == part.uint(Opt.SIZE2)


class BlockDevice(AiocoapDevice):
    """The aiocoap device with the Package resource (/5/0/0, written block-wise) and a
    Device object larger than one block."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        dev = self
        self.received: list[int] = []

        class Package(resource.Resource):  # type: ignore[misc]
            async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
                dev.received.append(len(request.payload))
                dev._set(1, 0)
                dev._package = request.payload
                dev._set(2, 0)
                return aiocoap.Message(code=aiocoap.CHANGED)

        class Device(resource.Resource):  # type: ignore[misc]
            async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
                values: dict[int, Any] = {0: "simtrust", 2: "S" * 1500, 3: dev.version}
                return aiocoap.Message(payload=senml("/3/0", values),
                                       content_format=CF_SENML_JSON)

        self.site.add_resource(["5", "0", "0"], Package())
        self.site.add_resource(["3", "0"], Device())

    async def install(self) -> None:
        self._set(3, 0)
        await asyncio.sleep(0)
        self.version = self._package.split(b"\n")[0].decode().split()[-1]
        self._set(0, 1)


def test_firmware_pushed_block_wise_to_aiocoap_devices_and_large_reads(env: Env) -> None:
    inv = env.subs.inventory
    group = inv.create_group(TENANT, "push", actor="test")
    inv.update_sim(iccid(1), group_id=group.id, actor="test")
    inv.update_sim(iccid(2), group_id=group.id, actor="test")
    devices = [BlockDevice(new_endpoint_name(IMEI1, imsi(1).value)),
               BlockDevice(new_endpoint_name(IMEI2, imsi(2).value))]
    campaigns = FirmwareCampaigns(env.devices.manager, step_timeout=30, fmt=CF_SENML_JSON)

    async def scenario() -> tuple[dict[str, Any], Any]:
        contexts = [await d.register(env.devices.nosec_port or 0) for d in devices]
        try:
            values = await env.devices.manager.read(devices[0].name, (3, 0), fmt=CF_SENML_JSON)
            campaign = campaigns.create(TENANT, "", "3.0.0", groups=[group.id],
                                        failure_threshold=0.0, package=PACKAGE)
            return (await campaigns.run(campaign.campaign_id)).to_json(), values
        finally:
            for ctx in contexts:
                await ctx.shutdown()

    result, values = env.devices.call(scenario())
    assert "S" * 1500 == values[(3, 0, 2)]  # joined from Block2 answers (RFC 7959 §2.4)
    assert ("completed", "push", len(PACKAGE)) == (
        result["status"], result["delivery"], result["package_size"])
    assert {d.name: "updated" for d in devices} == result["results"]
    for dev in devices:
        assert [len(PACKAGE)] == dev.received  # aiocoap reassembled the Block1 blocks
        assert "3.0.0" == dev.version
        assert [1, 2, 3, 0] == dev.history


def test_own_client_takes_a_pushed_package_over_dtls(env: Env) -> None:
    installed: list[bytes] = []

    def install(package: bytes) -> str | None:
        installed.append(package)
        return package.split(b"\n")[0].decode().split()[-1]

    dev: Lwm2mClient = dm_client(env, 2, IMEI2)
    dev.install = install
    dev.values[(3, 0, 2)] = "N" * 2000
    campaigns = FirmwareCampaigns(env.devices.manager, step_timeout=30)

    async def scenario() -> tuple[dict[str, Any], Any]:
        try:
            await dev.register()
            values = await env.devices.manager.read(dev.endpoint_name, (3, 0))
            campaign = campaigns.create(TENANT, "", "3.0.0", stages=[[dev.endpoint_name]],
                                        package=PACKAGE)
            return (await campaigns.run(campaign.campaign_id)).to_json(), values
        finally:
            dev.close()

    result, values = env.devices.call(scenario())
    assert "N" * 2000 == values[(3, 0, 2)]
    assert "completed" == result["status"], result
    assert [hashlib.sha256(PACKAGE).digest()] == [hashlib.sha256(p).digest() for p in installed]
    assert "3.0.0" == dev.values[(3, 0, 3)]


@pytest.mark.parametrize("binary", CLIENTS)
def test_coap_client_registers_with_a_block1_body(env: Env, binary: str) -> None:
    """libcoap sends a registration whose link format does not fit its 64-byte blocks
    as Block1 blocks; the server assembles them, registers and answers the last one."""
    key = b"coap-client-key9"
    identity, _ = env.devices.credentials.issue("dm", imsi(2).value, TENANT, key=key)
    name = new_endpoint_name(IMEI2, imsi(2).value)
    links = ",".join(f"</{o}/{i}>" for o in (3, 4, 5, 6, 7) for i in range(12))
    assert len(links) > 400
    done = coap_client(binary, "-m", "post", "-u", identity, "-k", key.decode(), "-b", "64",
                       "-t", "40", "-e", links,
                       f"coaps://127.0.0.1:{env.devices.dm_port}/rd?ep={name}&lt=120")
    assert 0 == done.returncode, done.stderr
    reg = env.devices.run_sync(lambda: env.devices.manager.get(name))
    assert 60 == len(reg.objects())
    assert "/7/11" == reg.objects()[-1]


def test_block1_registration_over_the_limit_is_refused(env: Env) -> None:
    dev: Lwm2mClient = dm_client(env, 1, IMEI1)
    m = env.devices.manager

    async def scenario() -> list[int]:
        try:
            peer = await dev._connect(*dev.server_account())
            codes = []
            for num in range(40):  # 40 KiB announced in 1 KiB blocks: 4.13 once over 16 KiB
                block = Message(CON, Code.POST, 0, b"", (
                    (Opt.URI_PATH, b"rd"),
                    (Opt.URI_QUERY, f"ep={dev.endpoint_name}".encode()),
                    (Opt.BLOCK1, encode_block(Block(num, True, 6)))), b"x" * 1024)
                code = (await dev.coap.request(peer, block)).code
                codes.append(code)
                if code != CONTINUE:
                    break
            return codes
        finally:
            dev.close()

    codes = env.devices.call(scenario())
    assert [CONTINUE] * 16 + [Code.REQUEST_ENTITY_TOO_LARGE] == codes
    assert 1 == m.refused["block-too-large"]
    assert 0 == len(m)


def test_observe_notifications_larger_than_a_block_are_joined(env: Env) -> None:
    dev: Lwm2mClient = dm_client(env, 3, IMEI1)
    dev.values[(3, 0, 2)] = "Z" * 1800
    m = env.devices.manager

    async def scenario() -> list[dict[Any, Any]]:
        seen: list[dict[Any, Any]] = []
        changed = asyncio.Event()

        def callback(values: dict[Any, Any]) -> None:
            seen.append(values)
            changed.set()

        try:
            await dev.register()
            await m.observe(dev.endpoint_name, (3, 0), callback)  # first answer: Block2
            changed.clear()
            dev.set((3, 0, 9), 42)  # a notification of ~1.9 KiB: block 0, then GETs
            await asyncio.wait_for(changed.wait(), 30)
            return seen
        finally:
            dev.close()

    seen = env.devices.call(scenario())
    assert 2 == len(seen)
    assert "Z" * 1800 == seen[0][(3, 0, 2)] == seen[1][(3, 0, 2)]
    assert 42 == seen[1][(3, 0, 9)]
    assert 0 == m.endpoint.counters.malformed
