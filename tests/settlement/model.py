"""An independent, deliberately plain recomputation of reconciliation (docs/settlement.md).

Written from the documented rule, row by row with the csv module and
``fractions.Fraction``, sharing no code with ``simtrust.settlement``: the tests
hold the columnar engine to it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

UNIT = {"data": ("data_per_mb", Fraction(1, 1_000_000)), "voice": ("voice_per_minute", Fraction(1, 60)),
        "sms": ("sms_per_event", Fraction(1))}


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _half_up(value: Fraction) -> int:
    whole = value.numerator // value.denominator
    return whole + 1 if value - whole >= Fraction(1, 2) else whole


def _volume(row: dict[str, str]) -> int:
    def n(name: str) -> int:
        return int(row[name] or 0)

    service = row["service"]
    if service == "data":
        return n("bytes_up") + n("bytes_down")
    if service == "voice":
        return n("duration_s")
    return n("events")


def _tariffs(agreement: dict[str, Any], row: dict[str, str]) -> dict[str, int]:
    """The agreement's tariffs, or a zone's overrides when the record comes from its network."""
    for zone in agreement.get("zones", []):
        if row["visited_plmn"] in zone["visited_plmns"]:
            return {**agreement["tariffs"], **zone["tariffs"]}
    return dict(agreement["tariffs"])


def _rating(agreement: dict[str, Any], row: dict[str, str]) -> int:
    key, unit = UNIT[row["service"]]
    return _half_up(_volume(row) * _tariffs(agreement, row)[key] * unit)


def _in_agreement(agreement: dict[str, Any], row: dict[str, str]) -> bool:
    if row["service"] not in UNIT or UNIT[row["service"]][0] not in agreement["tariffs"]:
        return False
    visited = [agreement["visited_plmn"]] + [
        p for zone in agreement.get("zones", []) for p in zone["visited_plmns"]]
    if row["home_plmn"] != agreement["home_plmn"] or row["visited_plmn"] not in visited:
        return False
    start = _instant(row["start"])
    return _instant(agreement["valid_from"]) <= start < _instant(agreement["valid_until"])


def read_rows(text: str) -> list[dict[str, str]]:
    return [row for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))) if any(row.values())]


def recompute(agreement: dict[str, Any], home: list[dict[str, str]], visited: list[dict[str, str]]
              ) -> tuple[dict[str, int], int, int, list[tuple[str, str, str, str]]]:
    """Counts per class, total, disputed, and (charging_id, imsi, side, class) per record."""
    tolerance = Fraction(Decimal(str(agreement["tolerance_percent"]))) / 100
    firsts: dict[str, dict[tuple[str, str], dict[str, str]]] = {"home": {}, "visited": {}}
    labels: dict[str, list[str]] = {"home": [], "visited": []}
    for side, rows in (("home", home), ("visited", visited)):
        for row in rows:
            key = (row["charging_id"], row["imsi"])
            if key in firsts[side]:
                labels[side].append("duplicate")
                continue
            firsts[side][key] = row
            labels[side].append("pending" if _in_agreement(agreement, row) else "out-of-agreement")
    # Rebuild with the duplicate rule: only the first occurrence of a key takes part.
    pending: dict[str, dict[tuple[str, str], dict[str, str]]] = {"home": {}, "visited": {}}
    for side, rows in (("home", home), ("visited", visited)):
        for row, label in zip(rows, labels[side], strict=True):
            if label == "pending":
                pending[side][(row["charging_id"], row["imsi"])] = row
    pair_class: dict[tuple[str, str], str] = {}
    total = disputed = 0
    for key, v in pending["visited"].items():
        h = pending["home"].get(key)
        if h is None:
            pair_class[key] = "visited-only"
            disputed += _rating(agreement, v)
            continue
        hv, vv = _volume(h), _volume(v)
        if h["service"] == v["service"] and Fraction(abs(hv - vv)) <= tolerance * vv:
            pair_class[key] = "matched"
            total += _rating(agreement, v)
        else:
            pair_class[key] = "partial"
            hr, vr = _rating(agreement, h), _rating(agreement, v)
            total += min(hr, vr)
            disputed += abs(hr - vr)
    out: list[tuple[str, str, str, str]] = []
    for side, rows in (("home", home), ("visited", visited)):
        for row, label in zip(rows, labels[side], strict=True):
            key = (row["charging_id"], row["imsi"])
            final = pair_class.get(key, "home-only") if label == "pending" else label
            out.append((row["charging_id"], row["imsi"], side, final))
    counts = dict.fromkeys(("matched", "partial", "visited-only", "home-only", "duplicate", "out-of-agreement"), 0)
    for *_, label in out:
        counts[label] += 1
    return counts, total, disputed, out
