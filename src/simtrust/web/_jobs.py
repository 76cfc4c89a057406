"""Bulk actions as background jobs with progress (suspend, resume, move to a group).

A job walks its selection in batches of ICCIDs and hands each batch to the
inventory's bulk write (one transaction and one audit record per SIM), so a
page can show progress and a crash loses at most the batch in flight: every
batch already committed is in the store and in the audit trail.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simtrust.errors import SimtrustError
from simtrust.subscriber import BulkOutcome

__all__ = ["BulkJob", "JobBoard"]

_SKIPS_KEPT = 200
_JOBS_KEPT = 200


@dataclass(slots=True)
class BulkJob:
    id: str
    action: str
    key_id: str
    tenant_id: str | None
    total: int
    done: int = 0
    changed: int = 0
    skipped: int = 0
    reasons: list[tuple[str, str]] = field(default_factory=list)
    status: str = "running"
    error: str = ""
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "total": self.total, "done": self.done,
                "changed": self.changed, "skipped": self.skipped, "status": self.status,
                "error": self.error, "seconds": round(self.seconds, 3),
                "reasons": [{"iccid": i, "reason": r} for i, r in self.reasons]}


class JobBoard:
    """Running and recent jobs of this process."""

    __slots__ = ("_jobs", "_lock")

    def __init__(self) -> None:
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JobBoard({len(self._jobs)} jobs)"

    def start(self, action: str, key_id: str, tenant_id: str | None, total: int,
              batches: Iterable[list[str]],
              apply: Callable[[list[str]], BulkOutcome]) -> BulkJob:
        job = BulkJob(secrets.token_urlsafe(12), action, key_id, tenant_id, total)
        with self._lock:
            if len(self._jobs) >= _JOBS_KEPT:
                finished = [j for j in self._jobs.values() if j.status != "running"]
                for old in sorted(finished, key=lambda j: j.started)[: len(finished) // 2 + 1]:
                    del self._jobs[old.id]
            self._jobs[job.id] = job
        thread = threading.Thread(target=self._run, args=(job, batches, apply),
                                  name=f"bulk-{job.id}", daemon=True)
        thread.start()
        return job

    def get(self, job_id: str, key_id: str) -> BulkJob | None:
        """The job, only for the API key that started it."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.key_id == key_id else None

    @staticmethod
    def _run(job: BulkJob, batches: Iterable[list[str]],
             apply: Callable[[list[str]], BulkOutcome]) -> None:
        try:
            for batch in batches:
                outcome = apply(batch)
                job.changed += outcome.changed
                job.skipped += len(outcome.skipped)
                room = _SKIPS_KEPT - len(job.reasons)
                if room > 0:
                    job.reasons.extend(list(outcome.skipped.items())[:room])
                job.done += len(batch)
                job.seconds = time.perf_counter() - job.started
            job.status = "done"
        except SimtrustError as exc:
            job.status = "failed"
            job.error = exc.detail
        except Exception as exc:  # noqa: BLE001 - a job thread reports every failure on its page
            job.status = "failed"
            job.error = f"internal error ({type(exc).__name__})"
        job.seconds = time.perf_counter() - job.started
