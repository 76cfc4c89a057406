"""The SBI's HTTP/2 server: h2c with prior knowledge, or TLS with ALPN ``h2`` (TS 29.500 §5.2).

:class:`~simtrust.sbi._h2.H2Server` (on the sans-IO ``h2`` library) serves the
app; docs/decisions/corenet-sbi-server.md says why, with the measurement.
Cleartext connections start HTTP/2 on the client preface (prior knowledge,
RFC 9113 §3.3); with a certificate and key it terminates TLS 1.2+ offering
only ``h2`` in ALPN, and with a client CA it requires client certificates
(mutual TLS, TS 33.501 §13.1). Without an OAuth2 verifier the server refuses
to bind anything but loopback. The server runs on its own thread and event
loop; :meth:`SbiServer.stop` drains and joins it. In a worker process of
``simtrust serve`` it binds nothing and serves the connections the master
accepts and hands over (:mod:`simtrust.handoff`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from simtrust.errors import ConfigError
from simtrust.handoff import receive_connections
from simtrust.sbi._h2 import H2Server

__all__ = ["SbiServer"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class SbiServer:
    """The SBI app served over HTTP/2 on ``host:port`` (or on connections handed over by
    the master process) in a background thread."""

    def __init__(
        self, app: Starlette, host: str, port: int, *, cert: Path | None = None,
        key: Path | None = None, client_ca: Path | None = None, lab_mode: bool = False,
    ) -> None:
        if lab_mode and not _is_loopback(host):
            raise ConfigError("the SBI without OAuth2 tokens (lab mode) may only bind loopback;"
                              " configure the NRF public key to serve other addresses")
        if (cert is None) != (key is None):
            raise ConfigError("the SBI needs both a TLS certificate and key, or neither")
        if client_ca is not None and cert is None:
            raise ConfigError("mutual TLS needs the server certificate and key too")
        self._app = app
        self._ssl: ssl.SSLContext | None = None
        if cert is not None and key is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # TS 33.210 §6.2 profile
            ctx.load_cert_chain(str(cert), str(key))
            ctx.set_alpn_protocols(["h2"])
            if client_ca is not None:
                ctx.load_verify_locations(cafile=str(client_ca))
                ctx.verify_mode = ssl.CERT_REQUIRED
            self._ssl = ctx
        self.tls = cert is not None
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._server: H2Server | None = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None
        self._unlisten: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"SbiServer({self.address}, tls={self.tls})"

    def start(self) -> tuple[str, int]:
        """Bind and serve; return the bound address (port 0 picks a free one)."""
        sock = socket.create_server((self._host, self._port), reuse_port=False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        bound = sock.getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        server = H2Server(self._app, ssl_context=self._ssl)
        self._run(server, server.start(sock))
        return self.address

    def start_handed(self, channel: socket.socket) -> None:
        """Serve the connections another process accepts and passes over ``channel``
        (:class:`~simtrust.handoff.ConnectionDealer`) instead of binding."""
        server = H2Server(self._app, ssl_context=self._ssl)
        loop = self._loop

        def adopt(conn: socket.socket) -> None:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop.create_task(server.adopt(conn))

        async def listen() -> None:
            self._unlisten = receive_connections(channel, adopt)

        self._run(server, listen())

    def _run(self, server: H2Server, setup: Coroutine[Any, Any, None]) -> None:
        self._server = server
        ready: Future[None] = Future()

        def run() -> None:
            loop = self._loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup)
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())

        self._thread = threading.Thread(target=run, name="sbi", daemon=True)
        self._thread.start()
        ready.result(timeout=30)

    def stop(self) -> None:
        """GOAWAY to every connection, let open streams finish (2 s), close, join."""
        if self._thread is None or self._server is None:
            return
        server = self._server
        if self._unlisten is not None:
            self._loop.call_soon_threadsafe(self._unlisten)
        done = asyncio.run_coroutine_threadsafe(server.stop(2.0), self._loop)
        try:
            done.result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
            self._thread = None
            self._loop.close()
