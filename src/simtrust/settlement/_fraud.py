"""Fraud checks on roaming usage: records of SIMs the home network had suspended at the time.

The home network exports its SIM suspensions (``imsi,suspended_from,suspended_until``,
ISO 8601 UTC, half-open, an empty end meaning still suspended); every visited
record whose IMSI was suspended at its ``start`` is flagged. Flags do not
change a record's class or rating: they are evidence for the dispute that the
home network raises (issue 15 item 3).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from simtrust.errors import DecodeError, InvalidInput
from simtrust.settlement._agreement import parse_utc_micros
from simtrust.settlement._reconcile import _header, _pl, _scan

__all__ = ["SUSPENSION_COLUMNS", "load_suspensions", "suspended_usage"]

SUSPENSION_COLUMNS = ("imsi", "suspended_from", "suspended_until")


def load_suspensions(path: Path) -> dict[str, list[tuple[int, int | None]]]:
    """Suspension intervals per IMSI from the home network's CSV."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DecodeError(f"suspensions {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DecodeError(f"suspensions {path}: not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    names = [n.strip() for n in reader.fieldnames or []]
    if sorted(names) != sorted(SUSPENSION_COLUMNS):
        expected = ",".join(SUSPENSION_COLUMNS)
        raise DecodeError(f"suspensions {path}: bad header; expected {expected}")
    reader.fieldnames = names
    found: dict[str, list[tuple[int, int | None]]] = {}
    for number, row in enumerate(reader, start=1):
        if None in row or not (row.get("imsi") or "").strip():
            raise DecodeError(f"suspensions {path}: row {number} is malformed")
        try:
            begin = parse_utc_micros(row["suspended_from"] or "")
            end_text = (row.get("suspended_until") or "").strip()
            end = parse_utc_micros(end_text) if end_text else None
        except InvalidInput:
            raise DecodeError(f"suspensions {path}: row {number}: bad time") from None
        found.setdefault(row["imsi"].strip(), []).append((begin, end))
    return found


def suspended_usage(
    visited: Path, suspensions: dict[str, list[tuple[int, int | None]]]
) -> list[dict[str, Any]]:
    """Visited records (1-based record number, key, start) of SIMs suspended at ``start``."""
    if not suspensions:
        return []
    pl = _pl()
    names = _header(visited, "visited")
    candidates = (
        _scan(visited, names)
        .filter(pl.col("imsi").is_in(list(suspensions)))
        .select("i", "charging_id", "imsi", "start")
        .collect(engine="streaming")
    )
    flagged = []
    for index, charging_id, imsi, start in candidates.iter_rows():
        try:
            at = parse_utc_micros(start or "")
        except InvalidInput:
            raise DecodeError(f"visited file {visited}: record {index + 1}: bad start") from None
        for begin, end in suspensions[imsi]:
            if begin <= at and (end is None or at < end):
                flagged.append({"record": index + 1, "charging_id": charging_id, "imsi": imsi,
                                "start": start})
                break
    return flagged
