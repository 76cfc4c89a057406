"""The equipment blocklist: IMEIs and TAC ranges, CEIR-like, global or per tenant.

An IMEI entry is stored as its 14 leading digits (TAC + SNR), so it matches the
IMEI with any check digit and every IMEISV of that equipment (TS 23.003 §6.2).
A TAC range blocks every IMEI whose first 8 digits fall in it, inclusive.
Entries with no tenant apply to every tenant (a national CEIR list); tenant
entries apply to that tenant's SIMs only.

CSV import (all-or-nothing, line-numbered errors), header names case-insensitive:
``type`` (``imei`` or ``tac``), ``value`` (IMEI, IMEISV or 14 digits; or first
TAC), ``value_to`` (last TAC of a range, optional), ``reason`` (optional).
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.domain import Imei, ImeiSv, Tac, luhn_check_digit
from simtrust.errors import InvalidIdentifier, InvalidInput, NotFound
from simtrust.store import Database
from simtrust.subscriber._changes import ChangeFeed
from simtrust.subscriber._errors import ImportRejected, RowError

__all__ = ["BlockMatch", "Blocklist", "BlocklistEntry", "BlocklistIndex", "missing_block"]


def missing_block(entry_id: int) -> NotFound:
    """The error for an entry that is not there (or not the caller's: the same answer)."""
    return NotFound(f"no blocklist entry {entry_id}", entry_id=entry_id)


@dataclass(frozen=True, slots=True)
class BlocklistEntry:
    id: int
    tenant_id: str | None
    kind: str  # "imei" | "tac"
    first: str
    last: str
    reason: str
    source: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "kind": self.kind,
            "first": self.first,
            "last": self.last,
            "reason": self.reason,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BlockMatch:
    """Why an IMEI is blocked: the entry id, its kind and its reason."""

    entry_id: int
    kind: str
    reason: str


def _imei_body(text: str) -> str:
    """The 14 digits (TAC + SNR) of an IMEI, IMEISV or bare 14-digit body."""
    value = text.strip()
    if len(value) == 15:
        return Imei(value).value[:14]
    if len(value) == 16:
        return ImeiSv(value).value[:14]
    if len(value) == 14 and (value.isascii() and value.isdigit()):
        return value
    raise InvalidIdentifier(
        "blocklisted IMEI must have 14, 15 (IMEI) or 16 (IMEISV) digits",
        kind="IMEI",
        reason="length",
    )


class BlocklistIndex:
    """An immutable in-memory snapshot answering :meth:`match` in O(log n)."""

    __slots__ = ("_bounds", "_imeis", "_segments")

    def __init__(self, entries: Iterable[BlocklistEntry]) -> None:
        self._imeis: dict[str, list[tuple[str | None, BlockMatch]]] = {}
        ranges: list[tuple[int, int, str | None, BlockMatch]] = []
        for entry in entries:
            match = BlockMatch(entry.id, entry.kind, entry.reason)
            if entry.kind == "imei":
                self._imeis.setdefault(entry.first, []).append((entry.tenant_id, match))
            else:
                ranges.append((int(entry.first), int(entry.last), entry.tenant_id, match))
        # Cut the TAC line into disjoint segments, each listing the ranges covering it.
        points = sorted({r[0] for r in ranges} | {r[1] + 1 for r in ranges})
        self._bounds: list[int] = points
        self._segments: list[list[tuple[str | None, BlockMatch]]] = []
        for i, start in enumerate(points):
            end = points[i + 1] - 1 if i + 1 < len(points) else start
            covering = [(t, m) for lo, hi, t, m in ranges if lo <= start and end <= hi]
            self._segments.append(covering)

    def __len__(self) -> int:
        return sum(len(v) for v in self._imeis.values()) + len(
            {m.entry_id for seg in self._segments for _, m in seg}
        )

    def matches(self, imei_body: str) -> list[tuple[str | None, BlockMatch]]:
        """Every (tenant or None for global, entry) listing this IMEI body, IMEI entries first."""
        found = list(self._imeis.get(imei_body, ()))
        if self._bounds:
            i = bisect.bisect_right(self._bounds, int(imei_body[:8])) - 1
            if 0 <= i < len(self._segments):
                found.extend(self._segments[i])
        return found

    def match(self, imei_body: str, tenant_id: str | None) -> BlockMatch | None:
        """The first entry blocking this IMEI (14-digit body) for this tenant, if any."""
        for owner, match in self._imeis.get(imei_body, ()):
            if owner is None or owner == tenant_id:
                return match
        if self._bounds:
            i = bisect.bisect_right(self._bounds, int(imei_body[:8])) - 1
            if 0 <= i < len(self._segments):
                for owner, match in self._segments[i]:
                    if owner is None or owner == tenant_id:
                        return match
        return None


_COLUMNS = "id, tenant_id, kind, first_value, last_value, reason, source, created_at"


def _entry(row: Any) -> BlocklistEntry:
    return BlocklistEntry(
        id=int(row[0]),
        tenant_id=None if row[1] is None else str(row[1]),
        kind=str(row[2]),
        first=str(row[3]),
        last=str(row[4]),
        reason=str(row[5]),
        source=str(row[6]),
        created_at=datetime.fromisoformat(str(row[7])),
    )


class Blocklist:
    """The stored blocklist; writes are audited and recorded in the change feed."""

    __slots__ = ("_audit", "_changes", "_clock", "_db", "_notify")

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        clock: Callable[[], datetime],
        changes: ChangeFeed,
        notify: Callable[[str, str], None],
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._changes = changes
        self._notify = notify

    def __repr__(self) -> str:
        return f"Blocklist({self._db!r})"

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        self._db.executemany(
            "INSERT INTO sub_blocklist (tenant_id, kind, first_value, last_value, reason,"
            " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def add_imei(
        self, imei: str, *, actor: str, reason: str = "blocked",
        tenant_id: str | None = None, source: str = "manual",
    ) -> None:
        """Block one equipment (IMEI, IMEISV or 14-digit body)."""
        body = _imei_body(imei)
        self._add([(tenant_id, "imei", body, body, reason[:200], source)], actor, tenant_id)

    def add_tac_range(
        self, first: str, last: str | None = None, *, actor: str, reason: str = "blocked",
        tenant_id: str | None = None, source: str = "manual",
    ) -> None:
        """Block every IMEI whose TAC is in ``first..last`` (inclusive)."""
        lo = Tac(first).value
        hi = Tac(last).value if last is not None else lo
        if hi < lo:
            raise InvalidInput("TAC range end is below its start", field="value_to")
        self._add([(tenant_id, "tac", lo, hi, reason[:200], source)], actor, tenant_id)

    def _add(
        self, entries: list[tuple[str | None, str, str, str, str, str]], actor: str,
        tenant_id: str | None,
    ) -> None:
        now = self._clock().isoformat()
        with self._db.transaction():
            self._insert([(*e, now) for e in entries])
            self._changes.record("blocklist", "*")
            self._audit.append(
                actor=actor, action="blocklist.add", subject="blocklist",
                outcome="success", tenant_id=tenant_id,
                details={"entries": len(entries),
                         "first": [f"{e[1]}:{e[2]}-{e[3]}" for e in entries[:10]]},
            )
        self._notify("blocklist", "*")

    def get(self, entry_id: int) -> BlocklistEntry:
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM sub_blocklist WHERE id = ?", (entry_id,)
        )
        if row is None:
            raise missing_block(entry_id)
        return _entry(row)

    def remove(self, entry_id: int, *, actor: str) -> None:
        entry = self.get(entry_id)
        with self._db.transaction():
            self._db.execute("DELETE FROM sub_blocklist WHERE id = ?", (entry_id,))
            self._changes.record("blocklist", "*")
            self._audit.append(
                actor=actor, action="blocklist.remove", subject="blocklist",
                outcome="success", tenant_id=entry.tenant_id,
                details={"id": entry_id, "kind": entry.kind, "first": entry.first},
            )
        self._notify("blocklist", "*")

    def entries(self, tenant_id: str | None = None, *, include_global: bool = True,
                limit: int = 1000, after_id: int = 0) -> list[BlocklistEntry]:
        sql = f"SELECT {_COLUMNS} FROM sub_blocklist WHERE id > ?"
        params: list[Any] = [after_id]
        if tenant_id is not None:
            sql += " AND (tenant_id = ?" + (" OR tenant_id IS NULL)" if include_global else ")")
            params.append(tenant_id)
        rows = self._db.query(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [_entry(r) for r in rows]

    def index(self) -> BlocklistIndex:
        """A snapshot of every entry for fast matching."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM sub_blocklist")
        return BlocklistIndex(_entry(r) for r in rows)

    def import_csv(
        self, text: str, *, actor: str, tenant_id: str | None = None, source: str = "csv",
    ) -> int:
        """Import a blocklist CSV all-or-nothing; return entries added.

        Raises :class:`ImportRejected` listing every bad line (1-based, header = 1).
        """
        physical = text.removeprefix("\ufeff").split("\n")

        def parse(line_text: str) -> list[str]:
            return next(csv.reader([line_text.rstrip("\r")]), [])

        try:
            header = [h.strip().lower() for h in parse(physical[0])]
        except csv.Error as exc:
            raise InvalidInput(f"malformed header line: {exc}", field="header") from None
        if not any(header):
            raise InvalidInput("blocklist file is empty", field="file")
        for required in ("type", "value"):
            if required not in header:
                raise InvalidInput(f"blocklist header lacks {required!r}", field="header")
        col = {name: i for i, name in enumerate(header)}
        entries: list[tuple[str | None, str, str, str, str, str]] = []
        errors: list[RowError] = []
        for line, line_text in enumerate(physical[1:], start=2):
            try:
                row = parse(line_text)
            except csv.Error as exc:
                errors.append(RowError(line, "row", f"malformed CSV line: {exc}"))
                continue
            if not any(cell.strip() for cell in row):
                continue

            def cell(name: str, row: list[str] = row) -> str:
                i = col.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            kind = cell("type").lower()
            reason = cell("reason") or "blocked"
            try:
                if kind == "imei":
                    body = _imei_body(cell("value"))
                    entries.append((tenant_id, "imei", body, body, reason[:200], source))
                elif kind == "tac":
                    lo = Tac(cell("value")).value
                    hi = Tac(cell("value_to")).value if cell("value_to") else lo
                    if hi < lo:
                        raise InvalidInput("TAC range end is below its start", field="value_to")
                    entries.append((tenant_id, "tac", lo, hi, reason[:200], source))
                else:
                    raise InvalidInput("type must be imei or tac", field="type")
            except InvalidInput as exc:
                errors.append(RowError(line, str(exc.context.get("field", kind or "type")),
                                       exc.detail))
        if errors:
            raise ImportRejected(errors, rows=len(entries) + len(errors))
        if entries:
            self._add(entries, actor, tenant_id)
        return len(entries)


def imei_body(equipment: Imei | ImeiSv) -> str:
    """The 14-digit body of an IMEI or IMEISV (what the blocklist stores)."""
    return equipment.value[:14]


def full_imei(body: str) -> Imei:
    """The IMEI of a 14-digit body (check digit computed)."""
    return Imei(body + str(luhn_check_digit(body)))
