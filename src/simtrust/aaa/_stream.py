"""RADIUS over TCP (RFC 6613) and over TLS (RadSec, RFC 6614): the stream transports.

A packet on a stream is framed by its own Length field (RFC 6613 §2.1); a
length outside 20..4096 cannot be resynchronised, so the connection is closed
(§2.6.4). Connections are accepted only from configured gateway clients
(§2.4, the source address in a client's CIDR); anything else is closed at
once and counted. Over plain TCP the client's shared secret applies and, as
with UDP, the port says what it carries (authentication or accounting).
Over TLS one port carries every kind of packet (RFC 6614 §2.1), the peer must
present a certificate chaining to a trusted CA (§2.3: mutual authentication)
and the RADIUS shared secret is the fixed string ``radsec`` (§2.3 item 4).
The packet rules are those of the UDP server (:class:`RadiusServer`); answers
go back on the connection they came in on, in whatever order they are ready
(RFC 6613 §2.6.7: the identifier, not the order, matches them).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import tempfile
import threading
from pathlib import Path

from simtrust.aaa._radius import MAX_PACKET, Code
from simtrust.aaa._server import RadiusServer
from simtrust.errors import SimtrustError

__all__ = ["RADSEC_SECRET", "RadiusStreamListener", "radsec_context"]

_log = logging.getLogger("simtrust.aaa.stream")

RADSEC_SECRET = b"radsec"
_KINDS = {"auth": (Code.ACCESS_REQUEST,), "acct": (Code.ACCOUNTING_REQUEST,),
          "any": (Code.ACCESS_REQUEST, Code.ACCOUNTING_REQUEST)}


def radsec_context(chain_pem: bytes, key_pem: bytes, client_cas_pem: bytes, *,
                   keylog: str | None = None) -> ssl.SSLContext:
    """A server context for RadSec: our certificate chain and key, peers' certificates
    required and verified against ``client_cas_pem`` (RFC 6614 §2.3). TLS 1.2 is the
    floor (RFC 6614 §2.3 item 1 asks for 1.1 or later; 1.2 is the lowest still safe)."""
    if not client_cas_pem.strip():
        raise ValueError("RadSec needs at least one CA for gateway certificates")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=client_cas_pem.decode("ascii"))
    with tempfile.TemporaryDirectory(prefix="simtrust-radsec-") as tmp:
        # load_cert_chain reads files only; the key lives there for the call's duration.
        chain_file, key_file = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
        chain_file.write_bytes(chain_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        ctx.load_cert_chain(chain_file, key_file)
    if keylog:
        ctx.keylog_filename = keylog
    return ctx


class RadiusStreamListener:
    """One TCP (``tls`` None) or TLS listening socket; ``kind`` is ``auth``, ``acct``
    or ``any`` (RadSec carries both on one port)."""

    def __init__(self, server: RadiusServer, host: str, port: int, kind: str, *,
                 tls: ssl.SSLContext | None = None, workers: int = 32,
                 max_connections: int = 256, handshake_timeout: float = 10.0,
                 backlog: int = 8192) -> None:
        if kind not in _KINDS:
            raise ValueError("kind must be auth, acct or any")
        if kind == "any" and tls is None:
            raise ValueError("plain RADIUS/TCP uses separate auth and acct ports (RFC 6613 §2.3)")
        self.server = server
        self.kind = kind
        self.tls = tls
        self._codes = _KINDS[kind]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.sock.settimeout(0.2)  # so close() is seen without a connection arriving
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._max_connections = max_connections
        self._handshake_timeout = handshake_timeout
        self._connections: dict[int, socket.socket] = {}
        self._conn_lock = threading.Lock()
        self._stop = threading.Event()
        self._jobs: queue.Queue[tuple[bytes, tuple[str, int], _Connection] | None] = \
            queue.Queue(backlog)
        self._workers = [
            threading.Thread(target=self._work, name=f"simtrust-radius-{self.scheme}-{i}",
                             daemon=True)
            for i in range(workers if kind != "acct" else 0)
        ]
        self._thread = threading.Thread(target=self._accept, name=f"simtrust-{self.scheme}",
                                        daemon=True)
        self.connections_accepted = 0
        self.connections_refused = 0

    @property
    def scheme(self) -> str:
        return "radsec" if self.tls is not None else f"radius-tcp-{self.kind}"

    def __repr__(self) -> str:
        return f"RadiusStreamListener({self.scheme}, {self.address[0]}:{self.address[1]})"

    def start(self) -> RadiusStreamListener:
        for worker in self._workers:
            worker.start()
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            peer = (str(addr[0]), int(addr[1]))
            if self.server.clients.match(peer[0]) is None:
                self.server.counters["unknown_client"] += 1
                self.connections_refused += 1
                conn.close()
                continue
            with self._conn_lock:
                full = len(self._connections) >= self._max_connections
            if full:
                self.server.counters["overload_dropped"] += 1
                self.connections_refused += 1
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                             name=f"simtrust-{self.scheme}-conn").start()

    def _serve(self, raw: socket.socket, peer: tuple[str, int]) -> None:
        conn: socket.socket = raw
        try:
            if self.tls is not None:
                raw.settimeout(self._handshake_timeout)
                try:
                    conn = self.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.connections_refused += 1
                    self.server.counters["tls_refused"] += 1
                    _log.info("RadSec handshake with %s failed: %s", peer[0], exc)
                    return
                conn.settimeout(None)
            self.connections_accepted += 1
            with self._conn_lock:
                self._connections[id(conn)] = conn
            self._read_loop(_Connection(conn), peer)
        finally:
            with self._conn_lock:
                self._connections.pop(id(conn), None)
            with contextlib.suppress(OSError):
                conn.close()

    def _read_loop(self, conn: _Connection, peer: tuple[str, int]) -> None:
        reader = conn.sock.makefile("rb")
        server = self.server
        secret = RADSEC_SECRET if self.tls is not None else None
        try:
            while not self._stop.is_set():
                header = reader.read(4)
                if len(header) < 4:
                    return  # closed by the peer (or mid-header: nothing to answer)
                length = int.from_bytes(header[2:4], "big")
                if not 20 <= length <= MAX_PACKET:
                    server.counters["malformed"] += 1
                    return  # the stream cannot be resynchronised (RFC 6613 §2.6.4)
                body = reader.read(length - 4)
                if len(body) < length - 4:
                    return
                data = header + body
                code = header[0]
                if code not in self._codes:
                    server.counters["unexpected_code"] += 1
                    continue
                if code == Code.ACCOUNTING_REQUEST:
                    server.handle_acct(data, peer, conn.send, secret=secret)
                    continue
                try:
                    self._jobs.put_nowait((data, peer, conn))
                except queue.Full:
                    server.counters["overload_dropped"] += 1
        except (OSError, ValueError, SimtrustError) as exc:
            if not self._stop.is_set():
                _log.info("%s connection from %s ended: %s", self.scheme, peer[0], exc)
        finally:
            with contextlib.suppress(OSError):
                reader.close()

    def _work(self) -> None:
        server = self.server
        secret = RADSEC_SECRET if self.tls is not None else None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            data, peer, conn = job
            try:
                answer = server.handle_auth(data, peer, conn.send, secret=secret)
                if answer is not None:
                    conn.send(answer)
            except (ValueError, OSError, SimtrustError) as exc:
                server.counters["malformed"] += 1
                _log.warning("%s request from %s dropped: %s", self.scheme, peer[0], exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        with self._conn_lock:
            open_now = list(self._connections.values())
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for _worker in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=5)


class _Connection:
    """A connection's socket with a lock: answers are written by several threads."""

    __slots__ = ("_lock", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)
