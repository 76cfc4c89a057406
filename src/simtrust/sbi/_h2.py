"""A lean HTTP/2 server for ASGI apps on the ``h2`` state machine (RFC 9113, TS 29.500 §5.2).

One :class:`asyncio.Protocol` per connection drives an :class:`h2.connection.H2Connection`
(sans-IO): the connection preface, SETTINGS, HPACK, flow control and stream
states are h2's; this module maps each request stream to one ASGI ``http``
call of the app in its own task. Cleartext connections must start with the
client preface (prior knowledge, RFC 9113 §3.3; no HTTP/1.1 Upgrade, which
RFC 9113 deprecates); over TLS the listener offers only ``h2`` in ALPN and
closes a connection that negotiated anything else (RFC 9113 §3.2).

Request bodies are credited back to the peer as the app reads them, so a
slow handler applies backpressure instead of buffering without bound; a
response sent before its request's body ended is followed by RST_STREAM
NO_ERROR (RFC 9113 §8.1), which keeps the connection and its other streams
alive. :data:`MAX_STREAMS` bounds the concurrent streams a peer may open.
Request header blocks are checked here in one pass (:func:`malformed`, RFC 9113
§8.2-8.3) rather than by h2; a malformed request is reset with PROTOCOL_ERROR
(a stream error, RFC 9113 §8.1.1) and the connection goes on.
docs/decisions/corenet-sbi-server.md gives the measurement behind this choice,
docs/decisions/corenet-sbi-cpu.md and corenet-sbi-hpack.md the CPU per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from simtrust.sbi import _hpack

__all__ = ["MAX_STREAMS", "H2Server"]

MAX_STREAMS = 256
_WINDOW = 1 << 20  # per stream; credited back as the app reads
_FAILURE = (b'{"title": "Internal server error", "status": 500, "cause": "SYSTEM_FAILURE"}')

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]


# RFC 9113 §8.2.1: a field name is lower-case visible ASCII without ':' (pseudo-header
# fields start with one); a value has no NUL, CR or LF and no surrounding SP or HTAB.
_NAME = re.compile(rb":?[\x21-\x39\x3b-\x40\x5b-\x7e]+")
_VALUE = re.compile(rb"(?:[^\x00\n\r\t ](?:[^\x00\n\r]*[^\x00\n\r\t ])?)?")
_REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path"))
# Fields whose name and value passed the two expressions: a client repeats most of its
# fields on every request (user agent, content type, its bearer token), so each is
# matched once, not per request. Only the §8.2.1 syntax is remembered; every rule
# that depends on the block (order, repeats, pseudo-header fields) runs each time.
_WELL_FORMED: set[tuple[bytes, bytes]] = set()
_WELL_FORMED_MAX = 4096
_CONNECTION_SPECIFIC = frozenset((b"connection", b"proxy-connection", b"keep-alive",
                                  b"transfer-encoding", b"upgrade"))


def malformed(headers: Iterable[tuple[bytes, bytes]], *, trailers: bool = False,
              ) -> str | None:
    """Why a request's header block (or trailers) is malformed (RFC 9113 §8.2-8.3), or None.

    The checks h2's inbound validation makes, in one pass: field names and values
    (§8.2.1), connection-specific fields and TE (§8.2.2), pseudo-header fields known,
    once each, before the regular ones and none in trailers (§8.3), the request's
    :method, :scheme and a non-empty :path (none of the latter two for CONNECT,
    §8.5), and :authority or Host, equal when both are present (§8.3.1).
    """
    pseudo: dict[bytes, bytes] = {}
    regular = False
    host: bytes | None = None
    for name, value in headers:
        if (name, value) not in _WELL_FORMED:
            if _NAME.fullmatch(name) is None:
                return "bad field name"
            if value and _VALUE.fullmatch(value) is None:
                return "bad field value"
            if len(_WELL_FORMED) >= _WELL_FORMED_MAX:
                _WELL_FORMED.clear()
            _WELL_FORMED.add((name, value))
        if name[0] == 0x3a:
            if trailers or regular or name in pseudo or name not in _REQUEST_PSEUDO:
                return f"pseudo-header field {name!r} not allowed here"
            pseudo[name] = value
            continue
        regular = True
        if name in _CONNECTION_SPECIFIC:
            return "connection-specific field"
        if name == b"te" and value.lower() != b"trailers":
            return "TE other than trailers"
        if name == b"host" and not trailers:
            if host is not None:
                return "more than one Host"
            host = value
    if trailers:
        return None
    method = pseudo.get(b":method")
    if method is None:
        return "no :method"
    if method == b"CONNECT":
        if b":scheme" in pseudo or b":path" in pseudo:
            return "CONNECT with :scheme or :path"
    elif not pseudo.get(b":path") or b":scheme" not in pseudo:
        return "no :scheme or an empty :path"
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        return "neither :authority nor Host"
    if authority is not None and host is not None and authority != host:
        return ":authority and Host differ"
    return None


class _Stream:
    __slots__ = ("body", "closed", "ended", "readable", "task")

    def __init__(self) -> None:
        self.body: list[tuple[bytes, int]] = []
        self.ended = False
        self.closed = False  # reset by the peer or the connection went away
        self.readable = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: h2 events in, ASGI calls out."""

    def __init__(self, server: H2Server) -> None:
        self._server = server
        # Inbound header blocks are checked here in one pass (:func:`malformed`, RFC 9113
        # §8.2-8.3) instead of h2's chain of generators; outbound ones are built here,
        # lower-case and without connection-specific fields, so not checked twice.
        config = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                           validate_inbound_headers=False,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False)
        self._h2 = h2.connection.H2Connection(config=config)
        # The same HPACK coder with less Python per block (simtrust.sbi._hpack).
        self._h2.encoder = _hpack.Encoder()
        self._h2.decoder = _hpack.Decoder()
        self._h2.decoder.max_header_list_size = self._h2.DEFAULT_MAX_HEADER_LIST_SIZE
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._window_open = asyncio.Event()
        self._scheme = "http"
        self._client: tuple[str, int] | None = None
        self._local: tuple[str, int] | None = None
        self._flush_due = False

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tls = transport.get_extra_info("ssl_object")
        if tls is not None:
            self._scheme = "https"
            if tls.selected_alpn_protocol() != "h2":
                transport.close()  # RFC 9113 §3.2: h2 over TLS only by ALPN
                return
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self._client = (str(peer[0]), int(peer[1])) if peer else None
        self._local = (str(local[0]), int(local[1])) if local else None
        self._server.connections.add(self)
        self._h2.update_settings({
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
        })
        self._h2.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        for stream in self._streams.values():
            stream.closed = True
            stream.readable.set()
        self._window_open.set()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # h2 queued the GOAWAY with the right error code
            self._close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                why = malformed(event.headers or ())
                if why is None:
                    self._request(event)
                else:  # a malformed request is a stream error (RFC 9113 §8.1.1)
                    self._reset(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
            elif isinstance(event, h2.events.TrailersReceived):
                if malformed(event.headers or (), trailers=True) is not None:
                    stream = self._streams.get(event.stream_id)
                    if stream is not None:
                        stream.closed = True
                        stream.readable.set()
                    self._reset(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
            elif isinstance(event, h2.events.DataReceived):
                stream = self._streams.get(event.stream_id)
                if stream is None:
                    self._h2.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                else:
                    stream.body.append((event.data, event.flow_controlled_length))
                    stream.readable.set()
            elif isinstance(event, h2.events.StreamEnded):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.ended = True
                    stream.readable.set()
            elif isinstance(event, h2.events.StreamReset):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.closed = True
                    stream.readable.set()
                self._window_open.set()
            elif isinstance(event, (h2.events.WindowUpdated,
                                    h2.events.RemoteSettingsChanged)):
                self._window_open.set()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._flush()
                self._close()
                return
        self._flush()

    # ------------------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        """Write what h2 queued once this loop iteration's tasks have run (fewer syscalls)."""
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        out = self._h2.data_to_send()
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(out)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def goaway(self) -> None:
        """Refuse new streams (GOAWAY NO_ERROR); the open ones finish."""
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()
            self._flush()
        if not self._streams:
            self._close()

    def _request(self, event: h2.events.RequestReceived) -> None:
        pseudo: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in event.headers or ():
            if name.startswith(b":"):
                pseudo[name] = value
            else:
                headers.append((name, value))
        authority = pseudo.get(b":authority")
        if authority is not None:  # what HTTP/1.1 calls Host (RFC 9113 §8.3.1)
            headers.append((b"host", authority))
        raw_path, _, query = pseudo.get(b":path", b"/").partition(b"?")
        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "2", "method": pseudo.get(b":method", b"GET").decode("latin-1"),
            "scheme": self._scheme, "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path, "query_string": query, "root_path": "",
            "headers": headers, "client": self._client, "server": self._local,
            "extensions": {},
        }
        stream = _Stream()
        self._streams[event.stream_id] = stream
        if event.stream_ended is not None:
            stream.ended = True
        stream.task = asyncio.get_running_loop().create_task(
            self._serve(event.stream_id, stream, scope))

    async def _serve(self, stream_id: int, stream: _Stream, scope: Scope) -> None:
        state: dict[str, Any] = {"start": None, "headers_sent": False, "finished": False}

        async def receive() -> Message:
            while not stream.body and not stream.ended and not stream.closed:
                stream.readable.clear()
                await stream.readable.wait()
            if stream.closed or state["finished"]:
                return {"type": "http.disconnect"}
            data = b"".join(chunk for chunk, _ in stream.body)
            credit = sum(n for _, n in stream.body)
            stream.body.clear()
            if credit:
                with contextlib.suppress(h2.exceptions.StreamClosedError,
                                         h2.exceptions.ProtocolError):
                    self._h2.acknowledge_received_data(credit, stream_id)
                    self._flush_soon()
            return {"type": "http.request", "body": data, "more_body": not stream.ended}

        async def send(message: Message) -> None:
            if stream.closed or state["finished"]:
                return
            if message["type"] == "http.response.start":
                state["start"] = message
                return
            if message["type"] != "http.response.body" or state["start"] is None:
                return
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if not state["headers_sent"]:
                state["headers_sent"] = True
                self._send_headers(stream_id, state["start"], end=not body and not more)
                if not body and not more:
                    state["finished"] = True
                    self._done(stream_id, stream)
                    return
            await self._send_data(stream_id, stream, body, end=not more)
            if not more:
                state["finished"] = True
                self._done(stream_id, stream)

        try:
            await self._server.app(scope, receive, send)
        except Exception:  # noqa: BLE001 - one failed request must not end the connection
            if not state["finished"] and not stream.closed and not state["headers_sent"]:
                state["headers_sent"] = True
                self._send_headers(stream_id, {"status": 500, "headers": [
                    (b"content-type", b"application/problem+json")]}, end=False)
                await self._send_data(stream_id, stream, _FAILURE, end=True)
                state["finished"] = True
                self._done(stream_id, stream)
        finally:
            if not state["finished"] and not stream.closed:
                self._reset(stream_id, ErrorCodes.INTERNAL_ERROR)  # headers out, body not
            self._streams.pop(stream_id, None)
            if not self._streams and self._h2.state_machine.state.name == "CLOSED":
                self._close()

    def _send_headers(self, stream_id: int, start: Message, *, end: bool) -> None:
        headers = [(b":status", str(int(start["status"])).encode())]
        for name, value in start.get("headers", ()):
            lowered = bytes(name).lower()
            if lowered in (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"):
                continue  # connection-specific: not allowed in HTTP/2 (RFC 9113 §8.2.2)
            headers.append((lowered, bytes(value)))
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self._h2.send_headers(stream_id, headers, end_stream=end)
            self._flush_soon()

    async def _send_data(self, stream_id: int, stream: _Stream, data: bytes, *,
                         end: bool) -> None:
        view = memoryview(data)
        while True:
            if stream.closed:
                return
            try:
                window = self._h2.local_flow_control_window(stream_id)
            except h2.exceptions.StreamClosedError:
                return
            if window <= 0 and view:
                self._window_open.clear()
                await self._window_open.wait()
                continue
            size = min(window, len(view), self._h2.max_outbound_frame_size)
            last = end and size == len(view)
            try:
                self._h2.send_data(stream_id, view[:size].tobytes(), end_stream=last)
            except (h2.exceptions.StreamClosedError, h2.exceptions.FlowControlError):
                return
            self._flush_soon()
            view = view[size:]
            if not view:
                return

    def _done(self, stream_id: int, stream: _Stream) -> None:
        if not stream.ended and not stream.closed:
            # Answered before the body ended: stop the upload, keep the connection.
            self._reset(stream_id, ErrorCodes.NO_ERROR)

    def _reset(self, stream_id: int, code: ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, error_code=code)
            self._flush_soon()


class H2Server:
    """Serve an ASGI ``app`` over HTTP/2 on a bound socket, in the running event loop."""

    def __init__(self, app: App, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self._ssl = ssl_context
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock,
                                                ssl=self._ssl, backlog=1024)

    async def adopt(self, sock: socket.socket) -> None:
        """Serve a connection another process accepted (handed over by fd passing)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        try:
            await loop.connect_accepted_socket(lambda: _Connection(self), sock, ssl=self._ssl)
        except (OSError, ssl.SSLError):
            sock.close()  # the peer left or failed the TLS handshake: nothing to serve

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, send GOAWAY, let open streams finish for ``grace`` s, close."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.goaway()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c._streams for c in self.connections):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn._close()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=grace)
