"""Is an IMEI's TAC allocated? Reporting bodies shipped as data, the GSMA TAC database imported.

The first two digits of a Type Allocation Code (TS 23.003 §6.2.1) are the
Reporting Body Identifier (RBI) of the body that allocated it; GSMA PRD TS.06
Appendix A lists them (``data/tac_rbi.json`` names its source). A TAC under
an RBI that never allocated any is not a real device model, a TAC under a
test RBI (00, 02–09) is test equipment, and RBI 98 is reserved apart from a
few historic ranges. That check needs no licence and always runs.

An operator that licenses the GSMA TAC database can import its export
(:func:`parse_tac_csv`: a CSV whose header names a ``TAC`` column, other
columns such as the marketing name, manufacturer and allocation date
optional) and then every TAC is checked exactly: one that is not in the
database is ``unallocated-tac``. The imported set is kept as a JSON file in
the data directory (:class:`TacDatabaseFile`), which the serving process
re-reads when it changes (checked at most every few seconds, and only when
an IMEI changes). Malformed input is :class:`~simtrust.errors.InvalidInput`
naming the line; the decision is docs/decisions/fraud-tac-allocation.md.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from simtrust.errors import InvalidInput

__all__ = ["MAX_TAC_ROWS", "TacAllocations", "TacDatabaseFile", "parse_tac_csv",
           "rbi_table"]

#: Rows one import may carry (the GSMA database has a few hundred thousand TACs).
MAX_TAC_ROWS = 2_000_000
_NAME_COLUMNS = ("marketing name", "model name", "marketingname", "modelname")
_MAKER_COLUMNS = ("manufacturer (or) applicant", "manufacturer", "brand name", "brandname")


def rbi_table() -> dict[str, Any]:
    """The shipped table: ``{"rbi": {code: {body, origin, status}}, "reserved_exceptions"}``."""
    raw = resources.files("simtrust.detect").joinpath("data/tac_rbi.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(raw)
    return doc


@dataclass(frozen=True, slots=True)
class TacAllocations:
    """The RBI table and, where imported, the exact set of allocated TACs."""

    statuses: dict[str, str]
    reserved_ranges: tuple[tuple[str, str], ...]
    exact: frozenset[str] | None = None
    exact_source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def shipped(cls, exact: frozenset[str] | None = None,
                source: dict[str, Any] | None = None) -> TacAllocations:
        doc = rbi_table()
        return cls({k: v["status"] for k, v in doc["rbi"].items()},
                   tuple((a, b) for a, b in doc["reserved_exceptions"]), exact, source or {})

    def problem(self, tac: str) -> str:
        """Why ``tac`` (8 digits) is not an allocated device model, or ``""``."""
        status = self.statuses.get(tac[:2])
        if status is None:
            return "unallocated-rbi"
        if status == "test":
            return "test-imei"
        if status == "reserved" and not any(a <= tac <= b for a, b in self.reserved_ranges):
            return "reserved-rbi"
        if self.exact is not None and tac not in self.exact:
            return "unallocated-tac"
        return ""


def parse_tac_csv(text: str) -> dict[str, dict[str, str]]:
    """TAC → {name, manufacturer, allocated} from a GSMA TAC database export (CSV).

    The header row must name a ``TAC`` column (any case); every row's TAC must
    be 8 digits. Duplicate TACs keep the first row.
    """
    if "\x00" in text:
        raise InvalidInput("TAC database: not a CSV text (NUL byte)")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;|\t") if sample else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(f"TAC database line 1: {exc}") from None
    if header is None:
        raise InvalidInput("TAC database: empty file")
    names = [h.strip().lstrip("\ufeff").strip('"').lower() for h in header]
    if "tac" not in names:
        raise InvalidInput("TAC database line 1: no 'TAC' column in the header")
    col = names.index("tac")
    name_col = next((names.index(n) for n in _NAME_COLUMNS if n in names), None)
    maker_col = next((names.index(n) for n in _MAKER_COLUMNS if n in names), None)
    date_col = names.index("allocation date") if "allocation date" in names else None
    out: dict[str, dict[str, str]] = {}
    line = 1
    try:
        for line, row in enumerate(reader, 2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(out) >= MAX_TAC_ROWS:
                raise InvalidInput(f"TAC database: more than {MAX_TAC_ROWS} rows")
            tac = row[col].strip() if col < len(row) else ""
            if len(tac) != 8 or not tac.isascii() or not tac.isdigit():
                raise InvalidInput(f"TAC database line {line}: TAC {tac[:20]!r} is not 8 digits")
            if tac in out:
                continue

            def cell(i: int | None, r: list[str] = row) -> str:
                return r[i].strip()[:120] if i is not None and i < len(r) else ""

            out[tac] = {"name": cell(name_col), "manufacturer": cell(maker_col),
                        "allocated": cell(date_col)}
    except csv.Error as exc:
        raise InvalidInput(f"TAC database line {line + 1}: {exc}") from None
    if not out:
        raise InvalidInput("TAC database: no TAC rows")
    return out


class TacDatabaseFile:
    """The imported TAC database in the data directory, re-read when it changes.

    :meth:`current` is what the fraud detector calls when an IMEI changes; it
    stats the file at most every ``recheck_s`` seconds (monotonic clock).
    """

    def __init__(self, path: Path, recheck_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._recheck_s = recheck_s
        self._monotonic = monotonic
        self._checked = -float("inf")
        self._stamp: int | None = None
        self._shipped = TacAllocations.shipped()
        self._current = self._shipped

    def __repr__(self) -> str:
        return f"TacDatabaseFile({str(self.path)!r})"

    def current(self) -> TacAllocations:
        now = self._monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            self._reload()
        return self._current

    def _reload(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._stamp, self._current = None, self._shipped
            return
        if stamp == self._stamp:
            return
        doc = json.loads(self.path.read_text("utf-8"))
        self._current = TacAllocations.shipped(frozenset(doc["tacs"]),
                                               {k: doc[k] for k in ("source", "imported_at",
                                                                    "count")})
        self._stamp = stamp

    def save(self, tacs: dict[str, dict[str, str]], source: str, now: datetime) -> dict[str, Any]:
        """Replace the imported database (atomically); its summary."""
        summary = {"source": source[:200], "imported_at": now.astimezone(UTC).isoformat(),
                   "count": len(tacs)}
        doc = {**summary, "tacs": sorted(tacs), "models": tacs}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")), "utf-8")
        os.replace(tmp, self.path)
        self._checked = -float("inf")
        return summary

    def summary(self) -> dict[str, Any] | None:
        """What is imported (source, time, count), or None."""
        self._checked = -float("inf")
        found = self.current()
        return found.exact_source or None if found.exact is not None else None

    def model(self, tac: str) -> dict[str, str] | None:
        """The imported row of ``tac`` (name, manufacturer, allocated), or None."""
        if not self.path.is_file():
            return None
        models = json.loads(self.path.read_text("utf-8")).get("models", {})
        found = models.get(tac)
        return dict(found) if isinstance(found, dict) else None
