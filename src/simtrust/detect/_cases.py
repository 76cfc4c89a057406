"""Fraud cases: the fraud detectors' alerts as the audit log holds them, and analysts' verdicts.

An alert delivered to the audit sink is a ``detect.alert.<kind>`` record; an
analyst's verdict on it (``confirmed`` or ``dismissed``, with a note) is a
``fraud.case.verdict`` record of the same subject and tenant, written
durably before it is acknowledged. The latest verdict of an alert is its
case state. Nothing is kept beside the audit log (its hash chain is the
evidence trail, docs/decisions/foundation-audit-chain.md).
"""

from __future__ import annotations

from typing import Any

from simtrust.audit import AuditEvent, AuditLog
from simtrust.detect._fraud import FRAUD_ALERT_KINDS
from simtrust.errors import InvalidInput, NotFound

__all__ = ["VERDICTS", "FraudCases"]

VERDICTS = ("confirmed", "dismissed")
_ACTIONS = tuple(f"detect.alert.{k}" for k in FRAUD_ALERT_KINDS)
_VERDICT = "fraud.case.verdict"


class FraudCases:
    """Read fraud alerts with their case state; record verdicts (audit-backed)."""

    __slots__ = ("_audit",)

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def __repr__(self) -> str:
        return "FraudCases()"

    def alert(self, event_id: str) -> AuditEvent:
        """The audit record of one fraud alert; NotFound for anything else."""
        event = self._audit.get(event_id)
        if event is None or event.action not in _ACTIONS:
            raise NotFound(f"no fraud alert {event_id!r}")
        return event

    def alerts(self, *, kind: str | None = None, imsi: str | None = None,
               tenant_id: str | None = None, before_seq: int | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """Fraud alerts newest first, each with its ``event_id``, ``seq`` and ``case``."""
        if kind is not None and kind not in FRAUD_ALERT_KINDS:
            raise InvalidInput(f"kind is one of {', '.join(FRAUD_ALERT_KINDS)}", field="kind")
        subject = f"sim:{imsi}" if imsi is not None else None
        found: list[AuditEvent] = []
        for action in (f"detect.alert.{kind}",) if kind else _ACTIONS:
            found += self._audit.recent(action=action, tenant_id=tenant_id, subject=subject,
                                        before_seq=before_seq, limit=limit)
        found.sort(key=lambda e: e.seq, reverse=True)
        found = found[:limit]
        cases: dict[str, dict[str, Any]] = {}
        for subj in {e.subject for e in found}:
            for v in self._audit.recent(action=_VERDICT, subject=subj, limit=1000):
                cases.setdefault(v.details.get("alert", ""), _case(v))  # newest first
        return [self.view(e, cases.get(e.event_id)) for e in found]

    def case(self, event: AuditEvent) -> dict[str, Any] | None:
        """The latest verdict on an alert, or None (open)."""
        for v in self._audit.recent(action=_VERDICT, subject=event.subject, limit=1000):
            if v.details.get("alert") == event.event_id:
                return _case(v)
        return None

    @staticmethod
    def view(event: AuditEvent, case: dict[str, Any] | None) -> dict[str, Any]:
        return {"event_id": event.event_id, "seq": event.seq, **event.details,
                "case": case or {"state": "open"}}

    def verdict(self, event: AuditEvent, verdict: str, note: str, *,
                actor: str) -> dict[str, Any]:
        """Record a verdict on ``event`` (durable before it returns); the new case state."""
        if verdict not in VERDICTS:
            raise InvalidInput(f"verdict is one of {', '.join(VERDICTS)}", field="verdict")
        if len(note) > 500:
            raise InvalidInput("a note is at most 500 characters", field="note")
        record = self._audit.append(
            actor=actor, action=_VERDICT, subject=event.subject, outcome="success",
            reason=verdict, tenant_id=event.tenant_id,
            details={"alert": event.event_id, "verdict": verdict, "note": note},
            durable=True)
        return _case(record)


def _case(record: AuditEvent) -> dict[str, Any]:
    return {"state": record.details.get("verdict"), "note": record.details.get("note", ""),
            "by": record.actor, "at": record.at.isoformat(), "event_id": record.event_id}
