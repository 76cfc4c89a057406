"""A small kept-alive HTTPS client for the device side (RFC 9112 over one TLS connection).

:class:`DeviceClient` speaks to one bootstrap listener with four short requests
per bootstrap (Ub twice, EST twice). Through httpx those cost the device about
four times the CPU the listener spends answering them (request and response
models, URL parsing, cookie handling, h11's event machinery), and through the
stdlib's ``http.client`` still about half of the device's CPU (its response head
goes through the e-mail parser, its request head through one call per field).
This client writes each request head and body in one write with Nagle off and
reads the answer itself (RFC 9112: status line, at most 100 field lines of at most
64 KiB as ``http.client`` allows, the body by ``Transfer-Encoding: chunked``,
``Content-Length`` or the connection's end, §6.3; 1xx answers skipped), over one
connection kept alive, reconnecting once when a connection kept alive was closed
by the server meanwhile. The server is authenticated as with httpx: the caller's
``ssl.SSLContext`` checks its certificate and name. Either client can be given to
:class:`DeviceClient` (:class:`HttpClient`).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

__all__ = ["HttpAnswer", "HttpClient", "LeanHttps"]

_MAX_LINE = 65_536
_MAX_FIELDS = 100
#: Largest answer body read (the EST answers are a few KiB).
_MAX_BODY = 16 * 1024 * 1024


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


class _Fields:
    """An answer's header fields by name, any case (repeated fields joined by ", ")."""

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"_Fields({sorted(self._fields)})"

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        old = self._fields.get(key)
        self._fields[key] = value if old is None else f"{old}, {value}"

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


class _Answer:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status: int, headers: _Fields, content: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _line(rfile: BinaryIO) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("answer line")
    return line


def _read_head(rfile: BinaryIO) -> tuple[int, str, _Fields]:
    """Status line and header fields of one answer (RFC 9112 §4, §5)."""
    line = _line(rfile)
    if not line:
        raise http.client.RemoteDisconnected("server closed the connection without answering")
    version, _, rest = line.decode("iso-8859-1").rstrip("\r\n").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(line.decode("iso-8859-1", "replace")[:80])
    fields = _Fields()
    for _ in range(_MAX_FIELDS + 1):
        raw = _line(rfile)
        if raw in (b"\r\n", b"\n", b""):
            return int(code), version, fields
        name, colon, value = raw.decode("iso-8859-1").rstrip("\r\n").partition(":")
        if not colon or not name or name != name.strip():
            raise http.client.HTTPException("malformed header field in the answer")
        fields.add(name, value.strip(" \t"))
    raise http.client.HTTPException(f"more than {_MAX_FIELDS} header fields in the answer")


def _exactly(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise http.client.IncompleteRead(data, n - len(data))
    return data


def _read_body(rfile: BinaryIO, status: int, method: str, fields: _Fields) -> tuple[bytes, bool]:
    """The answer's body and whether it ended with the connection (RFC 9112 §6.3)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", False
    coding = (fields.get("transfer-encoding") or "").lower()
    if coding:
        if coding.rsplit(",", 1)[-1].strip() != "chunked":
            return _until_closed(rfile), True
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = _line(rfile).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise http.client.HTTPException("malformed chunk size") from None
            if size == 0:
                while _line(rfile) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(chunks), False
            total += size
            if total > _MAX_BODY:
                raise http.client.HTTPException("answer body too large")
            chunks.append(_exactly(rfile, size))
            _line(rfile)  # CRLF after the chunk
    length_text = fields.get("content-length")
    if length_text is None:
        return _until_closed(rfile), True
    if not length_text.isdigit() or int(length_text) > _MAX_BODY:
        raise http.client.HTTPException(f"bad Content-Length {length_text[:40]!r}")
    return _exactly(rfile, int(length_text)), False


def _until_closed(rfile: BinaryIO) -> bytes:
    data = rfile.read(_MAX_BODY + 1)
    if len(data) > _MAX_BODY:
        raise http.client.HTTPException("answer body too large")
    return data


class _Connection:
    """One TLS connection with a buffered reader; the server checked by ``ctx``."""

    __slots__ = ("rfile", "sock")

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> None:
        raw = socket.create_connection((host, port), timeout)
        try:
            # Head and body leave in one write already; no Nagle wait on either side.
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self.rfile: BinaryIO = self.sock.makefile("rb")

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class LeanHttps:
    """One HTTPS origin over one kept-alive connection; not shared between threads."""

    __slots__ = ("_conn", "_ctx", "_host", "_origin", "_timeout", "_used")

    def __init__(self, ctx: ssl.SSLContext, timeout: float = 15.0) -> None:
        self._ctx = ctx
        self._timeout = timeout
        self._conn: _Connection | None = None
        self._origin: tuple[str, int] | None = None
        self._host = ""
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
        if self._origin is None:
            self._origin = origin
            host = f"[{origin[0]}]" if ":" in origin[0] else origin[0]
            self._host = host if origin[1] == 443 else f"{host}:{origin[1]}"
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _message(self, method: str, target: str, body: bytes,
                 headers: Mapping[str, str]) -> bytes:
        """The request head (RFC 9112 §3, §5) and body as one buffer."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host}",
                 "Accept-Encoding: identity"]
        for name, value in headers.items():
            if any(c in name for c in ":\r\n ") or "\r" in value or "\n" in value:
                raise ValueError(f"invalid header field {name[:40]!r}")
            lines.append(f"{name}: {value}")
        if method == "POST" or body:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _request(self, method: str, url: str, body: bytes,
                 headers: Mapping[str, str]) -> _Answer:
        target = self._target(url)
        message = self._message(method, target, body, headers)
        for attempt in (0, 1):
            conn = self._conn
            if conn is None:
                assert self._origin is not None
                conn = _Connection(self._origin[0], self._origin[1], self._ctx, self._timeout)
                self._conn, self._used = conn, False
            reused = self._used
            try:
                conn.sock.sendall(message)
                status, version, fields = _read_head(conn.rfile)
                while 100 <= status < 200 and status != 101:
                    status, version, fields = _read_head(conn.rfile)
                content, ended = _read_body(conn.rfile, status, method, fields)
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
            connection = (fields.get("connection") or "").lower()
            if ended or "close" in connection or (version == "HTTP/1.0"
                                                  and "keep-alive" not in connection):
                self.close()
            return _Answer(status, fields, content)
        raise AssertionError("unreachable")
