"""The bootstrap listener's own request-head parser and its thread switch interval."""

from __future__ import annotations

import io
import socket
import ssl
import sys

import pytest

from simtrust.api.bootstrap_listener import SWITCH_INTERVAL, HeadError, _Head

from .conftest import Env


def test_head_fields_by_any_case_repeats_joined() -> None:
    head = _Head.read(io.BytesIO(b"Host: a\r\nX-Tag: one\r\nx-tag:two \r\n"
                                 b"Content-Length: 3\r\n\r\nabc"))
    assert "3" == head.get("content-length") == head["CONTENT-LENGTH"]
    assert "one, two" == head.get("X-Tag")
    assert "Transfer-Encoding" not in head
    assert head.get("Transfer-Encoding") is None
    assert [("Host", "a"), ("X-Tag", "one"), ("x-tag", "two"),
            ("Content-Length", "3")] == head.items()


@pytest.mark.parametrize(("raw", "status"), [
    (b"NoColon\r\n\r\n", 400),
    (b"Name : space before colon\r\n\r\n", 400),
    (b"A: 1\r\n folded\r\n\r\n", 400),
    (b": no name\r\n\r\n", 400),
    (b"A: " + b"x" * 70_000 + b"\r\n\r\n", 431),
    (b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
])
def test_head_refusals(raw: bytes, status: int) -> None:
    with pytest.raises(HeadError) as info:
        _Head.read(io.BytesIO(raw))
    assert status == info.value.status


def _raw(env: Env, data: bytes) -> bytes:
    ctx = ssl.create_default_context(cadata=env.listener.trust_pem.decode())
    with socket.create_connection(("127.0.0.1", env.listener.port), timeout=5) as sock, \
            ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        tls.sendall(data)
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
        return out


def test_listener_refuses_bad_heads_and_keeps_alive(env: Env) -> None:
    assert _raw(env, b"GET /bsf HTTP/1.1\r\nBad Header\r\n\r\n").startswith(b"HTTP/1.1 400")
    many = b"".join(b"H%d: v\r\n" % i for i in range(101))
    assert _raw(env, b"GET /bsf HTTP/1.1\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431")
    # A version that does not parse is answered as the stdlib does: no status line.
    assert b"505" in _raw(env, b"GET /bsf HTTP/2.0\r\n\r\n")
    assert b"400" in _raw(env, b"GET /bsf HTTP/x\r\n\r\n")
    # Two requests on one connection: the first is kept alive, the second closes it.
    out = _raw(env, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert 2 == out.count(b"HTTP/1.1 404")


def test_switch_interval_short_while_serving(env: Env) -> None:
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    before_second = sys.getswitchinterval()
    from simtrust.api.bootstrap_listener import BootstrapListener  # noqa: PLC0415
    second = BootstrapListener(env.boot, "127.0.0.1", 0).start()
    second.stop()
    # One listener stopping leaves the interval short while another still serves.
    assert sys.getswitchinterval() == pytest.approx(before_second)


def test_listener_queues_a_fleet_connecting_at_once() -> None:
    """Connections wait in the listen backlog until accepted: with the stdlib's
    backlog of 5, the kernel dropped the SYNs of the sixth and later devices
    connecting together, and their connect waited a second for the retry."""
    from simtrust.api.bootstrap_listener import _Handler, _TlsServer  # noqa: PLC0415

    server = _TlsServer(("127.0.0.1", 0), _Handler)  # listening, never accepting
    clients: list[socket.socket] = []
    try:
        for _ in range(64):
            sock = socket.socket()
            sock.settimeout(0.5)
            sock.connect(server.server_address)  # times out if the SYN was dropped
            clients.append(sock)
        assert 64 == len(clients)
    finally:
        for sock in clients:
            sock.close()
        server.server_close()
