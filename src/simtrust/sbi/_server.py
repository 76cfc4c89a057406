"""The SBI's HTTP/2 server: h2c with prior knowledge, or TLS with ALPN ``h2`` (TS 29.500 §5.2).

Hypercorn serves the app (docs/decisions/corenet-sbi-server.md says why, with
the measurement): cleartext connections start HTTP/2 on the client preface
(prior knowledge, RFC 9113 §3.3); with a certificate and key it terminates
TLS 1.2+ offering ``h2`` in ALPN, and with a client CA it requires client
certificates (mutual TLS, TS 33.501 §13.1). Without an OAuth2 verifier the
server refuses to bind anything but loopback. The server runs on its own
thread and event loop; :meth:`SbiServer.stop` drains and joins it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from concurrent.futures import Future
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette

from simtrust.errors import ConfigError

__all__ = ["SbiServer"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class SbiServer:
    """Hypercorn serving the SBI app on ``host:port`` in a background thread."""

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
        self._config = Config()
        self._config.bind = [f"{host}:{port}"]
        self._config.accesslog = None
        self._config.errorlog = None
        self._config.graceful_timeout = 2.0
        self._config.h2_max_concurrent_streams = 256
        # An AUSF keeps one HTTP/2 connection for its whole life; hypercorn's default
        # closes it after 1,000 requests.
        self._config.keep_alive_max_requests = 2**31
        if cert is not None and key is not None:
            self._config.certfile = str(cert)
            self._config.keyfile = str(key)
            self._config.alpn_protocols = ["h2"]
            if client_ca is not None:
                self._config.ca_certs = str(client_ca)
                self._config.verify_mode = ssl.CERT_REQUIRED
        self.tls = cert is not None
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"SbiServer({self.address}, tls={self.tls})"

    def start(self) -> tuple[str, int]:
        """Bind and serve; return the bound address (port 0 picks a free one)."""
        sock = socket.create_server((self._host, self._port), reuse_port=False)
        sock.setblocking(False)
        bound = sock.getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        # Hypercorn binds from the config; hand it this very socket (no port race). It
        # takes the descriptor over and closes it when it stops.
        self._config.bind = [f"fd://{sock.detach()}"]
        ready: Future[None] = Future()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._stop = asyncio.Event()
            self._loop.call_soon(ready.set_result, None)
            assert self._stop is not None
            loop = self._loop
            loop.run_until_complete(
                serve(self._app, self._config, shutdown_trigger=self._stop.wait,  # type: ignore[arg-type]  # Starlette is an ASGI3 app
                      mode="asgi"))
            # Let the lifespan task and connection handlers finish before the loop closes.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())

        self._thread = threading.Thread(target=run, name="sbi", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self.address

    def stop(self) -> None:
        if self._thread is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        self._thread = None
        self._loop.close()
