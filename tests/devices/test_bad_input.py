"""Bad input on the DTLS links: replayed records, malformed CoAP, oversized and block-wise
requests, registration floods, wrong credentials: refused, counted, the server keeps serving."""

from __future__ import annotations

import asyncio
from typing import Any

from simtrust.devices import (
    CON,
    Code,
    Lwm2mClient,
    Message,
    Opt,
)

from .conftest import IMEI1, IMEI2, Env, dm_client


def test_replayed_dtls_record_is_dropped(env: Env) -> None:
    dev = dm_client(env, 1, IMEI1)
    counters = env.devices.manager.endpoint.counters

    async def scenario() -> tuple[int, int]:
        try:
            await dev.register()
            link = dev._links[0]
            sent: list[bytes] = []
            transport: Any = link._transport
            original = transport.sendto

            def tap(data: bytes, *rest: Any) -> None:
                sent.append(data)
                original(data, *rest)

            transport.sendto = tap
            assert Code.CHANGED == await dev.update()
            before = env.devices.manager.get(dev.endpoint_name).updated_at
            dups = counters.duplicates
            original(sent[0])  # the same record again, byte for byte
            await asyncio.sleep(0.05)
            assert before == env.devices.manager.get(dev.endpoint_name).updated_at
            return dups, counters.duplicates
        finally:
            dev.close()

    dups_before, dups_after = env.devices.call(scenario())
    # mbed TLS's anti-replay window (RFC 6347 §4.1.2.6) drops it before CoAP sees it.
    assert dups_before == dups_after


def test_malformed_oversized_blockwise_and_flood(env: Env) -> None:
    dev = dm_client(env, 2, IMEI2)
    m = env.devices.manager

    async def scenario() -> list[int]:
        try:
            await dev.register()
            peer = dev._dm
            assert peer is not None
            link = dev._links[0]
            link.send(peer, b"\x40\x01")  # shorter than a CoAP header
            link.send(peer, b"\x4f\x01\x00\x01")  # token length 15
            link.send(peer, b"\x40\x01\x00\x02" + b"\xff" * 1400)  # over the size limit
            codes = []
            block = Message(CON, Code.POST, 0, b"", (
                (Opt.URI_PATH, b"rd"), (Opt.URI_QUERY, f"ep={dev.endpoint_name}".encode()),
                (Opt.BLOCK1, b"\x0e"), (Opt.SIZE1, (1 << 20).to_bytes(3, "big"))),
                b"</3/0>" * 200)
            codes.append((await dev.coap.request(peer, block)).code)
            unknown_critical = Message(CON, Code.POST, 0, b"", ((Opt.URI_PATH, b"rd"),
                                                                (9, b"x")))
            codes.append((await dev.coap.request(peer, unknown_critical)).code)
            garbage_links = Message(CON, Code.POST, 0, b"", (
                (Opt.URI_PATH, b"rd"), (Opt.URI_QUERY, f"ep={dev.endpoint_name}".encode())),
                b"<unterminated")
            codes.append((await dev.coap.request(peer, garbage_links)).code)
            for _ in range(12):
                codes.append((await dev.coap.request(peer, Message(CON, Code.POST, 0, b"", (
                    (Opt.URI_PATH, b"rd"),
                    (Opt.URI_QUERY, f"ep={dev.endpoint_name}".encode()))))).code)
            # Still serving: an ordinary update goes through.
            dev.location = ["rd", m.get(dev.endpoint_name).reg_id]
            codes.append(await dev.update())
            return codes
        finally:
            dev.close()

    codes = env.devices.call(scenario())
    assert [Code.REQUEST_ENTITY_TOO_LARGE, Code.BAD_OPTION, Code.BAD_REQUEST] == codes[:3]
    assert Code.TOO_MANY_REQUESTS in codes[3:15]
    assert Code.CHANGED == codes[-1]
    counters = m.endpoint.counters
    assert counters.malformed >= 3
    assert m.refused["flood"] >= 1


def test_imei_change_and_silence_raise_alerts(env: Env) -> None:
    first = dm_client(env, 3, IMEI1)
    m = env.devices.manager

    async def register(dev: Lwm2mClient) -> None:
        try:
            await dev.register()
        finally:
            dev.close()

    env.devices.call(register(first))
    second = dm_client(env, 3, IMEI2)  # the same SIM now in another device
    env.devices.call(register(second))
    kinds = [a.kind for a in env.alerts.alerts]
    assert ["imei-changed"] == kinds
    assert IMEI1 == env.alerts.alerts[0].document()["previous_imei"]
    env.clock.advance(seconds=first.lifetime + 1)
    gone = env.devices.run_sync(m.expire)
    assert [second.endpoint_name] == [r.endpoint for r in gone]
    assert "stopped-registering" == env.alerts.alerts[-1].kind


def test_queue_mode_operation_waits_for_the_device_to_wake(env: Env) -> None:
    dev = dm_client(env, 1, IMEI1)
    m = env.devices.manager

    async def scenario() -> tuple[list[str], Any]:
        try:
            await dev.register(queue=True)
            env.clock.advance(seconds=200)  # past the awake window: the device sleeps
            read = asyncio.get_running_loop().create_task(m.read(dev.endpoint_name, (3, 0, 3)))
            for _ in range(100):
                if m.queued():
                    break
                await asyncio.sleep(0.01)
            waiting = m.queued()
            assert not read.done()
            assert Code.CHANGED == await dev.update()  # wakes up: the queued read goes out
            return waiting, await asyncio.wait_for(read, 10)
        finally:
            dev.close()

    waiting, values = env.devices.call(scenario())
    assert [dev.endpoint_name] == waiting
    assert {(3, 0, 3): "1.0.0"} == values


def test_clean_close_is_counted_apart_from_dropped_records(env: Env) -> None:
    """A device's close_notify ends its session as a close, not as a dropped record, so
    the dropped-records counter keeps meaning refused input."""
    dev = dm_client(env, 1, IMEI1)
    counters = env.devices.manager.endpoint.counters

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        await dev.register()
        before = counters.as_dict()
        dev.close()  # close_notify
        for _ in range(500):  # until the server has ended the session; bounded wait
            if counters.as_dict() != before:
                break
            await asyncio.sleep(0.01)
        return before, counters.as_dict()

    before, after = env.devices.call(scenario())
    assert after["closed"] == before["closed"] + 1
    assert after["dropped_records"] == before["dropped_records"]
