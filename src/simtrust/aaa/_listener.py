"""UDP transport of the RADIUS server (RFC 2865 §3: authentication on one port,
RFC 2866 §3: accounting on another), one receiving thread per socket.

Access-Requests are handed to a pool of ``workers`` threads: an answer waits
for its decision's audit record to be committed, and decisions made at the same
time share one commit (the attach engine's group commit), which only happens
when several are in progress at once. Accounting is answered by the
accounting writer after its own group commit, so one thread suffices there.

The socket reads whole datagrams up to the RFC's 4096-octet limit plus one
octet, so an oversized datagram is seen as such (and dropped) instead of being
silently cut.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable

from simtrust.aaa._radius import MAX_PACKET
from simtrust.aaa._server import RadiusServer
from simtrust.errors import SimtrustError

__all__ = ["RadiusListener", "parse_bind"]

_log = logging.getLogger("simtrust.aaa.listener")


def parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"RADIUS bind must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class RadiusListener:
    """Serves one UDP socket: ``kind`` is ``auth`` or ``acct``."""

    def __init__(self, server: RadiusServer, host: str, port: int, kind: str, *,
                 tap: Callable[[tuple[str, int], tuple[str, int], bytes], None] | None = None,
                 workers: int = 32, backlog: int = 8192) -> None:
        """``tap(src, dst, datagram)`` sees every datagram in and out (captures, tests)."""
        if kind not in ("auth", "acct"):
            raise ValueError("kind must be auth or acct")
        self.server = server
        self.kind = kind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):  # a smaller buffer still works
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)  # so close() is seen without a datagram arriving
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.tap = tap
        self._jobs: queue.Queue[tuple[bytes, tuple[str, int]] | None] = queue.Queue(backlog)
        self._workers = [
            threading.Thread(target=self._work, name=f"simtrust-radius-{kind}-{i}", daemon=True)
            for i in range(workers if kind == "auth" else 0)
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"simtrust-radius-{kind}",
                                        daemon=True)

    def __repr__(self) -> str:
        return f"RadiusListener({self.kind}, {self.address[0]}:{self.address[1]})"

    def start(self) -> RadiusListener:
        for worker in self._workers:
            worker.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self.sock
        server = self.server
        auth = self.kind == "auth"
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(MAX_PACKET + 1)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            tap = self.tap
            if tap is not None:
                tap(addr, self.address, data)
            if len(data) > MAX_PACKET:
                server.counters["malformed"] += 1
                continue
            if auth:
                try:
                    self._jobs.put_nowait((data, addr))
                except queue.Full:
                    server.counters["overload_dropped"] += 1
                continue
            try:
                server.handle_acct(data, addr, _sender(sock, addr, self))
            except (ValueError, OSError, SimtrustError) as exc:
                # A bug or a transient socket error must not end the listener.
                server.counters["malformed"] += 1
                _log.warning("RADIUS %s datagram from %s dropped: %s", self.kind, addr[0], exc)

    def _work(self) -> None:
        server = self.server
        while True:
            job = self._jobs.get()
            if job is None:
                return
            data, addr = job
            try:
                answer = server.handle_auth(data, addr, _sender(self.sock, addr, self))
                if answer is not None:
                    if self.tap is not None:
                        self.tap(self.address, addr, answer)
                    self.sock.sendto(answer, addr)
            except (ValueError, OSError, SimtrustError) as exc:
                server.counters["malformed"] += 1
                _log.warning("RADIUS auth datagram from %s dropped: %s", addr[0], exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for _worker in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        self.sock.close()


def _sender(sock: socket.socket, addr: tuple[str, int], listener: RadiusListener
            ) -> Callable[[bytes], None]:
    def send(data: bytes) -> None:
        if listener.tap is not None:
            listener.tap(listener.address, addr, data)
        sock.sendto(data, addr)

    return send
