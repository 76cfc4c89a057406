"""Reconciliation (issue 15 items 3, 6, 7): every injected discrepancy lands in its class,
and the engine's counts, statement and per-record classes equal an independent
recomputation (tests/settlement/model.py) over generated record sets."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, InvalidInput
from simtrust.settlement import (
    USAGE_COLUMNS,
    load_agreement,
    parse_agreement,
    parse_utc_micros,
    reconcile_files,
)
from tests.settlement.model import read_rows, recompute

HEADER = ",".join(USAGE_COLUMNS)
AGREEMENT: dict[str, Any] = {
    "id": "ra-26201-20810-2026-01",
    "home_plmn": "26201",
    "visited_plmn": "20810",
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": "2026-02-01T00:00:00Z",
    "currency": "EUR",
    "tolerance_percent": 2,
    "tariffs": {"data_per_mb": 150, "sms_per_event": 5, "voice_per_minute": 20},
}


def row(cid: str, imsi: str = "262010000000001", *, service: str = "data", volume: int = 1000,
        start: str = "2026-01-10T12:00:00Z", visited: str = "20810", home: str = "26201") -> str:
    up = volume // 3 if service == "data" else 0
    down = volume - up if service == "data" else 0
    duration = volume if service == "voice" else 0
    events = volume if service == "sms" else 0
    return f"{cid},{imsi},{visited},{home},{service},{start},{duration},{up},{down},{events}"


def write(folder: Path, name: str, lines: list[str], *, text: str | None = None) -> Path:
    path = folder / name
    path.write_text(text if text is not None else "\n".join([HEADER, *lines]) + "\n")
    return path


def agreement_file(folder: Path, tolerance: str = "2", **changes: Any) -> Path:
    body = json.dumps({**AGREEMENT, **changes, "tolerance_percent": "TOL"})
    path = folder / "agreement.json"
    path.write_text(body.replace('"TOL"', tolerance))
    return path


def run(folder: Path, home: list[str], visited: list[str], tolerance: str = "2",
        **changes: Any) -> dict[str, Any]:
    terms = load_agreement(agreement_file(folder, tolerance, **changes))
    out = folder / "records.csv"
    result = reconcile_files(terms, write(folder, "home.csv", home),
                             write(folder, "visited.csv", visited), records_out=out)
    document = result.to_json()
    document["records_file"] = list(csv.reader(io.StringIO(out.read_text())))[1:]
    return document


# ---------------------------------------------------------------- generated scenarios

KINDS = ("matched", "edge", "partial", "visited-only", "home-only", "early", "late", "service",
         "plmn", "dup-home", "dup-visited")
EXPECTED = {
    "matched": (["matched"], ["matched"]),
    "edge": (["matched"], ["matched"]),
    "partial": (["partial"], ["partial"]),
    "visited-only": ([], ["visited-only"]),
    "home-only": (["home-only"], []),
    "early": (["out-of-agreement"], ["out-of-agreement"]),
    "late": (["out-of-agreement"], ["out-of-agreement"]),
    "service": (["out-of-agreement"], ["out-of-agreement"]),
    "plmn": (["out-of-agreement"], ["out-of-agreement"]),
    "dup-home": (["duplicate", "matched"], ["matched"]),
    "dup-visited": (["matched"], ["duplicate", "matched"]),
}

session = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(["data", "sms", "voice"]),
    st.integers(0, 5_000_000),
    st.integers(-1000, 1000),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    sessions = draw(st.lists(session, min_size=1, max_size=30))
    tolerance = draw(st.sampled_from(["0", "1", "2", "2.5", "0.125", "10"]))
    string_keys = draw(st.booleans())
    tol = Fraction(tolerance) / 100
    home: list[str] = []
    visited: list[str] = []
    expected: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for index, (kind, service, volume, jitter) in enumerate(sessions):
        cid = f"cg-{index:04x}" if string_keys else str(4_000_000_000 + index)
        imsi = f"26201{index:010d}"
        slack = int(tol * volume)  # the largest whole difference within tolerance
        home_volume = volume
        if kind == "matched":
            home_volume = volume + (slack * jitter) // 1000
        elif kind == "edge":
            home_volume = volume + slack if jitter >= 0 else volume - slack
        elif kind == "partial":
            home_volume = volume + slack + 1 + abs(jitter)
        options: dict[str, str] = {}
        if kind == "early":
            options["start"] = "2025-12-31T23:59:59.999999Z"
        elif kind == "late":
            options["start"] = "2026-02-01T00:00:00Z"
        elif kind == "service":
            options["service"] = "mms"
        elif kind == "plmn":
            options["visited"] = "23415"
        kind_service = options.pop("service", service)
        h = row(cid, imsi, service=kind_service, volume=home_volume, **options)
        v = row(cid, imsi, service=kind_service, volume=volume, **options)
        if kind != "visited-only":
            home.append(h)
        if kind != "home-only":
            visited.append(v)
        if kind == "dup-home":
            home.append(h)
        if kind == "dup-visited":
            visited.append(v)
        home_labels, visited_labels = EXPECTED[kind]
        expected[(cid, imsi, "home")] = sorted(home_labels)
        expected[(cid, imsi, "visited")] = sorted(visited_labels)
    home = draw(st.permutations(home))
    visited = draw(st.permutations(visited))
    tariffs = {"data_per_mb": draw(st.integers(0, 10**6)), "sms_per_event": draw(st.integers(0, 999)),
               "voice_per_minute": draw(st.integers(0, 9999))}
    return {"home": home, "visited": visited, "tolerance": tolerance, "tariffs": tariffs,
            "expected": expected}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_equals_independent_recomputation(case: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        got = run(folder, case["home"], case["visited"], case["tolerance"], tariffs=case["tariffs"])
        agreement = {**AGREEMENT, "tariffs": case["tariffs"], "tolerance_percent": case["tolerance"]}
        counts, total, disputed, records = recompute(
            agreement, read_rows("\n".join([HEADER, *case["home"]])),
            read_rows("\n".join([HEADER, *case["visited"]])))
    assert counts == got["counts"]
    assert total == got["statement"]["total_minor_units"]
    assert disputed == got["statement"]["disputed_minor_units"]
    assert [list(r) for r in records] == got["records_file"]
    # No false match: each injected discrepancy is in its class.
    landed: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for cid, imsi, side, label in got["records_file"]:
        landed[(cid, imsi, side)].append(label)
    assert case["expected"] == {k: sorted(v) for k, v in landed.items()} | {
        k: [] for k, v in case["expected"].items() if not v}
    assert sum(line["settled_minor_units"] for line in got["statement"]["lines"]) == total


# ---------------------------------------------------------------- the rule at its edges


def test_tolerance_boundary_is_inclusive(tmp_path: Path) -> None:
    # 2 % of the visited side's 1000 bytes is 20: 1020 matches, 1021 does not.
    got = run(tmp_path, [row("1", volume=1020), row("2", volume=1021), row("3", volume=980)],
              [row("1"), row("2"), row("3")])
    assert ["matched", "partial", "matched"] == [r[3] for r in got["records_file"][:3]]
    # 2.5 % of 1000 is exactly 25.
    got = run(tmp_path, [row("1", volume=1025), row("2", volume=1026)], [row("1"), row("2")],
              tolerance="2.5")
    assert ["matched", "partial"] == [r[3] for r in got["records_file"][:2]]


def test_rating_rounds_half_up_per_record(tmp_path: Path) -> None:
    tariffs = {"data_per_mb": 1, "sms_per_event": 3, "voice_per_minute": 1}
    home = [row("1", volume=500_000), row("2", volume=499_999), row("3", service="voice", volume=30),
            row("4", service="voice", volume=90), row("5", service="voice", volume=29)]
    got = run(tmp_path, home, list(home), tariffs=tariffs)
    # 0.5 -> 1, 0.499999 -> 0, 0.5 min -> 1, 1.5 min -> 2 (not banker's), 0.4833 -> 0
    assert 1 + 0 + 1 + 2 + 0 == got["statement"]["total_minor_units"]
    assert 0 == got["statement"]["disputed_minor_units"]


def test_partial_settles_the_lower_rating_and_disputes_the_difference(tmp_path: Path) -> None:
    got = run(tmp_path, [row("1", service="voice", volume=90)], [row("1", service="voice", volume=120)])
    assert 30 == got["statement"]["total_minor_units"]  # min(30, 40)
    assert 10 == got["statement"]["disputed_minor_units"]
    got = run(tmp_path, [row("1", service="voice", volume=120)], [row("1", service="voice", volume=90)])
    assert (30, 10) == (got["statement"]["total_minor_units"], got["statement"]["disputed_minor_units"])


def test_visited_only_is_disputed_and_home_only_unrated(tmp_path: Path) -> None:
    got = run(tmp_path, [row("1", service="sms", volume=2)], [row("2", service="sms", volume=3)])
    assert {"home-only": 1, "visited-only": 1} == {k: v for k, v in got["counts"].items() if v}
    assert (0, 15) == (got["statement"]["total_minor_units"], got["statement"]["disputed_minor_units"])


def test_validity_is_half_open(tmp_path: Path) -> None:
    starts = ["2026-01-01T00:00:00Z", "2025-12-31T23:59:59.999999Z", "2026-02-01T00:00:00Z",
              "2026-01-31T23:59:59.999999Z", "2026-02-01T00:59:59+01:00", "2026-01-01T01:00:00+01:00",
              "2026-01-15T10:00:00"]
    lines = [row(str(i), start=s) for i, s in enumerate(starts)]
    got = run(tmp_path, lines, list(lines))
    home = [r[3] for r in got["records_file"] if r[2] == "home"]
    assert ["matched", "out-of-agreement", "out-of-agreement", "matched", "matched", "matched",
            "matched"] == home


def test_duplicates_first_occurrence_classified_normally(tmp_path: Path) -> None:
    got = run(tmp_path, [row("1"), row("1", volume=5), row("1", volume=7)], [row("1")])
    assert [["1", "262010000000001", "home", "matched"], ["1", "262010000000001", "home", "duplicate"],
            ["1", "262010000000001", "home", "duplicate"],
            ["1", "262010000000001", "visited", "matched"]] == got["records_file"]
    # A duplicate of an out-of-agreement record is still a duplicate, and unrated.
    got = run(tmp_path, [row("9", service="mms"), row("9")], [row("9")])
    assert ["out-of-agreement", "duplicate", "visited-only"] == [r[3] for r in got["records_file"]]


def test_sim_not_covered(tmp_path: Path) -> None:
    lines = [row("1", home="26202"), row("2", visited="20801"), row("3", imsi="234150000000001"),
             row("4")]
    got = run(tmp_path, lines, list(lines))
    assert ["out-of-agreement"] * 2 + ["matched"] * 2 == [r[3] for r in got["records_file"][:4]]
    got = run(tmp_path, lines, list(lines), imsi_prefixes=["26201"])
    assert ["out-of-agreement"] * 3 + ["matched"] == [r[3] for r in got["records_file"][:4]]


def test_missing_tariff_makes_the_service_unknown(tmp_path: Path) -> None:
    lines = [row("1", service="sms", volume=2), row("2")]
    got = run(tmp_path, lines, list(lines), tariffs={"data_per_mb": 100})
    assert ["out-of-agreement", "matched"] == [r[3] for r in got["records_file"][:2]]


def test_bom_crlf_blank_lines_and_column_order(tmp_path: Path) -> None:
    lines = [row("1"), row("2", service="voice", volume=61)]
    plain = run(tmp_path, lines, list(lines))
    terms = load_agreement(agreement_file(tmp_path))
    home = tmp_path / "bom.csv"
    home.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *lines, ""]) + "\r\n").encode())
    columns = list(USAGE_COLUMNS)[::-1]
    visited = tmp_path / "reordered.csv"
    visited.write_text("\n".join([",".join(columns)] + [",".join(line.split(",")[::-1])
                                                        for line in lines]) + "\n")
    got = reconcile_files(terms, home, visited).to_json()
    assert plain["counts"] == got["counts"]
    assert plain["statement"] == got["statement"]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    terms = load_agreement(agreement_file(tmp_path))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = write(tmp_path, "header.csv", [])
    visited = write(tmp_path, "v.csv", [row("1"), row("2")])
    for home in (empty, header_only):
        got = reconcile_files(terms, home, visited).to_json()
        assert 2 == got["counts"]["visited-only"]
        assert 0 == got["statement"]["total_minor_units"]
    got = reconcile_files(terms, empty, empty).to_json()
    assert 0 == sum(got["counts"].values())
    assert [] == got["statement"]["lines"]


def test_empty_counts_read_as_zero(tmp_path: Path) -> None:
    line = "1,262010000000001,20810,26201,sms,2026-01-02T00:00:00Z,,,,4"
    got = run(tmp_path, [line], [line])
    assert 20 == got["statement"]["total_minor_units"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("charging_id,imsi\n1,2\n", "bad header"),
        (HEADER.replace("events", "event") + "\n", "bad header"),
        (HEADER + "\n1,262010000000001,20810,26201,data,2026-01-02T00:00:00Z,0,1.5,5,0\n", "bytes_up"),
        (HEADER + "\n1,262010000000001,20810,26201,data,2026-01-02T00:00:00Z,0,-1,5,0\n", "negative"),
        (HEADER + "\n" + row("1", start="yesterday") + "\n", "start"),
        (HEADER + "\n" + row("1", start="2026-02-30T00:00:00Z") + "\n", "start"),
        (HEADER + "\n,262010000000001,20810,26201,sms,2026-01-02T00:00:00Z,0,0,0,1\n", "charging_id"),
        (HEADER + "\n" + row("1") + ",extra\n", "unreadable"),
    ],
)
def test_unreadable_usage_is_one_sentence(tmp_path: Path, text: str, fragment: str) -> None:
    terms = load_agreement(agreement_file(tmp_path))
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    good = write(tmp_path, "good.csv", [row("1")])
    out = tmp_path / "records.csv"
    with pytest.raises(DecodeError) as caught:
        reconcile_files(terms, good, bad, records_out=out)
    assert fragment in caught.value.detail
    assert "\n" not in caught.value.detail
    assert not out.exists()


def test_invalid_utf8_is_unreadable(tmp_path: Path) -> None:
    terms = load_agreement(agreement_file(tmp_path))
    bad = tmp_path / "bad.csv"
    bad.write_bytes((HEADER + "\n").encode() + row("\xff").encode("latin-1") + b"\n")
    with pytest.raises(DecodeError):
        reconcile_files(terms, bad, bad)


@pytest.mark.parametrize(
    "change",
    [
        {"tolerance_percent": -1}, {"tolerance_percent": 101}, {"tolerance_percent": "2"},
        {"tariffs": {"data_per_mb": 1.5}}, {"tariffs": {}}, {"tariffs": {"data_per_mb": -1}},
        {"valid_until": "2025-01-01T00:00:00Z"}, {"valid_from": "soon"}, {"currency": "euro"},
        {"home_plmn": "2620"}, {"id": ""}, {"imsi_prefixes": ["26x"]},
    ],
)
def test_bad_agreement_is_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_agreement(json.dumps({**AGREEMENT, **change}))


def test_agreement_numbers_are_exact() -> None:
    terms = parse_agreement(json.dumps(AGREEMENT).replace('"tolerance_percent": 2',
                                                          '"tolerance_percent": 0.1'))
    assert Fraction(1, 10) == terms.tolerance_percent
    with pytest.raises(DecodeError):
        parse_agreement("{not json")
    with pytest.raises(InvalidInput):
        parse_agreement('{"tolerance_percent": NaN}')


def test_utc_parsing() -> None:
    assert 1767225600_000000 == parse_utc_micros("2026-01-01T00:00:00Z")
    assert 1767225600_000000 == parse_utc_micros("2026-01-01T01:00:00+01:00")
    assert 1767225600_000000 == parse_utc_micros("2026-01-01")
    assert 1767225600_123456 == parse_utc_micros("2026-01-01T00:00:00.123456789Z")


# ---------------------------------------------------------------- zones and volume discounts

ZONES = [{"id": "uk", "visited_plmns": ["23415", "23410"], "tariffs": {"data_per_mb": 90}},
         {"id": "es", "visited_plmns": ["21407"], "tariffs": {"sms_per_event": 2,
                                                             "voice_per_minute": 11}}]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["20810", "23415", "23410", "21407", "99999"]),
                          st.sampled_from(["data", "sms", "voice"]),
                          st.integers(0, 5_000_000), st.integers(0, 3)), min_size=1, max_size=25))
def test_zone_tariffs_equal_the_independent_model(
    records: list[tuple[str, str, int, int]]
) -> None:
    home, visited = [], []
    for index, (plmn, service, volume, extra) in enumerate(records):
        cid = str(5_000_000 + index)
        visited.append(row(cid, service=service, volume=volume, visited=plmn))
        home.append(row(cid, service=service, volume=volume + extra * volume // 10, visited=plmn))
    with tempfile.TemporaryDirectory() as name:
        got = run(Path(name), home, visited, zones=ZONES)
    agreement = {**AGREEMENT, "zones": ZONES}
    counts, total, disputed, records_out = recompute(
        agreement, read_rows("\n".join([HEADER, *home])), read_rows("\n".join([HEADER, *visited])))
    assert counts == got["counts"]
    assert total == got["statement"]["total_minor_units"]
    assert disputed == got["statement"]["disputed_minor_units"]
    assert [list(r) for r in records_out] == got["records_file"]


def test_zone_rates_its_networks_and_covers_them(tmp_path: Path) -> None:
    records = [row("1", volume=1_000_000), row("2", volume=1_000_000, visited="23415"),
               row("3", service="sms", volume=10, visited="21407"),
               row("4", service="sms", volume=10, visited="23410")]
    got = run(tmp_path, records, list(records), zones=ZONES)
    assert 8 == got["counts"]["matched"]
    # 150 (home zone) + 90 (uk data) + 10 × 2 (es sms) + 10 × 5 (uk has no sms override)
    assert 150 + 90 + 20 + 50 == got["statement"]["total_minor_units"]
    data = next(line for line in got["statement"]["lines"] if line["service"] == "data")
    assert {"uk": 90} == data["zone_tariffs"]
    without = run(tmp_path, records, list(records))
    assert 6 == without["counts"]["out-of-agreement"]  # no zones: 3 records × 2 sides uncovered


def test_volume_discount_tiers_apply_to_the_settled_amount(tmp_path: Path) -> None:
    tiers = [{"service": "data", "from_volume": 1_000_000, "percent": 5},
             {"service": "data", "from_volume": 3_000_000, "percent": 12.5},
             {"service": "sms", "from_volume": 100, "percent": 50}]
    two = [row("1", volume=1_000_000), row("2", volume=1_000_001)]
    got = run(tmp_path, two, list(two), discount_tiers=tiers)["statement"]
    assert 300 == got["total_minor_units"]  # the item 6 total is before discounts
    assert [{"service": "data", "volume": 2_000_001, "from_volume": 1_000_000, "percent": "5",
             "settled_minor_units": 300, "discount_minor_units": 15}] == got["discounts"]
    assert (15, 285) == (got["discount_minor_units"], got["payable_minor_units"])
    three = [*two, row("3", volume=1_000_000, service="data"), row("4", service="sms", volume=9)]
    got = run(tmp_path, three, list(three), discount_tiers=tiers)["statement"]
    # 450 of data at 12.5 % = 56.25 → 56; sms volume 9 is below its tier.
    assert [("data", 56)] == [(d["service"], d["discount_minor_units"]) for d in got["discounts"]]
    assert 450 + 45 - 56 == got["payable_minor_units"]
    plain = run(tmp_path, two, list(two))["statement"]
    assert "discounts" not in plain  # no tiers: the statement is exactly item 6's


@pytest.mark.parametrize(
    "change",
    [
        {"zones": {"id": "x"}},
        {"zones": [{"id": "x", "visited_plmns": [], "tariffs": {"data_per_mb": 1}}]},
        {"zones": [{"id": "x", "visited_plmns": ["20810"], "tariffs": {"data_per_mb": 1}}]},
        {"zones": [{"id": "x", "visited_plmns": ["23415"], "tariffs": {"data_per_mb": 1}},
                   {"id": "y", "visited_plmns": ["23415"], "tariffs": {"data_per_mb": 2}}]},
        {"zones": [{"id": "x", "visited_plmns": ["23415"], "tariffs": {"mms": 1}}]},
        {"zones": [{"id": "x", "visited_plmns": ["2341"], "tariffs": {"data_per_mb": 1}}]},
        {"discount_tiers": [{"service": "fax", "from_volume": 1, "percent": 1}]},
        {"discount_tiers": [{"service": "data", "from_volume": -1, "percent": 1}]},
        {"discount_tiers": [{"service": "data", "from_volume": 1, "percent": 101}]},
        {"discount_tiers": [{"service": "data", "from_volume": 1, "percent": 1},
                            {"service": "data", "from_volume": 1, "percent": 2}]},
    ],
)
def test_bad_zones_and_tiers_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_agreement(json.dumps({**AGREEMENT, **change}))
