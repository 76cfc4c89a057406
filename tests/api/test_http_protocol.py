"""OneWriteHttpProtocol: the same bytes on the connection as uvicorn's httptools protocol,
an answer made in one go sent in one write, a head whose body comes later not held back,
and what is held sent before the connection closes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from simtrust.api import create_app
from simtrust.api.http_protocol import OneWriteHttpProtocol
from simtrust.runtime import Runtime

#: The event loop's socket transport, whose writes are counted.
_TRANSPORT: Any = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
_DATE = re.compile(rb"date: [^\r]*\r\n")


@contextlib.contextmanager
def _served(app: Any, protocol: type[asyncio.Protocol]) -> Iterator[int]:
    """``app`` served by uvicorn with ``protocol`` on a loopback port (a thread of its own)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=protocol, log_level="warning", access_log=False,
                            server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _read_answer(conn: socket.socket) -> bytes:
    """One HTTP/1.1 answer with a Content-Length, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += _recv(conn)
    return head + b"\r\n\r\n" + body


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    if not chunk:
        raise ConnectionError("closed before the answer was whole")
    return chunk


def _exchange(port: int, requests: list[bytes]) -> tuple[list[bytes], int]:
    """The answers to ``requests`` on one keep-alive connection (Date removed), and the
    number of writes the server's transports made for them."""
    original = _TRANSPORT.write
    with mock.patch.object(_TRANSPORT, "write", autospec=True,
                           side_effect=original) as writes, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        answers = []
        for request in requests:
            conn.sendall(request)
            answers.append(_DATE.sub(b"", _read_answer(conn)))
        return answers, writes.call_count


@pytest.fixture
def requests(sqlite_runtime: Runtime) -> list[bytes]:
    operator = sqlite_runtime.tenants.create_key("operator-admin", "network elements")
    body = b'{"imsi":"001010000000001","imei":"352099001761481","serving_plmn":"00101"}'
    return [
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/nothing-here HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/sims HTTP/1.1\r\nHost: t\r\n\r\n",  # 401 problem
        (b"POST /v1/attach/decisions HTTP/1.1\r\nHost: t\r\n"
         b"Authorization: Bearer " + operator.secret.encode() + b"\r\n"
         b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
         + b"\r\n\r\n" + body),
    ]


def test_answers_are_the_same_bytes_in_one_write_each(sqlite_runtime: Runtime,
                                                       requests: list[bytes]) -> None:
    app = create_app(sqlite_runtime)
    with _served(app, HttpToolsProtocol) as port:
        _exchange(port, requests[3:])  # the operator key is cached by the route
        plain, plain_writes = _exchange(port, requests)
    with _served(app, OneWriteHttpProtocol) as port:
        held, held_writes = _exchange(port, requests)
    assert [a.split(b"\r\n", 1)[0] for a in held] == [
        b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 401 Unauthorized",
        b"HTTP/1.1 200 OK"]
    # The attach decision's answer repeats the same decision (the SIM is unknown).
    assert plain == held
    assert 2 * len(requests) == plain_writes
    assert len(requests) == held_writes


async def _streamed(scope: Any, receive: Any, send: Any) -> None:
    """A head now, the body only once the client has read the head."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await asyncio.get_running_loop().run_in_executor(None, _STREAM_GO.wait, 30)
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


_STREAM_GO = threading.Event()


def test_a_head_whose_body_comes_later_is_not_held_back() -> None:
    _STREAM_GO.clear()
    with _served(_streamed, OneWriteHttpProtocol) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += _recv(conn)  # the body is not sent before this arrives
        _STREAM_GO.set()
        rest = head.partition(b"\r\n\r\n")[2]
        while not rest.endswith(b"0\r\n\r\n"):
            rest += _recv(conn)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in head
    assert rest == b"5\r\nfirst\r\n0\r\n\r\n"


def test_what_is_held_is_sent_before_the_connection_closes(sqlite_runtime: Runtime) -> None:
    app = create_app(sqlite_runtime)
    with _served(app, OneWriteHttpProtocol) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in head
    assert body == b'{"status":"ok"}'
