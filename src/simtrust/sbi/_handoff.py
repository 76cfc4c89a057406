"""Connections of one SBI listening socket dealt to worker processes (TS 29.500 §5.2).

The master process of ``simtrust serve`` accepts on the SBI's socket and
passes each accepted connection to the next worker in turn over a Unix socket
pair (``SCM_RIGHTS``); a worker serves it as if it had accepted it. AUSFs and
SCPs keep a few long-lived HTTP/2 connections, so which worker gets each one
decides how the load spreads: dealing them in turn spreads even four
connections evenly over two workers, where ``SO_REUSEPORT`` hashing or a
shared accept queue leaves that to chance
(docs/decisions/corenet-sbi-workers.md has the measurement). TLS is
terminated in the worker, so the master never holds session keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

__all__ = ["ConnectionDealer", "receive_connections"]

_TAG = b"c"


class ConnectionDealer:
    """Accept on ``sock`` in a thread and hand each connection to the next channel."""

    def __init__(self, sock: socket.socket, channels: list[socket.socket | None]) -> None:
        self._sock = sock
        #: One slot per worker; a slot is replaced when its worker is restarted.
        self.channels = channels
        self._next = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dealt = [0] * len(channels)

    def __repr__(self) -> str:
        return f"ConnectionDealer({self._sock.getsockname()}, dealt={self.dealt})"

    def start(self) -> ConnectionDealer:
        self._sock.settimeout(0.25)  # the accept loop sees stop() within this
        self._thread = threading.Thread(target=self._run, name="sbi-dealer", daemon=True)
        self._thread.start()
        return self

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
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()


def receive_connections(channel: socket.socket,
                        serve: Callable[[socket.socket], None]) -> Callable[[], None]:
    """Call ``serve`` with each connection arriving on ``channel``, from the running loop's
    reader; returns the function that stops listening. End of file (master gone) stops it."""
    loop = asyncio.get_running_loop()
    channel.setblocking(False)

    def readable() -> None:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(channel, 16, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            msg, fds = b"", []
        for fd in fds:
            serve(socket.socket(fileno=fd))
        if not msg:
            stop()

    def stop() -> None:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(channel.fileno())

    loop.add_reader(channel.fileno(), readable)
    return stop
