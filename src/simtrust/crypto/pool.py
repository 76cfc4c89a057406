"""Random octets from the operating system's generator, drawn in blocks.

``os.urandom`` lets go of the interpreter lock for its system call; a server thread
that asks for 16 octets then waits to get the lock back behind every other thread
that wanted it, so a handful of small draws per request cost a handful of thread
hand-offs (docs/decisions/aaa-eap-cpu.md). :class:`RandomPool` draws
``block`` octets at once from ``os.urandom`` and hands them out in order, each octet
once, under a lock; a process forked from this one starts with an empty pool, so
parent and child never hand out the same octets.
"""

from __future__ import annotations

import os
import threading

__all__ = ["RandomPool", "pooled_random"]


class RandomPool:
    """Callable like ``os.urandom(n)``; the octets come from ``os.urandom`` in blocks."""

    __slots__ = ("_block", "_buffer", "_lock", "_offset")

    def __init__(self, block: int = 4096) -> None:
        if block < 64:
            raise ValueError("a pool block holds at least 64 octets")
        self._block = block
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RandomPool(block={self._block})"

    def __call__(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("negative length")
        if n > self._block // 4:
            return os.urandom(n)
        with self._lock:
            start = self._offset
            end = start + n
            if end > len(self._buffer):
                self._buffer = os.urandom(self._block)
                start, end = 0, n
            self._offset = end
            return self._buffer[start:end]

    def discard(self) -> None:
        """Forget the octets not handed out yet (a forked child must not reuse them)."""
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0


#: The process's shared pool (emptied in a forked child).
pooled_random = RandomPool()
os.register_at_fork(after_in_child=pooled_random.discard)
