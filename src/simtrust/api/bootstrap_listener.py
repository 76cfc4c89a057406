"""The bootstrap HTTPS listener: Ub (BSF), EST (the NAF), OCSP and CRLs on one TLS port.

Served by the stdlib's threading HTTP server because EST re-enrolment needs the
TLS client certificate of the request (RFC 7030 §3.3.2), which the ASGI servers
do not pass to the application. The server certificate comes from the
operator's tier-1 CA; client certificates are optional in the handshake and
verified against the tenant CAs (the context is rebuilt when any process sharing
the store registers or removes a CA, checked on every accepted connection).

- ``GET|POST /bsf``: Ub, HTTP Digest AKA (TS 24.109 §5.2; 200 is
  ``application/vnd.3gpp.bsf+xml``).
- ``/.well-known/est[/label]/...``: EST (RFC 7030 §3.2.2).
- ``POST /ocsp`` and ``GET /ocsp/<base64>``: OCSP over HTTP (RFC 6960 Appendix A).
- ``GET /crl/<label>.crl``: the CA's DER CRL (RFC 5280 §5).
- ``POST /streams/channels/<id>/messages``: data frames over mTLS, when the
  listener is given the streams ingest (``simtrust.api.stream_ingest``).

Request heads are parsed by :class:`_Head` (RFC 9112 §5: ``name: value`` lines up to
an empty line, at most 100 of them, 64 KiB a line, as ``http.client`` allows)
instead of the stdlib's e-mail parser, which cost about a fifth of the listener's
CPU per request. While serving, the interpreter switches threads every 0.5 ms
instead of 5 ms (decision ``docs/decisions/bootstrap-bench-measurement.md``): a
request thread returning from a short store or socket call otherwise waits up to
the whole interval for a CPU-bound thread to give the GIL back, on every call.

With ``SIMTRUST_BOOTSTRAP_WORKERS`` above 1 the listener runs in N worker processes
of ``simtrust serve``: the master accepts and deals each connection to the next
worker (:mod:`simtrust.handoff`), which serves it with :meth:`BootstrapListener.start_handed`
exactly as if it had accepted it (docs/decisions/bootstrap-workers.md).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import logging
import socket
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.api.stream_ingest import MtlsStreamIngest
from simtrust.bootstrap import BootstrapServices, EstRequest
from simtrust.errors import SimtrustError
from simtrust.handoff import ConnectionReceiver

__all__ = ["BootstrapListener"]

_log = logging.getLogger("simtrust.api.bootstrap")
_MAX_BODY = 66_560  # a full streams frame (65,760 bytes) fits
_MAX_LINE = 65_536
_MAX_HEADERS = 100
#: The interpreter's thread switch interval while a listener serves (seconds).
SWITCH_INTERVAL = 0.0005
_serving_lock = threading.Lock()
#: Listeners serving in this process, and the switch interval before the first started.
_serving: list[float] = [0, 0.0]


def _shorten_switch_interval() -> None:
    with _serving_lock:
        if _serving[0] == 0:
            _serving[1] = sys.getswitchinterval()
            if _serving[1] > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
        _serving[0] += 1


def _restore_switch_interval() -> None:
    with _serving_lock:
        _serving[0] -= 1
        if _serving[0] == 0:
            sys.setswitchinterval(_serving[1])


#: The Date field's value (RFC 9110 §6.6.1) and the second it was made for.
_date: list[tuple[int, str]] = [(0, "")]


def _http_date() -> str:
    """The current IMF-fixdate, formatted once a second (not on every answer)."""
    now = int(time.time())
    stamp, text = _date[0]
    if stamp != now:
        text = email.utils.formatdate(now, usegmt=True)
        _date[0] = (now, text)
    return text


class HeadError(ValueError):
    """A request head that does not parse (answered 400 or 431)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Head(dict[str, str]):
    """A request's header fields by lower-case name (repeated fields joined by ", ",
    RFC 9110 §5.3); ``get`` and ``[]`` take any case."""

    __slots__ = ("_pairs",)

    def __init__(self) -> None:
        super().__init__()
        self._pairs: list[tuple[str, str]] = []

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """The fields as received (name as sent, in order)."""
        return list(self._pairs)

    @classmethod
    def read(cls, rfile: Any) -> _Head:
        """Read header lines up to the empty line; HeadError when they do not parse."""
        head = cls()
        while True:
            line = rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise HeadError(431, "header line too long")
            if line in (b"\r\n", b"\n", b""):
                return head
            if len(head._pairs) >= _MAX_HEADERS:
                raise HeadError(431, f"more than {_MAX_HEADERS} header fields")
            text = line.decode("iso-8859-1").rstrip("\r\n")
            name, colon, value = text.partition(":")
            # RFC 9112 §5.1: no whitespace between the name and the colon; §5.2:
            # obsolete line folding is refused.
            if not colon or not name or name != name.strip() or text[0] in " \t":
                raise HeadError(400, "malformed header field")
            value = value.strip(" \t")
            head._pairs.append((name, value))
            key = name.lower()
            old = dict.get(head, key)
            dict.__setitem__(head, key, value if old is None else f"{old}, {value}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simtrust-bootstrap"
    timeout = 30
    listener: BootstrapListener
    raw_requestline: bytes

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.client_address[0], *args)

    def parse_request(self) -> bool:
        """The request line (RFC 9112 §3, the stdlib's checks) and the head by
        :class:`_Head`; False once an error answer is sent."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            if words:
                self.send_error(400, "Bad request syntax")
            return False
        command, path, version = words
        major, dot, minor = (version[5:].partition(".") if version.startswith("HTTP/")
                             else ("", "", ""))
        if (not dot or not major.isdigit() or not minor.isdigit() or len(major) > 10
                or len(minor) > 10):
            self.send_error(400, "Bad request version")
            return False
        if int(major) >= 2:
            self.send_error(505, "Invalid HTTP version")
            return False
        if (int(major), int(minor)) >= (1, 1):
            self.close_connection = False
        self.request_version = version
        self.command = command
        # As the stdlib does (gh-87389): "//x" is not taken for a scheme-less URL.
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = _Head.read(self.rfile)  # type: ignore[assignment]
        except HeadError as exc:
            self.send_error(exc.status, str(exc))
            return False
        conntype = (self.headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        # Status line, headers and body in one write: two small segments would meet
        # Nagle and delayed ACK (tens of milliseconds per exchange).
        if _log.isEnabledFor(logging.DEBUG):
            self.log_request(status)
        reason = self.responses.get(status, ("",))[0]
        head = [f"{self.protocol_version} {status} {reason}",
                f"Server: {self.version_string()}", f"Date: {_http_date()}",
                *(f"{name}: {value}" for name, value in headers),
                f"Content-Length: {len(body)}"]
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(data + body if self.command != "HEAD" else data)

    def _text(self, status: int, message: str, *extra: tuple[str, str]) -> None:
        self._send(status, [("Content-Type", "text/plain; charset=utf-8"), *extra],
                   (message + "\n").encode())

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._text(411, "send a Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._text(413, "request body too large")
            return None
        return self.rfile.read(length) if length else b""

    def _peer(self) -> x509.Certificate | None:
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        der = conn.getpeercert(binary_form=True)
        return None if der is None else x509.load_der_x509_certificate(der)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._body()
        if body is None:
            return
        path = self.path.split("?", 1)[0]
        services = self.listener.services
        try:
            if path == "/bsf":
                self._ub(body)
            elif path.startswith("/.well-known/est/"):
                headers = {k.lower(): v for k, v in self.headers.items()}
                response = services.server.handle(EstRequest(
                    self.command, path, headers, body, self._peer()))
                self._send(response.status, response.headers, response.body)
            elif path == "/ocsp" and self.command == "POST":
                self._ocsp(body)
            elif path.startswith("/ocsp/") and self.command == "GET":
                try:
                    request = base64.b64decode(unquote(path[len("/ocsp/"):]), validate=True)
                except (binascii.Error, ValueError):
                    request = b""
                self._ocsp(request)
            elif (ingest := self.listener.streams) is not None and ingest.matches(path):
                conn = self.connection
                der = (conn.getpeercert(binary_form=True)
                       if isinstance(conn, ssl.SSLSocket) else None)
                self._send(*ingest.handle(self.command, path,
                                          self.headers.get("Content-Type") or "", body, der,
                                          self.client_address[0]))
            elif path.startswith("/crl/") and path.endswith(".crl") and self.command == "GET":
                crl = services.cas.crl(path[len("/crl/"):-len(".crl")])
                self._send(200, [("Content-Type", "application/pkix-crl")], crl)
            else:
                self._text(404, "no such resource")
        except SimtrustError as exc:
            self._text(exc.status if exc.status < 500 else 503, exc.detail)
        except Exception:  # noqa: BLE001 - a bug answers 500 and is logged, never a crash
            _log.exception("bootstrap listener failed on %s %s", self.command, path)
            self._text(500, "internal error")

    def _ub(self, body: bytes) -> None:
        authorization = self.headers.get("Authorization")
        if authorization is None:
            self._text(400, "Ub requests carry Authorization: Digest username=\"<IMPI>\"")
            return
        status, header, payload = self.listener.services.bsf.respond(
            authorization, self.command, body)
        if status == 401:
            self._send(401, [("WWW-Authenticate", header),
                             ("Content-Type", "text/plain; charset=utf-8")], b"")
        else:
            self._send(200, [("Authentication-Info", header),
                             ("Content-Type", "application/vnd.3gpp.bsf+xml")], payload)

    def _ocsp(self, request: bytes) -> None:
        answer = self.listener.services.cas.ocsp_response(request)
        self._send(200, [("Content-Type", "application/ocsp-response")], answer)


class _TlsServer(ThreadingHTTPServer):
    """Wraps each accepted socket in TLS; the handshake runs in the connection's thread."""

    daemon_threads = True
    #: The listen backlog. The stdlib's 5 drops the SYNs of a sixth device connecting
    #: while five wait to be accepted, and the kernel's retry comes a second later.
    request_queue_size = socket.SOMAXCONN
    listener: BootstrapListener

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self._wrap(sock), addr

    def serve_handed(self, sock: socket.socket) -> None:
        """Serve a connection another process accepted (its own thread, as accepted ones)."""
        try:
            addr = sock.getpeername()
            request = self._wrap(sock)
        except OSError:
            sock.close()  # the device went away before its turn
            return
        self.process_request(request, addr)

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.listener.refresh_if_changed()
        except Exception:  # noqa: BLE001 - keep serving with the trust already loaded
            _log.warning("client-certificate trust could not be refreshed", exc_info=True)
        ctx = self.listener.context
        return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address)


class BootstrapListener:
    """Start and stop the HTTPS listener of the bootstrap services."""

    def __init__(self, services: BootstrapServices, host: str = "127.0.0.1", port: int = 0,
                 *, hostnames: list[str] | None = None,
                 streams: MtlsStreamIngest | None = None) -> None:
        self.services = services
        self.streams = streams
        self._host = host
        self._port = port
        self._hostnames = hostnames or [services.server.naf_id.fqdn, host]
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._server: _TlsServer | None = None
        self._thread: threading.Thread | None = None
        self._receiver: ConnectionReceiver | None = None
        self.trust_pem = b""
        self._generation: tuple[int, int, str] = (-1, -1, "")
        self._shortened = False

    def __repr__(self) -> str:
        return f"BootstrapListener({self._host}:{self._port})"

    def _build_context(self) -> ssl.SSLContext:
        chain, key = self.services.cas.server_certificate(self._hostnames)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="simtrust-tls-") as tmp:
            cert_file, key_file = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(chain)
            key_file.touch(mode=0o600)
            key_file.write_bytes(key)
            ctx.load_cert_chain(cert_file, key_file)
        tenant_cas = b"".join(ca.certificate.public_bytes(serialization.Encoding.PEM)
                              for ca in self.services.cas.cas())
        if tenant_cas:
            ctx.load_verify_locations(cadata=tenant_cas.decode())
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.sni_callback = self._sni
        self.trust_pem = self.services.cas.operator_ca().certificate.public_bytes(
            serialization.Encoding.PEM)
        return ctx

    def _sni(self, sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self.refresh_if_changed()
        current = self._context
        if current is not None and current is not ctx:
            sock.context = current

    def refresh(self) -> None:
        """Trust the tenant CAs registered since start for client certificates."""
        with self._lock:
            self._generation = self.services.cas.trust_stamp()
            self._context = self._build_context()

    def refresh_if_changed(self) -> None:
        """Rebuild the TLS context when any process registered or removed a CA.

        One small query per accepted connection (the store is the only place every
        process sees), far below the cost of the TLS handshake that follows.
        """
        if self.services.cas.trust_stamp() != self._generation:
            self.refresh()

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            raise OSError("listener has no TLS context")
        return self._context

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("listener not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self.port}"

    def _server_for(self, *, bind: bool) -> _TlsServer:
        self.refresh()
        # Shorter GIL turns while any listener serves (module docstring); never longer.
        _shorten_switch_interval()
        self._shortened = True
        handler = type("BoundHandler", (_Handler,), {"listener": self})
        server = _TlsServer((self._host, self._port), handler, bind_and_activate=bind)
        server.listener = self
        self._server = server
        return server

    def start(self) -> BootstrapListener:
        server = self._server_for(bind=True)
        self._thread = threading.Thread(target=server.serve_forever, name="bootstrap-listener",
                                        daemon=True)
        self._thread.start()
        self.start_background()
        return self

    def start_background(self) -> None:
        """Revocations owed to enterprise CAs (queued before a restart too) and CMP
        enrolments left waiting go out from one process: this listener's, or the
        master's when worker processes serve the connections."""
        self.services.cas.forwarder.start()
        self.services.cas.delegated.start()

    def start_handed(self, channel: socket.socket) -> ConnectionReceiver:
        """Serve the connections a master process deals on ``channel`` instead of
        binding (a worker of ``simtrust serve``); the background senders stay with
        the master. The receiver's ``ended`` is set when the master's end closes."""
        server = self._server_for(bind=False)
        self._receiver = ConnectionReceiver(channel, server.serve_handed,
                                            name="bootstrap-handed").start()
        return self._receiver

    def stop(self) -> None:
        self.services.cas.forwarder.close()
        self.services.cas.delegated.close()
        if self._receiver is not None:
            self._receiver.stop()
            self._receiver = None
            if self._server is not None:
                self._server.server_close()
                self._server = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._shortened:
            self._shortened = False
            _restore_switch_interval()
