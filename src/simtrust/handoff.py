"""Connections of one listening socket dealt to worker processes.

The master process of ``simtrust serve`` accepts on a listener's socket (the
SBI's, TS 29.500 §5.2; the bootstrap listener's, Ub and EST) and passes each
accepted connection to the next worker in turn over a Unix socket pair
(``SCM_RIGHTS``, unix(7)); a worker serves it as if it had accepted it. AUSFs
and SCPs keep a few long-lived HTTP/2 connections, so which worker gets each
one decides how the load spreads: dealing them in turn spreads even four
connections evenly over two workers, where ``SO_REUSEPORT`` hashing or a
shared accept queue leaves that to chance
(docs/decisions/corenet-sbi-workers.md has the measurement). TLS is
terminated in the worker, so the master never holds session keys.

A worker takes its connections either from its asyncio loop
(:func:`receive_connections`, the HTTP/2 SBI) or from a thread of its own
(:class:`ConnectionReceiver`, the threaded bootstrap listener,
docs/decisions/bootstrap-workers.md). Stdlib only: every layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

__all__ = ["ConnectionDealer", "ConnectionReceiver", "receive_connections"]

_TAG = b"c"


class _SocketLoop(ABC):
    """``_run`` (each subclass's loop) in a daemon thread over ``sock``, whose calls
    time out every 0.25 s so the loop sees a stop within that."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self._sock = sock
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._sock.settimeout(0.25)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    @abstractmethod
    def _run(self) -> None:
        """The thread's loop: run until ``self._stop`` is set."""

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class ConnectionDealer(_SocketLoop):
    """Accept on ``sock`` in a thread and hand each connection to the next channel."""

    def __init__(self, sock: socket.socket, channels: list[socket.socket | None],
                 *, name: str = "dealer") -> None:
        super().__init__(sock, name)
        #: One slot per worker; a slot is replaced when its worker is restarted.
        self.channels = channels
        self._next = 0
        self.dealt = [0] * len(channels)

    def __repr__(self) -> str:
        return f"ConnectionDealer({self._sock.getsockname()}, dealt={self.dealt})"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # EMFILE, ECONNABORTED...: the next accept may succeed
            with conn:
                self.deal(conn)

    def deal(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the next live channel; False (connection dropped) if none is."""
        count = len(self.channels)
        for _ in range(count):
            slot = self._next
            self._next = (slot + 1) % count
            channel = self.channels[slot]
            if channel is None:
                continue
            try:
                socket.send_fds(channel, [_TAG], [conn.fileno()])
            except OSError:
                continue  # that worker is gone; the master restarts it with a new channel
            self.dealt[slot] += 1
            return True
        return False

    def stop(self) -> None:
        self._halt()
        self._sock.close()


def _take(channel: socket.socket) -> tuple[list[socket.socket], bool]:
    """The connections of one message on ``channel`` and whether the master's end is
    closed (end of file); BlockingIOError, InterruptedError and TimeoutError pass up."""
    try:
        msg, fds, _flags, _addr = socket.recv_fds(channel, 16, 1)
    except (BlockingIOError, InterruptedError, TimeoutError):
        raise  # nothing yet: not the end (TimeoutError is an OSError too)
    except OSError:
        msg, fds = b"", []
    return [socket.socket(fileno=fd) for fd in fds], not msg


class ConnectionReceiver(_SocketLoop):
    """Call ``serve`` with each connection arriving on ``channel``, from a thread.

    ``ended`` is set when the master's end closes (the master is gone or stopped
    dealing); ``serve`` must not block for long (it hands the connection on)."""

    def __init__(self, channel: socket.socket, serve: Callable[[socket.socket], None],
                 *, name: str = "receiver") -> None:
        super().__init__(channel, name)
        self._serve = serve
        self.ended = threading.Event()

    def __repr__(self) -> str:
        return f"ConnectionReceiver({self._name!r}, ended={self.ended.is_set()})"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conns, ended = _take(self._sock)
            except (TimeoutError, BlockingIOError, InterruptedError):
                continue
            for conn in conns:
                self._serve(conn)
            if ended:
                self.ended.set()
                return

    def stop(self) -> None:
        self._halt()


def receive_connections(channel: socket.socket,
                        serve: Callable[[socket.socket], None]) -> Callable[[], None]:
    """Call ``serve`` with each connection arriving on ``channel``, from the running loop's
    reader; returns the function that stops listening. End of file (master gone) stops it."""
    loop = asyncio.get_running_loop()
    channel.setblocking(False)

    def readable() -> None:
        try:
            conns, ended = _take(channel)
        except (BlockingIOError, InterruptedError):
            return
        for conn in conns:
            serve(conn)
        if ended:
            stop()

    def stop() -> None:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(channel.fileno())

    loop.add_reader(channel.fileno(), readable)
    return stop
