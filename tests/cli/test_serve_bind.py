"""`serve` waits for its API address while a killed predecessor's workers release it."""

from __future__ import annotations

import errno
import socket

import pytest

from simtrust.cli import _root


def _holder() -> socket.socket:
    s = socket.create_server(("127.0.0.1", 0))
    return s


def test_address_released_while_waiting_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = _holder()
    port = holder.getsockname()[1]
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the predecessor's worker exits during the wait
        waits.append(seconds)
        holder.close()

    monkeypatch.setattr(_root.time, "sleep", sleep)
    sock = _root._bind_api("127.0.0.1", port)
    try:
        assert port == sock.getsockname()[1]
        assert 1 == len(waits)
    finally:
        sock.close()


def test_address_held_beyond_the_wait_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = _holder()
    port = holder.getsockname()[1]
    monkeypatch.setattr(_root, "API_BIND_WAIT_S", 0.0)
    try:
        with pytest.raises(OSError) as caught:
            _root._bind_api("127.0.0.1", port)
        assert errno.EADDRINUSE == caught.value.errno
    finally:
        holder.close()
