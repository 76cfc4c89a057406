"""UDP flow collector: receives IPFIX (RFC 7011 §10.3) and NetFlow v9 datagrams.

One thread reads the socket and hands every datagram to a
:class:`~simtrust.flows._ipfix.FlowDecoder`; decoded flows go to a sink
callable in batches. With the C extension ``simtrust.flows._rx`` the thread
takes up to ``BATCH`` queued datagrams with one recvmmsg(2) into one buffer
(the GIL released while it waits) and the decoder turns runs of datagrams of
known fixed-length IPv4 templates into columns, without a Python object per
datagram or per record (:class:`~simtrust.flows._columns.ReceivedFlows`);
without it the loop drains the socket one ``recvfrom`` at a time. Either way
one batch is decoded under one lock and the sink is called once for it, so
the per-call costs of policy and detection are paid per batch rather than per
datagram. A ``columnar`` sink gets the :class:`ReceivedFlows` itself; any
other gets a list of :class:`FlowRecord`. A sink that raises is counted,
never kills the loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from simtrust.domain import FlowRecord
from simtrust.flows._columns import ReceivedFlows, _rx
from simtrust.flows._ipfix import FlowDecoder

__all__ = ["FlowCollector"]

log = logging.getLogger(__name__)

FlowSink = Callable[[Any], object]

#: datagrams decoded per sink call at most
BATCH = 64


class FlowCollector:
    """A UDP collector thread: ``with FlowCollector(sink, port=0) as c: c.port ...``."""

    def __init__(self, sink: FlowSink, *, host: str = "127.0.0.1", port: int = 0,
                 decoder: FlowDecoder | None = None, clock: Callable[[], float] = time.time,
                 recv_buffer: int = 4 << 20, columnar: bool = False) -> None:
        self.decoder = decoder if decoder is not None else FlowDecoder()
        self._sink = sink
        #: the sink takes a ReceivedFlows (columns where possible), not a list of records
        self.columnar = columnar
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
            self._deliver(ReceivedFlows([flows]) if self.columnar else flows)
        return flows

    def _run(self) -> None:
        if _rx is not None:
            self._run_rx()
            return
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

    def _run_rx(self) -> None:
        assert _rx is not None
        recv_batch = _rx.recv_batch
        buffer = bytearray(BATCH * _rx.SLOT)
        senders: dict[bytes, str] = {}
        fd = self._sock.fileno()
        while not self._stop.is_set():
            try:
                lengths, names = recv_batch(fd, buffer, BATCH, 200, senders)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not lengths:
                continue
            with self._lock:
                received = ReceivedFlows(
                    self.decoder.decode_received(buffer, lengths, names, self._clock()))
                self.datagrams += len(lengths)
                self.flows += len(received)
            if received.segments:
                self._deliver(received if self.columnar else received.records())

    def _deliver(self, flows: object) -> None:
        try:
            self._sink(flows)
        except Exception:  # the sink is someone else's code; the collector must live on
            self.sink_errors += 1
            log.exception("flow sink failed")

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
            self._deliver(ReceivedFlows([flows]) if self.columnar else flows)
