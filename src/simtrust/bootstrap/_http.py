"""A small kept-alive HTTPS client for the device side (RFC 9112 over one TLS connection).

:class:`DeviceClient` speaks to one bootstrap listener with four short requests
per bootstrap (Ub twice, EST twice). Through httpx those cost the device about
four times the CPU the listener spends answering them (request and response
models, URL parsing, cookie handling, h11's event machinery); this client sends
each request with the stdlib's ``http.client`` over one connection kept alive, the
head and body in one write with Nagle off, and reconnects once when a connection
kept alive was closed by the server meanwhile. The server is authenticated as
with httpx: the caller's ``ssl.SSLContext`` checks its certificate and name.
Either client can be given to :class:`DeviceClient` (:class:`HttpClient`).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = ["HttpAnswer", "HttpClient", "LeanHttps"]


class HttpAnswer(Protocol):
    """What the device side reads of an answer (httpx.Response has it too)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Any: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...


class HttpClient(Protocol):
    """What the device side calls on its HTTP client (httpx.Client has it too)."""

    def get(self, url: str, *, headers: Mapping[str, str] | None = ...) -> HttpAnswer: ...

    def post(self, url: str, *, content: bytes = ...,
             headers: Mapping[str, str] | None = ...) -> HttpAnswer: ...

    def close(self) -> None: ...


class _Answer:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status: int, headers: http.client.HTTPMessage, content: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Connection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        # Head and body leave in one write already; no Nagle wait on either side.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LeanHttps:
    """One HTTPS origin over one kept-alive connection; not shared between threads."""

    __slots__ = ("_conn", "_ctx", "_origin", "_timeout", "_used")

    def __init__(self, ctx: ssl.SSLContext, timeout: float = 15.0) -> None:
        self._ctx = ctx
        self._timeout = timeout
        self._conn: _Connection | None = None
        self._origin: tuple[str, int] | None = None
        self._used = False

    def __repr__(self) -> str:
        return f"LeanHttps({self._origin})"

    def __enter__(self) -> LeanHttps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._used = False

    def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> _Answer:
        return self._request("GET", url, b"", headers or {})

    def post(self, url: str, *, content: bytes = b"",
             headers: Mapping[str, str] | None = None) -> _Answer:
        return self._request("POST", url, content, headers or {})

    def _target(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("LeanHttps speaks https:// URLs only")
        origin = (parts.hostname, parts.port or 443)
        if self._origin is not None and origin != self._origin:
            raise ValueError("LeanHttps keeps one origin per client")
        self._origin = origin
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _request(self, method: str, url: str, body: bytes,
                 headers: Mapping[str, str]) -> _Answer:
        target = self._target(url)
        for attempt in (0, 1):
            conn = self._conn
            if conn is None:
                assert self._origin is not None
                conn = _Connection(self._origin[0], self._origin[1], timeout=self._timeout,
                                   context=self._ctx)
                self._conn, self._used = conn, False
            reused = self._used
            try:
                conn.request(method, target, body=body if method == "POST" else None,
                             headers=dict(headers))
                response = conn.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                # A connection kept alive may have been closed by the server while
                # idle: try once on a new one; a new connection failing is an error.
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            self._used = True
            if response.will_close:
                self.close()
            return _Answer(response.status, response.headers, content)
        raise AssertionError("unreachable")
