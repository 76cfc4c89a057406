"""A bounded queue and one worker thread between a decision path and its alert sinks.

A slow or absent receiver never slows the caller: :meth:`AlertDispatcher.submit`
only enqueues (a full queue drops the alert and counts it), the worker hands
each alert to every sink in turn, and a sink that fails is counted and logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from simtrust.alerts._sinks import Alert, AlertSink

__all__ = ["AlertDispatcher"]

_log = logging.getLogger("simtrust.alerts")

A = TypeVar("A", bound=Alert)


class AlertDispatcher(Generic[A]):
    """Queue + worker thread feeding every sink; ``delivered``/``failed`` count sink calls."""

    __slots__ = ("_lock", "_queue", "_sinks", "_thread", "delivered", "failed")

    def __init__(self, sinks: Sequence[AlertSink[A]], maxsize: int = 10_000) -> None:
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        self._queue: queue.Queue[A | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"AlertDispatcher(sinks={[s.name for s in self._sinks]!r})"

    @property
    def sinks(self) -> list[AlertSink[A]]:
        return list(self._sinks)

    def add_sink(self, sink: AlertSink[A]) -> None:
        """Deliver later alerts to ``sink`` too (services built after the dispatcher's owner)."""
        with self._lock:
            self._sinks.append(sink)

    def submit(self, alert: A) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="simtrust-alerts", daemon=True
                    )
                    self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.failed += len(self._sinks)
            _log.warning("alert queue full; dropped a %s alert for %s", alert.kind, alert.imsi)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                for sink in list(self._sinks):
                    try:
                        sink.send(alert)
                        self.delivered += 1
                    except Exception as exc:  # noqa: BLE001 - a sink failure must not stop the worker
                        self.failed += 1
                        _log.warning("alert delivery via %s failed: %s", sink.name, exc)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self.flush()
            self._queue.put(None)
            thread.join(timeout=5)
        for sink in self._sinks:
            sink.close()
