"""Reading a UDP socket several datagrams per readiness.

asyncio's datagram transport reads one datagram each time the selector reports the socket
readable: a burst of N datagrams (a device's notifications, a fleet's handshake flights)
costs N passes of the event loop, each an ``epoll_wait``, a handle and a ``recvfrom``.
With :class:`BatchReader` the protocol, given the first datagram by the transport, reads
the rest of the burst itself (up to ``batch`` per readiness, until the socket has none
left); the transport keeps its reader and all writes. Other readers and timers run
between batches. Python has no ``recvmmsg``; one ``recvfrom_into`` per datagram, into a
buffer kept for the socket, is what is left per datagram.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from typing import Any

__all__ = ["BATCH", "BatchReader"]

#: Datagrams read per readiness at most (a bound on how long one socket holds the loop).
BATCH = 64
#: The largest UDP payload over IPv4/IPv6 without jumbograms.
_MAX_DATAGRAM = 65535


class BatchReader:
    """The rest of a burst on a transport's socket (``get_extra_info("socket")``).
    asyncio's transport calls ``datagram_received`` once per readiness; the protocol then
    takes what else is queued from :meth:`pending`. Create it in ``connection_made``;
    :meth:`close` it in ``connection_lost``."""

    def __init__(self, transport_socket: Any, protocol: asyncio.DatagramProtocol,
                 batch: int = BATCH) -> None:
        self._protocol = protocol
        self._batch = batch - 1  # the transport has read the first one
        fd: int = transport_socket.fileno()
        # A socket object of our own on a duplicate descriptor of the same socket: the
        # transport's socket object is not ours to read from. The transport keeps its
        # reader (level-triggered: what a full batch leaves is read on the next pass).
        self._sock: socket.socket | None = socket.socket(fileno=os.dup(fd))
        self._sock.setblocking(False)
        self._buffer = memoryview(bytearray(_MAX_DATAGRAM))

    def pending(self) -> Iterator[tuple[bytes, tuple[str, int]]]:
        """Up to ``batch - 1`` more datagrams, as long as the socket has any."""
        buffer = self._buffer
        for _ in range(self._batch):
            sock = self._sock
            if sock is None:  # closed in between
                return
            try:
                size, addr = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            yield bytes(buffer[:size]), addr

    def close(self) -> None:
        """Release the duplicate descriptor (the transport closes its own socket)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
