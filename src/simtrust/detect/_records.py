"""Usage records of the operator's mediation: voice calls and SMS of SIMs, from JSON lines or CSV.

A mediation system turns the switches' charging data records (TS 32.298
§5.1.2: served IMSI, MOCall/MTCall or MO-SMS/MT-SMS, seizure or event time,
call duration) into one record per call or message. simtrust reads them in
one neutral form (docs/fraud.md "Usage records"), each a JSON object per
line, or a CSV row under a header of the same names:

========== =============================================================
``imsi``    the SIM's IMSI (6–15 digits), or else
``iccid``   its ICCID (19–20 digits, ``89``…; the inventory maps it)
``kind``    ``voice`` or ``sms``
``direction`` ``mo`` (the SIM called or sent) or ``mt`` (it was called)
``start``   RFC 3339 time with an offset, or UNIX seconds
``duration`` seconds of a call (voice only; 0 to 86,400), optional
``counterpart`` the other party's number, optional: read and dropped
========== =============================================================

The counterpart is never kept, logged or put in an event: the detector
needs only counts. :func:`parse_usage_records` validates every field of
this untrusted text (an unknown field, a bad value, a line too long: an
:class:`~simtrust.errors.InvalidInput` naming the line) and returns
:class:`UsageRecord` values; :func:`usage_events` turns them into
``voice``/``sms`` :class:`~simtrust.detect.SimEvent` values through a
resolver of SIMs (the inventory's IMSI and tenant).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from simtrust.detect._events import DIRECTIONS, MAX_CALL_S, VOICE_KINDS, SimEvent
from simtrust.domain import imsi_digits
from simtrust.errors import InvalidInput

__all__ = ["MAX_RECORD_LINE", "RECORD_FIELDS", "UsageRecord", "parse_usage_records",
           "usage_events", "usage_record"]

#: The longest line (JSON) or row (CSV) accepted, in characters.
MAX_RECORD_LINE = 2048
RECORD_FIELDS = ("imsi", "iccid", "kind", "direction", "start", "duration", "counterpart")
_FIELDS = frozenset(RECORD_FIELDS)
_LATEST = 2**33  # year 2242: a time beyond is not a record's


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One call or SMS: ``sim`` an IMSI or (``by_iccid``) an ICCID; no counterpart."""

    sim: str
    by_iccid: bool
    kind: str
    direction: str
    at: float
    duration: float = 0.0


def _text(doc: dict[str, object], name: str) -> str:
    value = doc.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name!r} must be a string")
    return value.strip()


def _time(value: object) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInput("'start' is required (RFC 3339 time or UNIX seconds)")
    if isinstance(value, str) and value.replace(".", "", 1).isdigit() and value.isascii():
        value = float(value)
    if isinstance(value, int | float):
        at = float(value) if not isinstance(value, int) or value < _LATEST else math.inf
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput("'start' is not an RFC 3339 time or UNIX seconds") from None
        if when.tzinfo is None:
            raise InvalidInput("'start' needs a UTC offset (e.g. Z or +01:00)")
        at = when.timestamp()
    else:
        raise InvalidInput("'start' must be an RFC 3339 time or UNIX seconds")
    if not (math.isfinite(at) and 0 <= at < _LATEST):
        raise InvalidInput("'start' is out of range")
    return at


def _duration(value: object, kind: str) -> float:
    if value is None or value == "":
        return 0.0
    if isinstance(value, str):
        try:
            value = float(value) if value.isascii() else math.nan
        except ValueError:
            raise InvalidInput("'duration' must be a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("'duration' must be a number of seconds")
    if isinstance(value, int) and not 0 <= value <= MAX_CALL_S:
        raise InvalidInput(f"'duration' must be 0 to {MAX_CALL_S:.0f} s")
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_CALL_S):
        raise InvalidInput(f"'duration' must be 0 to {MAX_CALL_S:.0f} s")
    if seconds and kind != "voice":
        raise InvalidInput("only a voice record has a duration")
    return seconds


def usage_record(doc: object) -> UsageRecord:
    """One record from its JSON object (or CSV row as a dict); InvalidInput if malformed."""
    if not isinstance(doc, dict):
        raise InvalidInput("a usage record must be a JSON object")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise InvalidInput(f"unknown field {sorted(map(str, unknown))[0][:40]!r}")
    imsi, iccid = _text(doc, "imsi"), _text(doc, "iccid")
    if bool(imsi) == bool(iccid):
        raise InvalidInput("give exactly one of 'imsi' and 'iccid'")
    if iccid and not (iccid.isascii() and iccid.isdigit() and 19 <= len(iccid) <= 20
                      and iccid.startswith("89")):
        raise InvalidInput("'iccid' must be 19 or 20 digits starting with 89")
    sim = iccid or imsi_digits(imsi)
    kind = _text(doc, "kind").lower()
    if kind not in VOICE_KINDS:
        raise InvalidInput("'kind' must be 'voice' or 'sms'")
    direction = _text(doc, "direction").lower()
    if direction not in DIRECTIONS:
        raise InvalidInput("'direction' must be 'mo' or 'mt'")
    _text(doc, "counterpart")  # a string if given; never kept
    return UsageRecord(sim, bool(iccid), kind, direction, _time(doc.get("start")),
                       _duration(doc.get("duration"), kind))


def parse_usage_records(text: str, fmt: str = "auto", limit: int = 1_000_000,
                        ) -> list[UsageRecord]:
    """Records from JSON lines (``jsonl``) or CSV with a header (``csv``); ``auto`` looks.

    Errors name the line: ``line 3: 'direction' must be 'mo' or 'mt'``.
    """
    if fmt == "auto":
        head = text.lstrip("\ufeff \t\r\n")[:1]
        fmt = "jsonl" if head == "{" else "csv"
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("the format is 'jsonl' or 'csv'")
    if "\x00" in text:
        raise InvalidInput("usage records: not text (NUL byte)")
    rows: Iterable[tuple[int, object]]
    lines = text.lstrip("\ufeff").splitlines()
    for n, line in enumerate(lines, 1):
        if len(line) > MAX_RECORD_LINE:
            raise InvalidInput(f"line {n}: longer than {MAX_RECORD_LINE} characters")
    if fmt == "jsonl":
        rows = ((n, line) for n, line in enumerate(lines, 1) if line.strip())
    else:
        rows = _csv_rows(lines)
    out: list[UsageRecord] = []
    for n, row in rows:
        if len(out) >= limit:
            raise InvalidInput(f"more than {limit} usage records")
        try:
            doc = json.loads(row) if isinstance(row, str) else row
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InvalidInput(f"line {n}: not JSON ({getattr(exc, 'msg', 'too deep')})"
                               ) from None
        try:
            out.append(usage_record(doc))
        except InvalidInput as exc:
            raise InvalidInput(f"line {n}: {exc.detail}") from None
    return out


def _csv_rows(lines: list[str]) -> list[tuple[int, object]]:
    reader = csv.reader(io.StringIO("\n".join(lines)), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return []
        names = [h.strip().lower() for h in header]
        unknown = [h for h in names if h not in _FIELDS]
        if unknown or len(set(names)) != len(names):
            bad = unknown[0][:40] if unknown else "a repeated column"
            raise InvalidInput(f"line 1: unknown column {bad!r} (columns: "
                               f"{', '.join(RECORD_FIELDS)})")
        out: list[tuple[int, object]] = []
        for row in reader:
            n = reader.line_num
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != len(names):
                raise InvalidInput(f"line {n}: {len(row)} columns, the header has {len(names)}")
            out.append((n, {k: v for k, v in zip(names, row, strict=True) if v.strip()}))
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: {exc}") from None
    return out


def usage_events(records: Iterable[UsageRecord],
                 resolve: Callable[[str, bool], tuple[str, str] | None],
                 ) -> tuple[list[SimEvent], int]:
    """``voice``/``sms`` events of the records whose SIM ``resolve`` knows, time-ordered.

    ``resolve(sim, by_iccid)`` answers (IMSI, tenant) or None for a SIM this
    operator does not serve (a mediation feed carries every subscriber): those
    records are counted, not refused. Returns the events and that count.
    """
    out: list[SimEvent] = []
    unknown = 0
    seen: dict[tuple[str, bool], tuple[str, str] | None] = {}
    for r in records:
        key = (r.sim, r.by_iccid)
        if key not in seen:
            seen[key] = resolve(r.sim, r.by_iccid)
        found = seen[key]
        if found is None:
            unknown += 1
            continue
        out.append(SimEvent(r.at, imsi_digits(found[0]), r.kind, tenant=found[1],
                            direction=r.direction, duration=r.duration))
    out.sort(key=lambda e: e.at)
    return out, unknown
