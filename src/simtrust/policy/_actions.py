"""Carrying out policy actions: ``log``, ``alert`` (webhook, MQTT), ``block``, ``remove``.

Every violation and every action taken is written to the audit log. Side
effects run on a worker thread so the inline decision path never waits for a
webhook, a broker or the store; a ``remove`` also takes effect synchronously
in the engine's own removed set. Repeated violations with the same key (one
rule, one destination, one period) are acted on once and counted after that.
The seams other services fill are small protocols: :class:`RemoveAction`
(suspend the SIM, revoke its credentials); alerts go through the sinks of
:mod:`simtrust.alerts` (webhook, MQTT), the audit log through its
:class:`~simtrust.alerts.AuditWriter` protocol.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from simtrust.alerts import AlertSink, AuditWriter
from simtrust.domain import Imsi, ImsiDigits
from simtrust.errors import SimtrustError
from simtrust.policy._evaluate import Decision, Violation
from simtrust.policy._model import Action

__all__ = [
    "ActionDispatcher",
    "PolicyAlert",
    "RecordingRemoveAction",
    "RemoveAction",
]

log = logging.getLogger(__name__)


class RemoveAction(Protocol):
    """Take a SIM off the network: suspend it (next attach denied), revoke its credentials.

    The subscriber inventory fills this (SIM → ``suspended``), identity adds
    credential revocation; compose several with :meth:`ActionDispatcher`'s list.
    Raise a :class:`~simtrust.errors.SimtrustError` on failure (it is audited).
    """

    def remove(self, imsi: Imsi, *, tenant_id: str, reason: str, actor: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PolicyAlert:
    """A policy violation as :mod:`simtrust.alerts` sinks deliver it."""

    imsi: ImsiDigits
    tenant_id: str
    at: float
    violation: Violation
    flow: dict[str, Any]

    @property
    def source(self) -> str:
        return "policy"

    @property
    def kind(self) -> str:
        return self.violation.kind

    @property
    def summary(self) -> str:
        return self.violation.detail

    @property
    def webhook_url(self) -> str | None:
        return None

    def document(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "policy-violation",
            "imsi": self.imsi,
            "tenant_id": self.tenant_id,
            "at": self.at,
            "violation": self.violation.to_dict(),
            "flow": self.flow,
        }


class RecordingRemoveAction:
    """A :class:`RemoveAction` that only records (tests; runs without an inventory)."""

    def __init__(self) -> None:
        self.removed: list[tuple[str, str]] = []

    def remove(self, imsi: Imsi, *, tenant_id: str, reason: str, actor: str) -> None:
        self.removed.append((str(imsi), reason))


_Job = tuple[Decision, str, dict[str, Any], float]


@dataclass(slots=True)
class _Budget:
    """Distinct violations of one rule by one SIM in one minute."""

    minute: int
    used: int
    tenant_id: str
    sample: Violation


@dataclass(frozen=True, slots=True)
class _Summary:
    imsi: ImsiDigits
    budget: _Budget
    suppressed: int


class ActionDispatcher:
    """Audits violations and runs their actions on a worker thread.

    ``on_remove`` is called synchronously (the engine marks the SIM removed
    before the next decision); the :class:`RemoveAction` callbacks run on the
    worker. :meth:`flush` waits until everything queued is done.
    """

    def __init__(self, audit: AuditWriter | None = None, *,
                 sinks: Sequence[AlertSink[PolicyAlert]] = (),
                 removers: Sequence[RemoveAction] = (), actor: str = "policy-engine",
                 max_keys: int = 200_000, max_distinct_per_minute: int = 20) -> None:
        self.audit = audit
        self.sinks = list(sinks)
        self.removers = list(removers)
        self.actor = actor
        self._seen: dict[str, int] = {}
        self._max_keys = max_keys
        self._per_minute = max_distinct_per_minute
        self._budget: dict[tuple[ImsiDigits, str], _Budget] = {}
        #: distinct violations not acted on individually (over the per-minute budget)
        self.suppressed = 0
        self._queue: queue.Queue[_Job | _Summary | threading.Event] = queue.Queue()
        self._lock = threading.Lock()
        self.failures = 0
        self.on_remove: Callable[[str], None] | None = None
        self._worker = threading.Thread(target=self._run, name="policy-actions", daemon=True)
        self._worker.start()

    def submit(self, decision: Decision, tenant_id: str, flow: dict[str, Any],
               at: float) -> None:
        """Queue the violations of ``decision``; already-seen violation keys are only counted."""
        fresh = []
        minute = int(at // 60)
        # A decision made without a SIM (none carries violations) keys on "".
        imsi = decision.imsi if decision.imsi is not None else ImsiDigits("")
        with self._lock:
            for v in decision.violations:
                n = self._seen.get(v.key, 0)
                if n == 0:
                    if len(self._seen) >= self._max_keys:
                        self._seen.clear()
                    # a scanner breaks one rule towards thousands of destinations: act on
                    # the first few per rule and minute, count the rest
                    bkey = (imsi, v.rule_id)
                    budget = self._budget.get(bkey)
                    if budget is None or budget.minute != minute:
                        if budget is not None:
                            self._summarise(imsi, budget)
                        budget = self._budget[bkey] = _Budget(minute, 0, tenant_id, v)
                    if budget.used < self._per_minute:
                        fresh.append(v)
                    else:
                        self.suppressed += 1
                    budget.used += 1
                self._seen[v.key] = n + 1
        if not fresh:
            return
        if decision.imsi and self.on_remove is not None and any(
                Action.REMOVE in v.actions for v in fresh):
            self.on_remove(decision.imsi)
        self._queue.put((Decision(decision.allowed, tuple(fresh), decision.imsi, decision.reason),
                         tenant_id, flow, at))

    def repeats(self, key: str) -> int:
        return self._seen.get(key, 0)

    def violation_counts(self) -> dict[str, int]:
        """How often each violation key was seen (acted on once, counted always)."""
        with self._lock:
            return dict(self._seen)

    def _summarise(self, imsi: ImsiDigits, budget: _Budget) -> None:
        if budget.used > self._per_minute:
            self._queue.put(_Summary(imsi, budget, budget.used - self._per_minute))

    def _sweep(self) -> None:
        minute = int(time.time() // 60)
        with self._lock:
            for key, budget in list(self._budget.items()):
                if budget.minute < minute:
                    self._summarise(key[0], budget)
                    del self._budget[key]

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for queued work, writing summaries of violations counted but not acted on."""
        with self._lock:
            for (imsi, _rule), budget in self._budget.items():
                self._summarise(imsi, budget)
            self._budget.clear()
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self.flush()

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=30.0)
            except queue.Empty:
                self._sweep()  # summarise budgets of minutes that ended without a new violation
                continue
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                if isinstance(job, _Summary):
                    self._summary(job)
                else:
                    self._handle(*job)
            except Exception:  # one bad job must not stop enforcement of the next
                self.failures += 1
                log.exception("policy action failed")

    def _audit(self, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.append(actor=self.actor, **fields)

    def _handle(self, decision: Decision, tenant_id: str, flow: dict[str, Any],
                at: float) -> None:
        imsi = decision.imsi
        subject = f"imsi:{imsi or 'unknown'}"
        for v in decision.violations:
            details = {"violation": v.to_dict(), "flow": flow, "at": at}
            self._audit(action="policy.violation", subject=subject,
                        outcome="deny" if not decision.allowed else "alert",
                        reason=v.kind, tenant_id=tenant_id, details=details)
            for action in v.actions:
                if action is Action.LOG:
                    continue  # the violation record above is the log entry
                if action is Action.BLOCK:
                    self._audit(action="policy.block", subject=subject, outcome="success",
                                reason=v.kind, tenant_id=tenant_id,
                                details={"rule_id": v.rule_id, "policy": v.policy,
                                         "version": v.version, "flow": flow})
                elif imsi is None:
                    continue  # alerts and removal name a SIM
                elif action is Action.ALERT:
                    self._alert(PolicyAlert(imsi, tenant_id, at, v, flow), subject)
                elif action is Action.REMOVE:
                    self._remove(imsi, tenant_id, v, subject)

    def _summary(self, job: _Summary) -> None:
        v, b = job.budget.sample, job.budget
        self._audit(action="policy.violation", subject=f"imsi:{job.imsi}", outcome="info",
                    reason=v.kind, tenant_id=b.tenant_id,
                    details={"summary": True, "rule_id": v.rule_id, "policy": v.policy,
                             "version": v.version, "minute": b.minute * 60,
                             "distinct_violations": b.used, "not_acted_on": job.suppressed})

    def _alert(self, alert: PolicyAlert, subject: str) -> None:
        for sink in self.sinks:
            outcome, reason = "success", alert.violation.kind
            try:
                sink.send(alert)
            except SimtrustError as exc:
                self.failures += 1
                outcome, reason = "failure", exc.detail
            self._audit(action="policy.alert", subject=subject, outcome=outcome, reason=reason,
                        tenant_id=alert.tenant_id,
                        details={"sink": repr(sink), "rule_id": alert.violation.rule_id})

    def _remove(self, imsi: ImsiDigits, tenant_id: str, v: Violation, subject: str) -> None:
        reason = f"policy {v.policy} v{v.version} rule {v.rule_id}: {v.kind}"
        if not self.removers:
            self._audit(action="policy.remove", subject=subject, outcome="success",
                        reason=v.kind, tenant_id=tenant_id,
                        details={"note": "enforced at the gateway only (no remover set)"})
        for remover in self.removers:
            outcome, why = "success", v.kind
            try:
                remover.remove(Imsi(imsi), tenant_id=tenant_id, reason=reason,
                               actor=self.actor)
            except SimtrustError as exc:
                self.failures += 1
                outcome, why = "failure", exc.detail
            self._audit(action="policy.remove", subject=subject, outcome=outcome, reason=why,
                        tenant_id=tenant_id, details={"remover": type(remover).__name__,
                                                      "rule_id": v.rule_id})
