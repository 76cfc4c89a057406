"""Group commit: concurrent callers share one durable write, each answered after it.

A caller hands its item to :meth:`GroupCommit.submit` and blocks. The first
caller to find no write in progress becomes the leader: it takes every item
queued so far (its own included), writes them with one call of ``write`` (one
transaction and one fsync), and wakes the others; callers whose items arrived
during that write elect the next leader among themselves. No timer and no
background thread: a lone caller writes at once, and under load the batch grows
with the time one write takes (the scheme of PostgreSQL's group commit and of
InnoDB's binary-log group commit). A failed write raises in every caller whose
item it carried, so nothing is acknowledged that is not stored.
:meth:`GroupCommit.submit_many` hands in several items of one caller at once
(a server that decided a burst of requests on one thread): they are written in
the same batch and the call returns when all of them are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Slot(Generic[T]):
    __slots__ = ("done", "error", "items")

    def __init__(self, items: list[T]) -> None:
        self.items = items
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Batches concurrent ``submit`` calls into single ``write`` calls."""

    __slots__ = ("_cond", "_leading", "_queue", "_write", "batches", "items")

    def __init__(self, write: Callable[[Sequence[T]], None]) -> None:
        self._write = write
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Slot[T]] = []
        self._leading = False
        self.batches = 0
        self.items = 0

    def __repr__(self) -> str:
        return f"GroupCommit(batches={self.batches}, items={self.items})"

    def submit(self, item: T) -> None:
        """Return once ``item`` is written (raise what the write raised)."""
        self.submit_many([item])

    def submit_many(self, items: list[T]) -> None:
        """Return once every one of ``items`` is written, in one batch (raise what the
        write raised). An empty list returns at once."""
        if not items:
            return
        slot = _Slot(items)
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._leading:
                self._cond.wait()
            if slot.done:
                if slot.error is not None:
                    raise slot.error
                return
            self._leading = True
            batch, self._queue = self._queue, []
        error: BaseException | None = None
        try:
            self._write([item for s in batch for item in s.items])
        except BaseException as exc:  # noqa: BLE001 - re-raised in every caller of the batch
            error = exc
        with self._cond:
            for queued in batch:
                queued.error = error
                queued.done = True
            self.batches += 1
            self.items += sum(len(s.items) for s in batch)
            self._leading = False
            self._cond.notify_all()
        if error is not None:
            raise error
