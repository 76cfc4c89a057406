"""UDP flow collector: receives IPFIX (RFC 7011 §10.3) and NetFlow v9 datagrams.

One thread reads the socket and hands every datagram to a
:class:`~simtrust.flows._ipfix.FlowDecoder`; decoded flows go to a sink
callable in batches. After each blocking receive the loop drains what else is
queued (up to ``BATCH`` datagrams, non-blocking, like a recvmmsg loop), decodes
it under one lock and calls the sink once for the whole batch, so the per-call
costs of policy and detection are paid per batch rather than per datagram.
A sink that raises is counted, never kills the loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

from simtrust.domain import FlowRecord
from simtrust.flows._ipfix import FlowDecoder

__all__ = ["FlowCollector"]

log = logging.getLogger(__name__)

FlowSink = Callable[[list[FlowRecord]], object]

#: datagrams decoded per sink call at most
BATCH = 64


class FlowCollector:
    """A UDP collector thread: ``with FlowCollector(sink, port=0) as c: c.port ...``."""

    def __init__(self, sink: FlowSink, *, host: str = "127.0.0.1", port: int = 0,
                 decoder: FlowDecoder | None = None, clock: Callable[[], float] = time.time,
                 recv_buffer: int = 4 << 20) -> None:
        self.decoder = decoder if decoder is not None else FlowDecoder()
        self._sink = sink
        self._clock = clock
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.datagrams = 0
        self.flows = 0
        self.sink_errors = 0

    def start(self) -> FlowCollector:
        self._thread = threading.Thread(target=self._run, name="flow-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> FlowCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, quiet: float = 0.5, timeout: float = 30.0) -> None:
        """Block until no datagram arrived for ``quiet`` seconds (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        last, since = self.datagrams, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self.datagrams != last:
                last, since = self.datagrams, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def feed(self, data: bytes, exporter: str) -> list[FlowRecord]:
        """Decode one datagram as if received (also used by the receive loop)."""
        with self._lock:
            flows = self.decoder.decode(data, exporter, self._clock())
            self.datagrams += 1
            self.flows += len(flows)
        if flows:
            try:
                self._sink(flows)
            except Exception:  # the sink is someone else's code; the collector must live on
                self.sink_errors += 1
                log.exception("flow sink failed")
        return flows

    def _run(self) -> None:
        sock = self._sock
        recv = sock.recvfrom
        dontwait = socket.MSG_DONTWAIT
        while not self._stop.is_set():
            try:
                batch = [recv(65535)]
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(recv(65535, dontwait))
                except OSError:  # BlockingIOError: the queue is empty
                    break
            self._feed_batch(batch)

    def _feed_batch(self, batch: list[tuple[bytes, tuple[str, int]]]) -> None:
        flows: list[FlowRecord] = []
        names: dict[tuple[str, int], str] = {}
        with self._lock:
            now = self._clock()
            decode = self.decoder.decode
            for data, addr in batch:
                exporter = names.get(addr)
                if exporter is None:
                    exporter = names[addr] = f"{addr[0]}:{addr[1]}"
                flows.extend(decode(data, exporter, now))
            self.datagrams += len(batch)
            self.flows += len(flows)
        if flows:
            try:
                self._sink(flows)
            except Exception:  # the sink is someone else's code; the collector must live on
                self.sink_errors += 1
                log.exception("flow sink failed")
