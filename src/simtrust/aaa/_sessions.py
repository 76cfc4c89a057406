"""Accounting sessions, written by group commit before the gateway is answered.

RFC 2866 §2: the server answers an Accounting-Request only once it has
recorded it. Requests arriving together share one transaction (one commit,
one WAL sync on SQLite, one round trip on PostgreSQL); each answer is sent by
the writer after that commit, so an acknowledged record survives kill -9.
Counters are cumulative per session (RFC 2866 §5.3/§5.4, Gigawords of RFC 2869
§5.1/§5.2 folded in): an update never lowers them, and a Stop closes the
session for good. A session's ``visited_plmn`` is set when its serving network
is not the SIM's home network — the usage record roaming settlement reads.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from simtrust.errors import SimtrustError
from simtrust.store import Database

__all__ = ["AccountingLog", "AcctRecord", "Session"]

_log = logging.getLogger("simtrust.aaa.accounting")

_UPSERT = """
INSERT INTO aaa_sessions (session_key, acct_session_id, client_id, imsi, iccid, tenant_id, apn,
    msisdn, imeisv, framed_ip, nas_ip, serving_plmn, visited_plmn, status, started_at,
    updated_at, stopped_at, in_octets, out_octets, in_packets, out_packets, session_time,
    terminate_cause, updates)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (session_key) DO UPDATE SET
    imsi = COALESCE(aaa_sessions.imsi, excluded.imsi),
    iccid = COALESCE(aaa_sessions.iccid, excluded.iccid),
    tenant_id = COALESCE(aaa_sessions.tenant_id, excluded.tenant_id),
    apn = COALESCE(aaa_sessions.apn, excluded.apn),
    msisdn = COALESCE(aaa_sessions.msisdn, excluded.msisdn),
    imeisv = COALESCE(aaa_sessions.imeisv, excluded.imeisv),
    framed_ip = COALESCE(excluded.framed_ip, aaa_sessions.framed_ip),
    serving_plmn = COALESCE(excluded.serving_plmn, aaa_sessions.serving_plmn),
    visited_plmn = COALESCE(excluded.visited_plmn, aaa_sessions.visited_plmn),
    status = CASE WHEN aaa_sessions.status = 'closed' THEN 'closed' ELSE excluded.status END,
    updated_at = excluded.updated_at,
    stopped_at = COALESCE(aaa_sessions.stopped_at, excluded.stopped_at),
    in_octets = CASE WHEN excluded.in_octets > aaa_sessions.in_octets
        THEN excluded.in_octets ELSE aaa_sessions.in_octets END,
    out_octets = CASE WHEN excluded.out_octets > aaa_sessions.out_octets
        THEN excluded.out_octets ELSE aaa_sessions.out_octets END,
    in_packets = CASE WHEN excluded.in_packets > aaa_sessions.in_packets
        THEN excluded.in_packets ELSE aaa_sessions.in_packets END,
    out_packets = CASE WHEN excluded.out_packets > aaa_sessions.out_packets
        THEN excluded.out_packets ELSE aaa_sessions.out_packets END,
    session_time = CASE WHEN excluded.session_time > aaa_sessions.session_time
        THEN excluded.session_time ELSE aaa_sessions.session_time END,
    terminate_cause = COALESCE(excluded.terminate_cause, aaa_sessions.terminate_cause),
    updates = aaa_sessions.updates + 1
"""

# A record of a session already stored (the steady Interim-Update) on SQLite: an UPDATE
# of what it changes, with the upsert's rules column by column (:func:`_update_of`);
# an absent value leaves its column as the upsert's COALESCE would, so only present
# values are named, and an open record leaves the status (indexed) alone.
_FIRST = ("imsi", "iccid", "tenant_id", "apn", "msisdn", "imeisv")  # the first value stays
_LATEST = ("framed_ip", "serving_plmn", "visited_plmn", "terminate_cause")  # a new one wins
_OPTIONAL = _FIRST + _LATEST
_UPDATES: dict[tuple[bool, ...], str] = {}


def _update_sql(present: tuple[bool, ...]) -> str:
    """The UPDATE for a record with ``present`` optional values (and, last, closed)."""
    sql = _UPDATES.get(present)
    if sql is None:
        sets = [f"{c} = COALESCE({c}, ?)" if c in _FIRST else f"{c} = ?"
                for c, there in zip(_OPTIONAL, present, strict=False) if there]
        if present[-1]:
            sets += ["status = 'closed'", "stopped_at = COALESCE(stopped_at, ?)"]
        sets += ["updated_at = ?", *(f"{c} = max({c}, ?)" for c in (
            "in_octets", "out_octets", "in_packets", "out_packets", "session_time")),
                 "updates = updates + 1"]
        sql = _UPDATES[present] = (
            f"UPDATE aaa_sessions SET {', '.join(sets)} WHERE session_key = ?")
    return sql


def _update_of(r: AcctRecord) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE and its parameters that store ``r`` exactly as :data:`_UPSERT` would
    into the row of its session, which exists."""
    values = (r.imsi, r.iccid, r.tenant_id, r.apn, r.msisdn, r.imeisv, r.framed_ip,
              r.serving_plmn, r.visited_plmn, r.terminate_cause)
    closed = r.status == "closed"
    params = [v for v in values if v is not None]
    if closed:
        params.append(r.at)
    params += (r.at, r.in_octets, r.out_octets, r.in_packets, r.out_packets, r.session_time,
               r.session_key)
    return _update_sql((*(v is not None for v in values), closed)), tuple(params)


class _Missing(Exception):
    """A session taken for stored had no row: the burst is written again by upsert."""


_COLUMNS = ("session_key, acct_session_id, client_id, imsi, iccid, tenant_id, apn, msisdn,"
            " imeisv, framed_ip, nas_ip, serving_plmn, visited_plmn, status, started_at,"
            " updated_at, stopped_at, in_octets, out_octets, in_packets, out_packets,"
            " session_time, terminate_cause, updates")


@dataclass(slots=True)
class AcctRecord:
    """One Accounting-Request, reduced to what the session keeps."""

    session_key: str
    acct_session_id: str
    client_id: int
    status: str  # "open" | "closed"
    at: str
    imsi: str | None = None
    iccid: str | None = None
    tenant_id: str | None = None
    apn: str | None = None
    msisdn: str | None = None
    imeisv: str | None = None
    framed_ip: str | None = None
    nas_ip: str | None = None
    serving_plmn: str | None = None
    visited_plmn: str | None = None
    in_octets: int = 0
    out_octets: int = 0
    in_packets: int = 0
    out_packets: int = 0
    session_time: int = 0
    terminate_cause: int | None = None
    #: the cell or area of 3GPP-User-Location-Info (for fraud detection; not stored)
    cell: str | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.session_key, self.acct_session_id, self.client_id, self.imsi, self.iccid,
            self.tenant_id, self.apn, self.msisdn, self.imeisv, self.framed_ip, self.nas_ip,
            self.serving_plmn, self.visited_plmn, self.status, self.at, self.at,
            self.at if self.status == "closed" else None, self.in_octets, self.out_octets,
            self.in_packets, self.out_packets, self.session_time, self.terminate_cause,
        )


@dataclass(frozen=True, slots=True)
class Session:
    """A stored session (the usage record)."""

    session_key: str
    acct_session_id: str
    client_id: int
    imsi: str | None
    iccid: str | None
    tenant_id: str | None
    apn: str | None
    msisdn: str | None
    imeisv: str | None
    framed_ip: str | None
    nas_ip: str | None
    serving_plmn: str | None
    visited_plmn: str | None
    status: str
    started_at: str
    updated_at: str
    stopped_at: str | None
    in_octets: int
    out_octets: int
    in_packets: int
    out_packets: int
    session_time: int
    terminate_cause: int | None
    updates: int

    @classmethod
    def from_row(cls, row: Any) -> Session:
        values = list(row)
        for index in (2, 17, 18, 19, 20, 21, 23):
            values[index] = int(values[index])
        if values[22] is not None:
            values[22] = int(values[22])
        for index in (0, 1, 13, 14, 15):
            values[index] = str(values[index])
        return cls(*values)

    @property
    def roaming(self) -> bool:
        return self.visited_plmn is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.acct_session_id, "client_id": self.client_id,
            "imsi": self.imsi, "iccid": self.iccid, "tenant_id": self.tenant_id,
            "apn": self.apn, "msisdn": self.msisdn, "imeisv": self.imeisv,
            "framed_ip": self.framed_ip, "nas_ip": self.nas_ip,
            "serving_plmn": self.serving_plmn, "visited_plmn": self.visited_plmn,
            "roaming": self.roaming, "status": self.status, "started_at": self.started_at,
            "updated_at": self.updated_at, "stopped_at": self.stopped_at,
            "input_octets": self.in_octets, "output_octets": self.out_octets,
            "input_packets": self.in_packets, "output_packets": self.out_packets,
            "session_time": self.session_time, "terminate_cause": self.terminate_cause,
            "updates": self.updates,
        }


@dataclass(slots=True)
class _Job:
    record: AcctRecord
    done: Callable[[], None]
    failed: Callable[[], None] | None = None


class AccountingLog:
    """Group-committing writer of accounting records; readers of sessions."""

    def __init__(self, db: Database, *, max_batch: int = 2048,
                 on_committed: Callable[[list[AcctRecord]], None] | None = None) -> None:
        self._db = db
        self._max_batch = max_batch
        self.on_committed = on_committed
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self.committed = 0
        self.batches = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="simtrust-acct-writer",
                                        daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AccountingLog(committed={self.committed}, queued={len(self._queue)})"

    def submit(self, record: AcctRecord, done: Callable[[], None],
               failed: Callable[[], None] | None = None) -> None:
        """Queue ``record``; ``done()`` runs on the writer thread after it is committed,
        ``failed()`` if the commit failed (nothing was written; the gateway retransmits)."""
        with self._cond:
            self._queue.append(_Job(record, done, failed))
            self._cond.notify()

    def commit(self, records: list[AcctRecord], stored: Container[str] = ()) -> bool:
        """Write ``records`` in one transaction on the caller's thread (a listener's
        burst); True once committed, False if the commit failed (nothing written).

        ``stored``: keys of sessions whose row exists; on SQLite their records are
        written by an UPDATE of what they change, the others by the upsert, in
        order. If one of those rows is missing after all, the transaction is rolled
        back and the whole burst written again by the upsert.
        """
        try:
            try:
                with self._db.transaction():
                    self._write(records, stored if self._db.dialect == "sqlite" else ())
            except _Missing:
                with self._db.transaction():
                    self._db.executemany(_UPSERT, [record.row() for record in records])
        except SimtrustError as exc:
            self.failures += len(records)
            _log.error("accounting commit failed for %d records: %s", len(records), exc.detail)
            return False
        self.committed += len(records)
        self.batches += 1
        return True

    def _write(self, records: list[AcctRecord], stored: Container[str]) -> None:
        """Runs of records with one statement each: the upsert, or one UPDATE shape;
        :class:`_Missing` if an UPDATE found no row."""
        sql = ""
        rows: list[tuple[Any, ...]] = []
        for record in records:
            if record.session_key in stored:
                this, row = _update_of(record)
            else:
                this, row = _UPSERT, record.row()
            if this is not sql and rows:
                self._write_run(sql, rows)
                rows = []
            sql = this
            rows.append(row)
        if rows:
            self._write_run(sql, rows)

    def _write_run(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if sql is _UPSERT:
            self._db.executemany(sql, rows)
        elif self._db.executemany_count(sql, rows) != len(rows):
            raise _Missing

    def write_now(self, records: list[AcctRecord]) -> None:
        """Write synchronously (Accounting-On/Off clean-ups, tests)."""
        with self._db.transaction():
            self._db.executemany(_UPSERT, [r.row() for r in records])

    def close_client(self, client_id: int, at: str) -> int:
        """Close every open session of a gateway (Accounting-On/Off, RFC 2866 §5.1:
        terminate cause 11, NAS Reboot); returns how many."""
        with self._db.transaction():
            return self._db.execute(
                "UPDATE aaa_sessions SET status = 'closed', stopped_at = ?, updated_at = ?,"
                " terminate_cause = 11 WHERE client_id = ? AND status = 'open'",
                (at, at, client_id),
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if not self._queue and self._stop:
                    return
                batch = [self._queue.popleft()
                         for _ in range(min(len(self._queue), self._max_batch))]
            try:
                with self._db.transaction():
                    self._db.executemany(_UPSERT, [job.record.row() for job in batch])
            except SimtrustError as exc:
                # Not answered: the gateway retransmits and the record comes again.
                self.failures += len(batch)
                _log.error("accounting commit failed for %d records: %s", len(batch), exc.detail)
                for job in batch:
                    if job.failed is not None:
                        job.failed()
                continue
            self.committed += len(batch)
            self.batches += 1
            for job in batch:
                try:
                    job.done()
                except OSError as exc:
                    _log.warning("accounting answer not sent: %s", exc)
            if self.on_committed is not None:
                try:
                    self.on_committed([job.record for job in batch])
                except SimtrustError as exc:
                    _log.error("accounting follow-up failed: %s", exc.detail)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    # -- reads -------------------------------------------------------------------

    def sessions_of(self, iccid: str, *, limit: int = 100, status: str | None = None
                    ) -> list[Session]:
        sql = f"SELECT {_COLUMNS} FROM aaa_sessions WHERE iccid = ?"
        params: list[Any] = [iccid]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        rows = self._db.query(sql + " ORDER BY started_at DESC, session_key LIMIT ?",
                              [*params, limit])
        return [Session.from_row(r) for r in rows]

    def open_sessions_of_imsi(self, imsi: str) -> list[Session]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM aaa_sessions WHERE imsi = ? AND status = 'open'"
            " ORDER BY session_key", (imsi,))
        return [Session.from_row(r) for r in rows]

    def get(self, session_key: str) -> Session | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM aaa_sessions WHERE session_key = ?",
                                 (session_key,))
        return None if row is None else Session.from_row(row)

    def roaming_sessions(
        self, *, closed_only: bool = True, limit: int = 1000,
        after: tuple[str, str] | None = None, visited_plmn: str | None = None,
    ) -> list[Session]:
        """Sessions in a visited network (the input of roaming settlement).

        Ordered by ``(started_at, session_key)``; pass the last row's pair as
        ``after`` for the next page.
        """
        sql = f"SELECT {_COLUMNS} FROM aaa_sessions WHERE visited_plmn IS NOT NULL"
        params: list[Any] = []
        if closed_only:
            sql += " AND status = 'closed'"
        if visited_plmn is not None:
            sql += " AND visited_plmn = ?"
            params.append(visited_plmn)
        if after is not None:
            sql += " AND (started_at > ? OR (started_at = ? AND session_key > ?))"
            params += [after[0], after[0], after[1]]
        rows = self._db.query(sql + " ORDER BY started_at, session_key LIMIT ?",
                              [*params, limit])
        return [Session.from_row(r) for r in rows]
