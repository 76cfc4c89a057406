"""Group commit of the audit records behind RADIUS answers.

An answer whose decision this package audits itself (a refusal before the attach
decision, an EAP access without equipment) goes out only after its record is
committed durably (fsynced, as the attach decisions' records are); records of
answers that arrive together share one transaction, so the cost of the commit is
spread over them (the pattern of :mod:`._sessions` for accounting). A burst's
answers are submitted together, and the committing thread is woken only when it
is idle: each wake-up of a sleeping thread is a system call made while holding the
interpreter lock (docs/decisions/aaa-eap-cpu.md).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from simtrust.audit import AuditEntry
from simtrust.errors import SimtrustError
from simtrust.subscriber import DeferredDecisions

__all__ = ["AuditCommitter", "AuditJob", "DecidedBurst"]

_log = logging.getLogger("simtrust.aaa.audit")


class _AuditLog(Protocol):
    def append_many(self, entries: Sequence[AuditEntry], *, durable: bool = False,
                    returning: bool = True) -> Any: ...


# An answer's audit records, what sends it once they are on disk, what forgets it if not.
AuditJob = tuple[list[AuditEntry], Callable[[], None], Callable[[], None]]


class AuditCommitter:
    """Appends queued audit records in batches, then runs each batch's callbacks."""

    def __init__(self, audit: _AuditLog, *, max_batch: int = 1024) -> None:
        self._audit = audit
        self._max_batch = max_batch
        self._queue: deque[AuditJob] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.batches = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"AuditCommitter(batches={self.batches}, queued={len(self._queue)})"

    def submit_many(self, jobs: list[AuditJob]) -> None:
        """Queue answers' records; each job's ``done`` runs once its records are on
        disk, ``failed`` if their commit failed."""
        if not jobs:
            return
        with self._cond:
            idle = not self._queue  # else the committing thread is awake or being woken
            self._queue.extend(jobs)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simtrust-aaa-audit",
                                                daemon=True)
                self._thread.start()
            if idle:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = []
                count = 0
                while self._queue and count < self._max_batch:
                    job = self._queue.popleft()
                    batch.append(job)
                    count += len(job[0])
            try:
                self._audit.append_many([entry for job in batch for entry in job[0]],
                                        durable=True, returning=False)
            except SimtrustError as exc:
                self.failures += len(batch)
                _log.error("audit commit failed for %d answers: %s", len(batch), exc.detail)
                for _entries, _done, failed in batch:
                    failed()
                continue
            self.batches += 1
            for _entries, done, _failed in batch:
                try:
                    done()
                except OSError as exc:
                    _log.warning("RADIUS answer not sent: %s", exc)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)


class DecidedBurst:
    """A burst's answers, decided but not yet sendable: the attach decisions behind them
    (``held``) are stored by :meth:`RadiusServer.commit_auth_bursts`."""

    __slots__ = ("answers", "decided", "held")

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, tuple[str, int]]] = []
        self.decided: list[tuple[bytes, bytes]] = []
        self.held: list[DeferredDecisions] = []
