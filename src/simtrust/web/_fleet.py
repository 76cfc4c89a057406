"""The dashboard's read model of the fleet: SIM search, filters, sort and keyset pages.

It reads the inventory, lease, session and audit tables directly and only
reads them, with one query per search field shaped for an index (subscriber
migration 6, aaa migration 2, audit migration 2), so a page costs the same at
a thousand SIMs as at a million. Every write goes through the owning service
(docs/decisions/web-read-model.md).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simtrust.store import Database
from simtrust.subscriber import SimState

__all__ = ["COUNTS_TTL_S", "SORTS", "TAIL", "FleetQuery", "SimFilter", "SimRow", "parse_filter"]

#: Sort keys offered: both are unique, so the key alone is the keyset cursor.
SORTS = ("iccid", "imsi")
_STATES = tuple(str(s) for s in SimState)
_MAX_Q = 64
#: Digits a trailing-digit search needs at least (the length web/_schema.py indexes).
TAIL = 4
#: How old the per-state counts above the list may be, in seconds.
COUNTS_TTL_S = 15.0


@dataclass(frozen=True, slots=True)
class SimFilter:
    """A validated selection of SIMs (``tenant_id`` already limited to what the caller sees)."""

    q: str = ""
    state: str = ""
    group_id: int | None = None
    apn: str = ""
    tenant_id: str | None = None
    online: str = ""
    alerts: bool = False
    sort: str = "iccid"
    desc: bool = False

    def params(self) -> dict[str, str]:
        """The query-string form (for links: the next page, export, a bulk action)."""
        out = {"q": self.q, "state": self.state, "apn": self.apn, "online": self.online,
               "sort": self.sort}
        if self.group_id is not None:
            out["group"] = str(self.group_id)
        if self.tenant_id is not None:
            out["tenant"] = self.tenant_id
        if self.alerts:
            out["alerts"] = "1"
        if self.desc:
            out["dir"] = "desc"
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True, slots=True)
class SimRow:
    iccid: str
    imsi: str
    tenant_id: str
    state: str
    group: str | None
    apn: str | None
    address: str | None
    created_at: str

    def key(self, sort: str) -> str:
        return self.iccid if sort == "iccid" else self.imsi


def parse_filter(params: Mapping[str, str], tenant_scope: str | None,
                 is_operator: bool) -> tuple[SimFilter, dict[str, str]]:
    """Validate query parameters; field errors are returned, the user's text is kept."""
    errors: dict[str, str] = {}
    q = params.get("q", "").strip()
    if len(q) > _MAX_Q:
        errors["q"] = f"at most {_MAX_Q} characters"
        q = q[:_MAX_Q]
    state = params.get("state", "")
    if state and state not in _STATES:
        errors["state"] = f"one of {', '.join(_STATES)}"
        state = ""
    group_id: int | None = None
    group_text = params.get("group", "").strip()
    if group_text:
        if group_text.isascii() and group_text.isdigit() and 0 < int(group_text) < 2**63:
            group_id = int(group_text)
        else:
            errors["group"] = "a device group id (a positive whole number)"
    apn = params.get("apn", "").strip()[:100]
    online = params.get("online", "")
    if online not in ("", "online", "offline"):
        errors["online"] = "online or offline"
        online = ""
    sort = params.get("sort", "iccid") or "iccid"
    if sort not in SORTS:
        errors["sort"] = f"one of {', '.join(SORTS)}"
        sort = "iccid"
    tenant = params.get("tenant", "").strip() or None
    if not is_operator:
        tenant = tenant_scope
    return SimFilter(q=q, state=state, group_id=group_id, apn=apn, tenant_id=tenant,
                     online=online, alerts=params.get("alerts", "") in ("1", "on", "true"),
                     sort=sort, desc=params.get("dir", "") == "desc"), errors


def _tail(column: str) -> str:
    """The indexed expression of ``column``'s last ``TAIL`` characters (web/_schema.py)."""
    return f"substr({column}, length({column}) - 3)"


def _suffix(column: str, q: str) -> tuple[str, list[Any]]:
    """``column`` ends with ``q``: the index finds the last four digits, the rest is checked."""
    clause = f"{_tail(column)} = ?"
    params: list[Any] = [q[-TAIL:]]
    if len(q) > TAIL:
        clause += f" AND substr({column}, length({column}) - {len(q) - 1}) = ?"
        params.append(q)
    return clause, params


def _tail_terms(q: str) -> list[tuple[str, list[Any]]]:
    """Search terms for SIMs whose ICCID, IMSI, bound IMEI or MSISDN ends with ``q``."""
    iccid, iccid_p = _suffix("s.iccid", q)
    imsi, imsi_p = _suffix("s.imsi", q)
    imei, imei_p = _suffix("b.imei", q)
    msisdn, msisdn_p = _suffix("a.msisdn", q)
    return [
        (iccid, iccid_p),
        (imsi, imsi_p),
        (f"s.iccid IN (SELECT b.iccid FROM sub_bindings b WHERE {imei})", imei_p),
        (f"s.iccid IN (SELECT a.iccid FROM aaa_sessions a WHERE {msisdn})", msisdn_p),
    ]


def _prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) of the digit strings starting with ``prefix`` (no upper bound for 9…9).

    A range instead of LIKE so that PostgreSQL uses the btree index under any
    collation; digit strings compare the same under all of them.
    """
    body = prefix.rstrip("9")
    if not body:
        return prefix, None
    return prefix, body[:-1] + chr(ord(body[-1]) + 1)


@dataclass(slots=True)
class _Query:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *values: Any) -> None:
        self.where.append(clause)
        self.params.extend(values)


_SELECT = (
    "SELECT s.iccid, s.imsi, s.tenant_id, s.state, g.name, s.apn, l.address, s.created_at"
    " FROM sub_sims s LEFT JOIN sub_groups g ON g.id = s.group_id"
    " LEFT JOIN sub_leases l ON l.imsi = s.imsi"
)


class FleetQuery:
    """SIM lists over one store."""

    __slots__ = ("_counts", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._counts: dict[str | None, tuple[float, dict[str, int]]] = {}

    def _terms(self, q: str) -> list[tuple[str, list[Any]]]:
        """One (clause, params) per field the search text may match."""
        if not q:
            return [("1 = 1", [])]
        terms: list[tuple[str, list[Any]]] = []
        if q.isascii() and q.isdigit():
            low, high = _prefix_bounds(q)
            bound = " AND {c} < ?" if high is not None else ""
            extra = [high] if high is not None else []
            terms.append((f"s.iccid >= ?{bound.format(c='s.iccid')}", [low, *extra]))
            terms.append((f"s.imsi >= ?{bound.format(c='s.imsi')}", [low, *extra]))
            terms.append((
                "s.iccid IN (SELECT b.iccid FROM sub_bindings b WHERE b.imei >= ?"
                f"{bound.format(c='b.imei')})", [low, *extra]))
            terms.append((
                "s.iccid IN (SELECT a.iccid FROM aaa_sessions a WHERE a.msisdn >= ?"
                f"{bound.format(c='a.msisdn')})", [low, *extra]))
            if len(q) >= TAIL:
                terms.extend(_tail_terms(q))
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        # A device's label is the label its SIM's own tenant gave it.
        terms.append((
            "(s.iccid, s.tenant_id) IN (SELECT b.iccid, d.tenant_id FROM sub_devices d"
            " JOIN sub_bindings b ON b.imei = d.imei WHERE LOWER(d.label) LIKE ? ESCAPE '\\')",
            [pattern]))
        return terms

    def _common(self, f: SimFilter) -> _Query:
        query = _Query()
        if f.tenant_id is not None:
            query.add("s.tenant_id = ?", f.tenant_id)
        # In IMSI order the IMSI index is walked and these filters checked on the way:
        # wrapping the column keeps a planner without statistics from sorting every SIM
        # of a state, group or APN instead (their indexes are in ICCID order).
        walk = f.sort == "imsi"
        if f.state:
            query.add("s.state || '' = ?" if walk else "s.state = ?", f.state)
        if f.group_id is not None:
            query.add("s.group_id + 0 = ?" if walk else "s.group_id = ?", f.group_id)
        if f.apn:
            query.add("s.apn || '' = ?" if walk else "s.apn = ?", f.apn)
        if f.online == "online":
            query.add("EXISTS (SELECT 1 FROM sub_leases o WHERE o.imsi = s.imsi)")
        elif f.online == "offline":
            query.add("NOT EXISTS (SELECT 1 FROM sub_leases o WHERE o.imsi = s.imsi)")
        if f.alerts:
            # The alerted IMSIs are a small set: computed once, not once per SIM.
            query.add("s.imsi IN (SELECT substr(e.subject, 5) FROM audit_events e"
                      " WHERE e.outcome = 'alert' AND e.subject LIKE 'sim:%')")
        return query

    def _pages(self, f: SimFilter, select: str, after: str | None,
               limit: int) -> list[list[Any]]:
        column = f"s.{f.sort}"
        order = "DESC" if f.desc else "ASC"
        results = []
        for clause, values in self._terms(f.q):
            query = self._common(f)
            query.add(clause, *values)
            if after:
                query.add(f"{column} {'<' if f.desc else '>'} ?", after)
            sql = (f"{select} WHERE {' AND '.join(query.where)} ORDER BY {column} {order}"
                   " LIMIT ?")
            results.append([list(r) for r in self._db.query(sql, [*query.params, limit])])
        return results

    def page(self, f: SimFilter, *, after: str | None = None,
             limit: int = 50) -> tuple[list[SimRow], str | None]:
        """One page of SIMs after the cursor, and the cursor of the next page (or None)."""
        index = 0 if f.sort == "iccid" else 1
        merged = _merge(self._pages(f, _SELECT, after, limit + 1), index, f.desc, limit + 1)
        rows = [SimRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]),
                       None if r[4] is None else str(r[4]), None if r[5] is None else str(r[5]),
                       None if r[6] is None else str(r[6]), str(r[7])) for r in merged]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].key(f.sort) if more and rows else None)

    def iccids(self, f: SimFilter, *, batch: int = 5000) -> Iterator[list[str]]:
        """Every selected ICCID, in ICCID order, a batch at a time (bulk actions, export)."""
        f = replace(f, sort="iccid", desc=False)
        after: str | None = None
        while True:
            merged = _merge(self._pages(f, "SELECT s.iccid FROM sub_sims s", after, batch),
                            0, False, batch)
            if not merged:
                return
            ids = [str(r[0]) for r in merged]
            yield ids
            if len(ids) < batch:
                return
            after = ids[-1]

    def count(self, f: SimFilter) -> int:
        if not f.q:
            query = self._common(f)
            where = " AND ".join(query.where) or "1 = 1"
            row = self._db.query_one(f"SELECT COUNT(*) FROM sub_sims s WHERE {where}",
                                     query.params)
            return int(row[0]) if row else 0
        return sum(len(ids) for ids in self.iccids(f))

    def facets(self, tenant_id: str | None) -> dict[str, list[tuple[str, str]]]:
        """Choices for the filter form: groups and APNs (with their tenant for the operator)."""
        where, params = ("WHERE tenant_id = ?", [tenant_id]) if tenant_id else ("", [])
        groups = [(str(r[0]), f"{r[1]} ({r[2]})" if tenant_id is None else str(r[1]))
                  for r in self._db.query(
                      f"SELECT id, name, tenant_id FROM sub_groups {where} ORDER BY name, id",
                      params)]
        apns = sorted({str(r[0]) for r in self._db.query(
            f"SELECT name FROM sub_apns {where}", params)})
        return {"groups": groups, "apns": [(a, a) for a in apns]}

    def state_counts(self, tenant_id: str | None) -> dict[str, int]:
        """SIMs per state, at most ``COUNTS_TTL_S`` old (a full count costs a scan)."""
        now = time.monotonic()
        cached = self._counts.get(tenant_id)
        if cached is not None and now - cached[0] < COUNTS_TTL_S:
            return cached[1]
        where, params = ("WHERE tenant_id = ?", [tenant_id]) if tenant_id else ("", [])
        counts = dict.fromkeys(_STATES, 0)
        for state, n in self._db.query(
                f"SELECT state, COUNT(*) FROM sub_sims {where} GROUP BY state", params):
            counts[str(state)] = int(n)
        if len(self._counts) > 1000:
            self._counts.clear()
        self._counts[tenant_id] = (now, counts)
        return counts

    def forget_counts(self) -> None:
        """Drop cached counts (after a bulk action, so its result shows at once)."""
        self._counts.clear()


def _merge(pages: list[list[list[Any]]], index: int, desc: bool,
           limit: int) -> list[list[Any]]:
    """Merge pages sorted on column ``index`` into one sorted page without duplicates."""
    if len(pages) == 1:
        return pages[0][:limit]
    merged = heapq.merge(*pages, key=lambda r: str(r[index]), reverse=desc)
    out: list[list[Any]] = []
    seen: set[str] = set()
    for row in merged:
        if str(row[0]) in seen:
            continue
        seen.add(str(row[0]))
        out.append(row)
        if len(out) >= limit:
            break
    return out
