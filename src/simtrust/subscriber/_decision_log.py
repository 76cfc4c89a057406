"""How attach decisions are written to (and read back from) the audit log.

Every decision is in the hash-chained audit log (``simtrust.audit``). In
``batch`` mode (the default) the plain decisions queued since the last flush
are written as ``attach.decisions`` records, one per tenant, actor and up to
:data:`ROWS_PER_RECORD` decisions, each decision a row of :data:`COLUMNS` with
its own time; in ``record`` mode each is its own ``attach.decide`` record.
Decisions that change state (a binding, a SIM swap, a suspension) are always
their own ``attach.decide`` record, appended with the change.
:func:`decision_history` reads both forms back as one list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from simtrust.audit import AuditEntry, AuditEvent, AuditLog
from simtrust.store import Database

__all__ = [
    "COLUMNS",
    "ROWS_PER_RECORD",
    "DecisionRecorder",
    "DecisionRow",
    "batch_entries",
    "decision_history",
    "record_entry",
    "store_decisions",
]

#: The fields of one decision row, in order.
COLUMNS = ("at", "tenant_id", "iccid", "imsi", "imei", "plmn", "outcome", "reason", "address")
ROWS_PER_RECORD = 256

#: (at ISO-8601, tenant, ICCID, IMSI, IMEI, serving PLMN, allow|deny, reason, address)
DecisionRow = tuple[str, str | None, str | None, str, str, str, str, str, str | None]
#: Called with decisions' rows inside the transaction that stores their audit records.
DecisionRecorder = Callable[[Sequence[DecisionRow]], None]


def store_decisions(
    db: Database, audit: AuditLog, entries: Sequence[AuditEntry], rows: Sequence[DecisionRow],
    recorders: Sequence[DecisionRecorder],
) -> None:
    """Append ``entries`` durably; what ``recorders`` write for ``rows`` commits with them
    (one transaction and one commit, not one more per recorder)."""
    if not recorders:
        audit.append_many(entries, durable=True)
        return
    with db.transaction(durable=True):
        audit.append_many(entries, durable=True)
        for recorder in recorders:
            recorder(rows)


def record_entry(actor: str, row: DecisionRow) -> AuditEntry:
    """One decision as its own ``attach.decide`` record."""
    at, tenant, iccid, imsi, imei, plmn, outcome, reason, address = row
    return AuditEntry(
        actor=actor,
        action="attach.decide",
        subject=f"sim:{iccid}" if iccid else f"imsi:{imsi}",
        outcome=outcome,
        reason=reason,
        tenant_id=tenant,
        details={"imsi": imsi, "imei": imei, "plmn": plmn, "address": address},
        at=datetime.fromisoformat(at),
    )


def batch_entries(
    queued: Iterable[tuple[str, DecisionRow]], per_record: int = ROWS_PER_RECORD
) -> list[AuditEntry]:
    """``attach.decisions`` records for queued (actor, row) pairs, per tenant and actor."""
    groups: dict[tuple[str | None, str], list[DecisionRow]] = {}
    for actor, row in queued:
        groups.setdefault((row[1], actor), []).append(row)
    entries = []
    for (tenant, actor), rows in groups.items():
        for start in range(0, len(rows), per_record):
            chunk = rows[start : start + per_record]
            allowed = sum(1 for r in chunk if r[6] == "allow")
            entries.append(AuditEntry(
                actor=actor,
                action="attach.decisions",
                subject=f"tenant:{tenant}" if tenant else "attach:unknown-sims",
                outcome="info",
                reason=f"{allowed} allow, {len(chunk) - allowed} deny",
                tenant_id=tenant,
                details={
                    "columns": list(COLUMNS),
                    "rows": [list(r) for r in chunk],
                    "first": chunk[0][0],
                    "last": chunk[-1][0],
                },
                at=datetime.fromisoformat(chunk[-1][0]),
            ))
    return entries


def _rows(event: AuditEvent) -> Iterator[dict[str, Any]]:
    if event.action == "attach.decisions":
        columns = event.details.get("columns", list(COLUMNS))
        for values in event.details.get("rows", []):
            row = dict(zip(columns, values, strict=False))
            row["audit_seq"] = event.seq
            row["actor"] = event.actor
            yield row
    elif event.action == "attach.decide":
        yield {
            "at": event.at.isoformat(),
            "tenant_id": event.tenant_id,
            "iccid": event.subject.removeprefix("sim:") if event.subject.startswith("sim:")
            else None,
            "imsi": event.details.get("imsi"),
            "imei": event.details.get("imei"),
            "plmn": event.details.get("plmn"),
            "outcome": event.outcome,
            "reason": event.reason,
            "address": event.details.get("address"),
            "audit_seq": event.seq,
            "actor": event.actor,
        }


def decision_history(
    audit: AuditLog,
    *,
    tenant_id: str | None,
    imsi: str | None = None,
    iccid: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Attach decisions of a tenant (optionally one SIM), oldest first, both record forms.

    ``tenant_id=None`` reads every tenant's (the operator's view).
    """
    found: list[dict[str, Any]] = []
    after = 0
    floor = since.isoformat() if since is not None else ""
    while len(found) < limit:
        batch = audit.query(tenant_id=tenant_id, since=since, after_seq=after, limit=1000)
        if not batch:
            break
        for event in batch:
            after = event.seq
            for row in _rows(event):
                if imsi is not None and row["imsi"] != imsi:
                    continue
                if iccid is not None and row["iccid"] != iccid:
                    continue
                if row["at"] < floor:
                    continue
                found.append(row)
    found.sort(key=lambda r: (r["at"], r["audit_seq"]))
    return found[:limit]
