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
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.api.stream_ingest import MtlsStreamIngest
from simtrust.bootstrap import BootstrapServices, EstRequest
from simtrust.errors import SimtrustError

__all__ = ["BootstrapListener"]

_log = logging.getLogger("simtrust.api.bootstrap")
_MAX_BODY = 66_560  # a full streams frame (65,760 bytes) fits


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simtrust-bootstrap"
    timeout = 30
    listener: BootstrapListener

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.client_address[0], *args)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        # Status line, headers and body in one write: two small segments would meet
        # Nagle and delayed ACK (tens of milliseconds per exchange).
        self.log_request(status)
        reason = self.responses.get(status, ("",))[0]
        head = [f"{self.protocol_version} {status} {reason}",
                f"Server: {self.version_string()}", f"Date: {self.date_time_string()}",
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
    listener: BootstrapListener

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.listener.refresh_if_changed()
        except Exception:  # noqa: BLE001 - keep serving with the trust already loaded
            _log.warning("client-certificate trust could not be refreshed", exc_info=True)
        ctx = self.listener.context
        return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

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
        self.trust_pem = b""
        self._generation: tuple[int, int, str] = (-1, -1, "")

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

    def start(self) -> BootstrapListener:
        self.refresh()
        handler = type("BoundHandler", (_Handler,), {"listener": self})
        server = _TlsServer((self._host, self._port), handler)
        server.listener = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="bootstrap-listener",
                                        daemon=True)
        self._thread.start()
        # Revocations owed to enterprise CAs (queued before a restart too) go out from
        # the serving process.
        self.services.cas.forwarder.start()
        self.services.cas.delegated.start()
        return self

    def stop(self) -> None:
        self.services.cas.forwarder.close()
        self.services.cas.delegated.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
