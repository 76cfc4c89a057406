"""A background thread that runs one step of due work, then sleeps until the next
item is due, it is woken, or the poll interval passes (rows queued by other
processes are picked up that way)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from simtrust.errors import SimtrustError

__all__ = ["BackgroundWorker"]

_log = logging.getLogger("simtrust.bootstrap.worker")


class BackgroundWorker:
    """Runs ``step()`` (seconds until the next due item, or None) in a daemon thread."""

    __slots__ = ("_lock", "_name", "_poll", "_step", "_stop", "_thread", "_wake")

    def __init__(self, name: str, step: Callable[[], float | None], *,
                 poll: float = 30.0) -> None:
        self._name = name
        self._step = step
        self._poll = poll
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BackgroundWorker({self._name!r})"

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self._poll
            try:
                due = self._step()
                if due is not None:
                    wait = min(max(due, 0.05), self._poll)
            except SimtrustError as exc:
                _log.warning("%s failed: %s", self._name, exc)
            self._wake.wait(timeout=wait)
