"""The DTLS server link reads a burst of datagrams in one pass of the loop: every record is
still decrypted and replay-checked, in order, and a replayed record inside the burst is
dropped as before."""

from __future__ import annotations

import asyncio
from typing import Any

from simtrust.devices import CoapEndpoint, DtlsClientLink, DtlsServerLink, Peer, PskEntry

KEY = b"burst-test-key-1"


async def _burst(count: int, replay: tuple[int, ...]) -> tuple[list[bytes], int, Any]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    counter = CoapEndpoint(lambda p, m: None)

    def seen(peer: Peer, data: bytes) -> None:
        got.append(data)

    counter.datagram = seen  # type: ignore[method-assign]
    server = DtlsServerLink(counter, lambda _i: PskEntry(KEY, None, None, "dm"))
    transport, _ = await loop.create_datagram_endpoint(lambda: server,
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    client = DtlsClientLink(CoapEndpoint(lambda p, m: None), "burst", KEY)
    await loop.create_datagram_endpoint(lambda: client, remote_addr=("127.0.0.1", port))
    peer = await client.handshake()
    wakeups = [0]
    first = server.datagram_received

    def counted(data: bytes, addr: tuple[str, int]) -> None:
        wakeups[0] += 1
        first(data, addr)

    server.datagram_received = counted  # type: ignore[method-assign]
    sent: list[bytes] = []
    ctransport: Any = client._transport
    original = ctransport.sendto
    ctransport.sendto = lambda data, *rest: (sent.append(data), original(data, *rest))
    for i in range(count):  # no yield in between: one burst on the server's socket
        client.send(peer, b"\x50\x45\x00" + bytes([i]) + b"x" * 24)
    for i in replay:
        original(sent[i])  # the same record again, byte for byte
    for _ in range(200):
        await asyncio.sleep(0.005)
        if len(got) >= count:
            break
    await asyncio.sleep(0.02)
    client.close()
    transport.close()
    await asyncio.sleep(0)
    return got, wakeups[0], server._reader


def test_a_burst_is_read_in_few_loop_passes_in_order_and_replays_are_dropped() -> None:
    got, wakeups, reader = asyncio.run(_burst(40, (0, 5, 39)))
    assert [bytes([i]) for i in range(40)] == [d[3:4] for d in got]
    assert wakeups < 40  # the transport handed over the first of each batch only
    assert reader is None  # connection_lost released the duplicate descriptor
