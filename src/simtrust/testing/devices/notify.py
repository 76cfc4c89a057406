"""Observe notifications (RFC 7641 §4.2, LwM2M Core §6.4.1) sent from a separate process.

:func:`notification_load` is one LwM2M device over DTLS 1.2 PSK (the package's own
client): it registers, waits until the server observes /3/0/9, then changes the resource
``count`` times, each change a SenML-CBOR notification (the same payload as the
in-process benchmark pass). :func:`record_load` sends ``count`` small DTLS application
records through one session to a receiver that only counts them (the limit of the run).

Notifications are non-confirmable, so the device cannot see how fast the server drains
them: the server's side counts every delivery in a :class:`SharedCount` (an 8-byte
file mapping both processes share) and the sender keeps at most :data:`WINDOW`
datagrams ahead of that count, as the in-process pass does, yielding its core while it
waits. The rate is measured on the
server's side (:class:`Drain`: deliveries between the first and the last one over the
time between them), not by the sender.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time
from pathlib import Path

from simtrust.devices import CoapEndpoint, DtlsClientLink, Lwm2mClient

__all__ = ["WINDOW", "Drain", "SharedCount", "notification_load", "record_load"]

#: Datagrams the sender keeps in flight ahead of the server's count.
WINDOW = 32
#: How long the sender waits for the count to move before it takes a datagram as lost.
STALL_S = 0.05
_COUNT = struct.Struct("<q")


class SharedCount:
    """A counter in an 8-byte file mapping: one process writes it, the other reads it."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        if create:
            Path(path).write_bytes(bytes(_COUNT.size))
        self.path = str(path)
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), _COUNT.size)

    def read(self) -> int:
        value: int = _COUNT.unpack_from(self._map)[0]
        return value

    def write(self, value: int) -> None:
        _COUNT.pack_into(self._map, 0, value)

    def close(self) -> None:
        self._map.close()


class Drain:
    """The server's side of a run: :meth:`bump` on every delivery publishes the count
    and notes the time of the ``start``-th delivery and of the last one."""

    def __init__(self, shared: SharedCount, start: int = 1) -> None:
        self.shared = shared
        self.count = 0
        self._start = start
        self.first = 0.0
        self.last = 0.0

    def bump(self) -> None:
        self.count += 1
        self.shared.write(self.count)
        self.last = time.perf_counter()
        if self.count == self._start:
            self.first = self.last

    def per_s(self) -> float:
        """Deliveries per second after the ``start``-th (0 when fewer than two)."""
        if self.count <= self._start or self.last <= self.first:
            return 0.0
        return (self.count - self._start) / (self.last - self.first)


async def _paced(shared: SharedCount, ahead: int) -> None:
    """Wait until fewer than WINDOW datagrams are in flight (``ahead`` = sent minus the
    count at which they are all delivered); a count that stops moving is a loss."""
    if ahead - shared.read() <= WINDOW:
        return
    moved = time.monotonic()
    seen = shared.read()
    while ahead - seen > WINDOW:
        # Give the core away first: where the server shares it, a spinning sender would
        # take the CPU the server needs to drain the window.
        os.sched_yield()
        await asyncio.sleep(0)
        now = shared.read()
        if now != seen:
            seen, moved = now, time.monotonic()
        elif time.monotonic() - moved > STALL_S:
            return


async def _notifications(uri: str, device: tuple[str, str, bytes], count: int,
                         counter: str) -> float:
    shared = SharedCount(counter)
    name, identity, key = device
    client = Lwm2mClient(name)
    client.values.update({(0, 1, 0): uri, (0, 1, 3): identity.encode(), (0, 1, 5): key})
    try:
        await client.register()
        deadline = time.monotonic() + 120
        while shared.read() < 1:  # the server has the current value: it observes
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not observe /3/0/9")
            await asyncio.sleep(0.001)
        work = 0.0
        for i in range(count):
            began = time.process_time()
            client.set((3, 0, 9), i % 100)
            work += time.process_time() - began
            await _paced(shared, i + 2)  # the current value plus i + 1 notifications
        await asyncio.sleep(0.2)  # the last datagrams drain before the session closes
    finally:
        client.close()
        shared.close()
    return work * 1e6 / max(count, 1)


def notification_load(uri: str, device: tuple[str, str, bytes], count: int,
                      counter: str) -> float:
    """Register ``device`` ((endpoint name, PSK identity, key)) at ``uri``, wait to be
    observed on /3/0/9, send ``count`` notifications paced by the shared ``counter``
    (a :class:`SharedCount` path the server bumps per delivery). Returns the device's
    CPU per notification in µs (``Lwm2mClient.set``: select, encode, DTLS write, send)."""
    return asyncio.run(_notifications(uri, device, count, counter))


async def _records(port: int, identity: str, key: bytes, count: int, counter: str) -> int:
    shared = SharedCount(counter)
    loop = asyncio.get_running_loop()
    link = DtlsClientLink(CoapEndpoint(lambda p, m: None), identity, key)
    try:
        await loop.create_datagram_endpoint(lambda: link, remote_addr=("127.0.0.1", port))
        peer = await link.handshake()
        payload = b"\x50\x45\x00\x01" + b"x" * 24  # a NON CoAP message, as the pass sends
        for i in range(count):
            link.send(peer, payload)
            await _paced(shared, i + 1)
        await asyncio.sleep(0.2)
    finally:
        link.close()
        shared.close()
    return count


def record_load(port: int, identity: str, key: bytes, count: int, counter: str) -> int:
    """``count`` small application records through one DTLS PSK session to ``port``,
    paced by the shared ``counter`` the receiver bumps. Returns ``count``."""
    return asyncio.run(_records(port, identity, key, count, counter))
