"""Client-side load for the LwM2M benchmark, meant to run in a separate process.

:func:`registration_load` registers devices (a DTLS 1.2 PSK handshake with cookie
exchange, then a CoAP Register on /rd answered 2.01) at ``concurrency`` at a time and
returns registrations per second as the clients saw them; :func:`handshake_load` does the
same handshakes only, against a link with nothing behind it (the limit of the same run).
:func:`run_apart` calls one of them in a fresh ``spawn`` process and returns its figure,
so the timing covers the load only, not the child's start-up; :func:`apart` starts one
and lets the caller run the server's side of the measurement meanwhile.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from simtrust.devices import CoapEndpoint, DtlsClientLink, Lwm2mClient

__all__ = ["apart", "handshake_load", "registration_load", "run_apart"]


async def _registrations(uri: str, devices: Sequence[tuple[str, str, bytes]],
                         concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(name: str, identity: str, key: bytes) -> None:
        async with sem:
            client = Lwm2mClient(name)
            client.values.update({(0, 1, 0): uri, (0, 1, 3): identity.encode(),
                                  (0, 1, 5): key})
            await client.register()
            client.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(*d) for d in devices))
    return len(devices) / (time.perf_counter() - start)


def registration_load(uri: str, devices: Sequence[tuple[str, str, bytes]],
                      concurrency: int) -> float:
    """Registrations per second of ``devices`` ((endpoint name, PSK identity, key))."""
    return asyncio.run(_registrations(uri, devices, concurrency))


async def _handshakes(port: int, identity: str, key: bytes, count: int,
                      concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def one() -> None:
        async with sem:
            link = DtlsClientLink(CoapEndpoint(lambda p, m: None), identity, key)
            await loop.create_datagram_endpoint(lambda: link, remote_addr=("127.0.0.1", port))
            await link.handshake()
            link.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - start)


def handshake_load(port: int, identity: str, key: bytes, count: int,
                   concurrency: int) -> float:
    """DTLS PSK handshakes per second against ``port`` on loopback."""
    return asyncio.run(_handshakes(port, identity, key, count, concurrency))


@contextmanager
def apart(fn: Callable[..., Any], *args: Any) -> Iterator[Future[Any]]:
    """``fn(*args)`` started in a new process (spawn: nothing inherited from this one's
    loop); the block runs while it does, and the process is gone when it ends."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.submit(fn, *args)


def run_apart(fn: Callable[..., float], *args: Any) -> float:
    """``fn(*args)`` in a new process; its figure."""
    with apart(fn, *args) as future:
        return float(future.result(timeout=600))
