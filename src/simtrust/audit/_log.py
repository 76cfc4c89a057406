"""Append-only, hash-chained security event log.

Each record carries a sequence number and ``hash = SHA-256(prev_hash ||
canonical(record))`` where ``canonical`` is the JSON of the record's fields
with sorted keys and no whitespace, and the first record chains from 32 zero
bytes. Any altered, removed, inserted or reordered record breaks the chain at a
place :meth:`AuditLog.verify` names. Batches of record hashes are later
anchored on the ledger as Merkle roots (``simtrust.audit.anchoring``).

Appends are optimistic: the log remembers its head, and the sequence number is
the primary key, so a second writer (another process on the same store) makes
the insert fail; the log then reloads its head and retries.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simtrust.errors import Conflict, InvalidInput
from simtrust.store import Database, Migration

__all__ = [
    "GENESIS_HASH",
    "MIGRATIONS",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "ChainBreak",
    "chain_hash",
]

GENESIS_HASH = bytes(32)
_OUTCOMES = frozenset({"success", "failure", "allow", "deny", "alert", "info"})

MIGRATIONS = [
    Migration(
        "audit",
        1,
        "audit events",
        """
        CREATE TABLE audit_events (
            seq {bigint} PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            tenant_id TEXT,
            details TEXT NOT NULL,
            prev_hash {blob} NOT NULL,
            hash {blob} NOT NULL
        );
        CREATE INDEX audit_events_subject ON audit_events (subject, at);
        CREATE INDEX audit_events_tenant ON audit_events (tenant_id, at);
        CREATE INDEX audit_events_at ON audit_events (at)
        """,
    ),
    Migration(
        "audit",
        2,
        "alerts newest first (the dashboard's feed)",
        "CREATE INDEX audit_events_outcome ON audit_events (outcome, seq)",
    ),
    Migration(
        "audit",
        3,
        "records of one action newest first (the dashboard's violations and actions taken)",
        "CREATE INDEX audit_events_action ON audit_events (action, seq)",
    ),
]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What a caller asks to record (the log adds id, time, sequence, hashes)."""

    actor: str
    action: str
    subject: str
    outcome: str
    reason: str = ""
    tenant_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One stored record of the chain."""

    seq: int
    event_id: str
    at: datetime
    actor: str
    action: str
    subject: str
    outcome: str
    reason: str
    tenant_id: str | None
    details: dict[str, Any]
    prev_hash: bytes
    hash: bytes

    def canonical(self) -> bytes:
        return _canonical(
            self.seq, self.event_id, _iso(self.at), self.actor, self.action, self.subject,
            self.outcome, self.reason, self.tenant_id, self.details,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "outcome": self.outcome,
            "reason": self.reason,
            "tenant_id": self.tenant_id,
            "details": self.details,
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and how the chain fails verification."""

    seq: int
    event_id: str | None
    problem: str  # "altered" | "removed" | "reordered" | "inserted"
    detail: str


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _canonical(
    seq: int, event_id: str, at: str, actor: str, action: str, subject: str,
    outcome: str, reason: str, tenant_id: str | None, details: dict[str, Any],
) -> bytes:
    return _canonical_with(seq, event_id, at, actor, action, subject, outcome, reason,
                           tenant_id, _details_json(details))


# json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False) without
# building an encoder per call (same parameters, same output).
_DETAILS_JSON: Callable[[Any], str] = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _details_json(details: dict[str, Any]) -> str:
    return _DETAILS_JSON(details)


def _uuid7s(n: int, unix_ms: int) -> list[str]:
    """``n`` UUIDs of RFC 9562 version 7 (§5.7: 48-bit Unix time in ms, then 74 random
    bits) as ``str(uuid.UUID(...))`` formats them, from one read of the OS random source.

    Time-ordered ids land at the end of the ``event_id`` index (UNIQUE) instead of on a
    random leaf page each, so a batch of records dirties a few index pages, not one per
    record (RFC 9562 §6.10, docs/decisions/corenet-s6a-audit-ids.md).
    """
    raw = bytearray(os.urandom(16 * n))
    for i, octet in enumerate((unix_ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big")):
        raw[i::16] = bytes((octet,)) * n
    raw[6::16] = bytes((b & 0x0F) | 0x70 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    h = raw.hex()
    # Ascending within the call too (RFC 9562 §6.2), so the records of one append, in
    # sequence order, are appended to the index in order.
    return sorted(f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-"
                  f"{h[i + 20:i + 32]}" for i in range(0, 32 * n, 32))


# The C string quoter json.dumps(ensure_ascii=False) itself uses.
_q: Callable[[str], str] = json.encoder.encode_basestring


def _canonical_with(
    seq: int, event_id: str, at: str, actor: str, action: str, subject: str,
    outcome: str, reason: str, tenant_id: str | None, details_json: str,
) -> bytes:
    """JSON of the record with sorted keys and no whitespace, details already encoded.

    Byte-identical to ``json.dumps(record, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``; built by hand so the details are encoded once per append.
    """
    return (
        f'{{"action":{_q(action)},"actor":{_q(actor)},"at":{_q(at)},'
        f'"details":{details_json},"event_id":{_q(event_id)},"outcome":{_q(outcome)},'
        f'"reason":{_q(reason)},"seq":{seq},"subject":{_q(subject)},'
        f'"tenant_id":{"null" if tenant_id is None else _q(tenant_id)}}}'
    ).encode()


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


_COLUMNS = (
    "seq, event_id, at, actor, action, subject, outcome, reason, tenant_id, details,"
    " prev_hash, hash"
)


class AuditLog:
    """The audit chain over one :class:`~simtrust.store.Database`."""

    __slots__ = ("_clock", "_db", "_head")

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._head: tuple[int, bytes] | None = None

    def __repr__(self) -> str:
        return f"AuditLog({self._db!r})"

    def _load_head(self) -> tuple[int, bytes]:
        row = self._db.query_one("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        return (0, GENESIS_HASH) if row is None else (int(row[0]), bytes(row[1]))

    def append(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        outcome: str,
        reason: str = "",
        tenant_id: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        durable: bool = False,
    ) -> AuditEvent:
        entry = AuditEntry(actor, action, subject, outcome, reason, tenant_id, details or {}, at)
        return self.append_many([entry], durable=durable)[0]

    def append_many(
        self, entries: Sequence[AuditEntry], *, durable: bool = False, returning: bool = True,
    ) -> list[AuditEvent]:
        """Append several records in one transaction (the fast path for hot services).

        ``durable``: the records are on disk when this returns (see
        :meth:`~simtrust.store.Database.transaction`); inside a caller's
        transaction, that transaction's commit becomes durable. ``returning=False``:
        return an empty list instead of the :class:`AuditEvent` of each record
        (a caller that does not read them saves building them).
        """
        for entry in entries:
            _check_entry(entry)
        for _attempt in range(5):
            try:
                return self._append_once(entries, durable, returning)
            except Conflict:
                self._head = None
        raise Conflict("audit log is contended; append failed after retries")

    def _append_once(
        self, entries: Sequence[AuditEntry], durable: bool, returning: bool = True,
    ) -> list[AuditEvent]:
        with self._db.transaction(durable=durable):
            if self._head is None:
                self._head = self._load_head()
            seq, prev = self._head
            now = self._clock().astimezone(UTC)
            now_text = _iso(now)  # one clock reading and text for the records without a time
            # If the caller's outer transaction rolls back, these records vanish:
            # forget the head so the next append reloads it from the store.
            self._db.on_rollback(self._forget_head)
            events: list[AuditEvent] = []
            rows: list[tuple[Any, ...]] = []
            event_ids = _uuid7s(len(entries), int(now.timestamp() * 1000))
            for entry, event_id in zip(entries, event_ids, strict=True):
                seq += 1
                if entry.at is None:
                    at, at_text = now, now_text
                else:
                    at = entry.at.astimezone(UTC)
                    at_text = _iso(at)
                details_json = _DETAILS_JSON(entry.details)
                canonical = _canonical_with(
                    seq, event_id, at_text, entry.actor, entry.action, entry.subject,
                    entry.outcome, entry.reason, entry.tenant_id, details_json,
                )
                digest = chain_hash(prev, canonical)
                if returning:
                    events.append(AuditEvent(
                        seq, event_id, at, entry.actor, entry.action,
                        entry.subject, entry.outcome, entry.reason, entry.tenant_id,
                        dict(entry.details), prev, digest,
                    ))
                rows.append((
                    seq, event_id, at_text, entry.actor, entry.action, entry.subject,
                    entry.outcome, entry.reason, entry.tenant_id, details_json, prev, digest,
                ))
                prev = digest
            try:
                self._db.executemany(
                    f"INSERT INTO audit_events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
            except Conflict:
                self._head = None
                raise
            self._head = (seq, prev)
        return events

    def _forget_head(self) -> None:
        self._head = None

    def get(self, event_id: str) -> AuditEvent | None:
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM audit_events WHERE event_id = ?", (event_id,)
        )
        return None if row is None else _from_row(row)

    def head(self) -> tuple[int, bytes]:
        """(last sequence number, last hash) as stored now."""
        return self._load_head()

    def query(
        self,
        *,
        subject: str | None = None,
        tenant_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Records matching every given filter, oldest first (``limit`` at most 10,000)."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", field="limit")
        clauses = ["seq > ?"]
        params: list[Any] = [after_seq]
        for column, value in (("subject", subject), ("tenant_id", tenant_id), ("action", action)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_iso(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_iso(until))
        sql = (
            f"SELECT {_COLUMNS} FROM audit_events WHERE {' AND '.join(clauses)}"
            " ORDER BY seq LIMIT ?"
        )
        return [_from_row(r) for r in self._db.query(sql, [*params, limit])]

    def recent(
        self,
        *,
        outcome: str | None = None,
        subject: str | None = None,
        tenant_id: str | None = None,
        action: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """Records matching every given filter, newest first (keyset by ``before_seq``)."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", field="limit")
        clauses = ["1 = 1"]
        params: list[Any] = []
        for column, value in (("outcome", outcome), ("subject", subject),
                              ("tenant_id", tenant_id), ("action", action)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        sql = (
            f"SELECT {_COLUMNS} FROM audit_events WHERE {' AND '.join(clauses)}"
            " ORDER BY seq DESC LIMIT ?"
        )
        return [_from_row(r) for r in self._db.query(sql, [*params, limit])]

    def iter_all(self, batch: int = 5000) -> Iterable[AuditEvent]:
        after = 0
        while True:
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            )
            if not rows:
                return
            for row in rows:
                event = _from_row(row)
                after = event.seq
                yield event

    def count(self) -> int:
        row = self._db.query_one("SELECT COUNT(*) FROM audit_events")
        return int(row[0]) if row else 0

    def verify(self, progress: Callable[[int], None] | None = None) -> list[ChainBreak]:
        """Walk the chain; return every break found (empty list: intact).

        A record whose own hash does not match its content is ``altered``; a
        gap in sequence numbers is ``removed``; a record whose ``prev_hash`` is
        the hash of a record other than its predecessor is ``reordered`` (or
        ``inserted`` when no stored record has that hash).
        """
        breaks: list[ChainBreak] = []
        expected_seq = 1
        prev_hash = GENESIS_HASH
        stored = {bytes(h): int(s) for s, h in self._db.query("SELECT seq, hash FROM audit_events")}
        for n, event in enumerate(self.iter_all(), start=1):
            if event.seq != expected_seq:
                breaks.append(ChainBreak(
                    expected_seq, None, "removed",
                    f"records {expected_seq}..{event.seq - 1} are missing",
                ))
            if chain_hash(event.prev_hash, event.canonical()) != event.hash:
                breaks.append(ChainBreak(
                    event.seq, event.event_id, "altered",
                    f"record {event.seq} does not match its hash",
                ))
            elif event.prev_hash != prev_hash and event.seq == expected_seq:
                origin = stored.get(event.prev_hash)
                if origin is None:
                    breaks.append(ChainBreak(
                        event.seq, event.event_id, "inserted",
                        f"record {event.seq} chains from a hash no stored record has",
                    ))
                else:
                    breaks.append(ChainBreak(
                        event.seq, event.event_id, "reordered",
                        f"record {event.seq} chains from record {origin}, "
                        f"not from record {event.seq - 1}",
                    ))
            prev_hash = event.hash
            expected_seq = event.seq + 1
            if progress is not None:
                progress(n)
        return breaks


def _check_entry(entry: AuditEntry) -> None:
    actor, action, subject = entry.actor, entry.action, entry.subject
    if (actor and action and subject and len(actor) <= 512 and len(action) <= 512
            and len(subject) <= 512 and entry.outcome in _OUTCOMES):
        return  # valid: no error to name (per field below, in the same order as ever)
    for name in ("actor", "action", "subject"):
        value = getattr(entry, name)
        if not value or len(value) > 512:
            raise InvalidInput(f"audit {name} must be 1..512 characters", field=name)
    if entry.outcome not in _OUTCOMES:
        raise InvalidInput(
            f"audit outcome must be one of {sorted(_OUTCOMES)}", field="outcome"
        )


def _from_row(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row[0]),
        event_id=str(row[1]),
        at=_parse_iso(str(row[2])),
        actor=str(row[3]),
        action=str(row[4]),
        subject=str(row[5]),
        outcome=str(row[6]),
        reason=str(row[7]),
        tenant_id=None if row[8] is None else str(row[8]),
        details=json.loads(row[9]),
        prev_hash=bytes(row[10]),
        hash=bytes(row[11]),
    )
