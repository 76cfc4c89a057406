"""Unallocated TAC ranges: the shipped reporting-body table, and an imported GSMA TAC database.

A TAC under a reporting body that never allocated any, a test IMEI and a TAC
of the reserved body 98 outside its historic ranges raise ``equipment`` /
``tac_allocated``; the table names its source; an imported database makes
the check exact and is re-read by the serving process when it changes; the
CSV decoder refuses malformed exports with the line and never fails on
arbitrary text with anything but InvalidInput.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import (
    FraudDetector,
    SimEvent,
    TacAllocations,
    TacDatabaseFile,
    parse_tac_csv,
    rbi_table,
)
from simtrust.domain import Imei
from simtrust.errors import InvalidInput

T0 = 1_790_000_000.0


def _imei(tac: str) -> str:
    return str(Imei.from_tac_snr(tac, "123456"))


def _tac_alerts(det: FraudDetector, imei: str, imsi: str = "001010000000001") -> list[str]:
    found = det.observe(SimEvent(T0, imsi, "auth", plmn="26201", imei=imei))
    return [a.evidence["reason"] for a in found if a.evidence["feature"] == "tac_allocated"]


def test_the_shipped_table_names_its_source_and_the_bodies() -> None:
    doc = rbi_table()
    assert "TS.06" in doc["source"]
    statuses = {k: v["status"] for k, v in doc["rbi"].items()}
    assert statuses["35"] == statuses["86"] == statuses["01"] == "allocating"
    assert statuses["00"] == statuses["05"] == "test"
    assert statuses["49"] == "historic"
    assert statuses["98"] == "reserved"
    assert "12" not in statuses
    assert "77" not in statuses


@pytest.mark.parametrize(("tac", "reason"), [
    ("35328611", ""), ("86123404", ""), ("01326300", ""), ("49015420", ""), ("99000123", ""),
    ("98005000", ""),  # in the historic range of the reserved body
    ("12345678", "unallocated-rbi"), ("77000001", "unallocated-rbi"),
    ("00100100", "test-imei"), ("04123456", "test-imei"),
    ("98100000", "reserved-rbi"),
])
def test_the_detector_flags_unallocated_ranges(tac: str, reason: str) -> None:
    det = FraudDetector()
    assert _tac_alerts(det, _imei(tac)) == ([reason] if reason else [])


def test_the_evidence_explains_and_an_invalid_imei_is_not_judged_twice() -> None:
    det = FraudDetector()
    found = det.observe(SimEvent(T0, "001010000000001", "auth", imei=_imei("12345678")))
    alert = next(a for a in found if a.evidence["feature"] == "tac_allocated")
    assert alert.kind == "equipment"
    assert alert.evidence["reporting_body"] == "12"
    assert "TS.06" in alert.evidence["rule"]
    assert "not allocated" in alert.summary
    bad = _imei("12345678")[:14] + str((int(_imei("12345678")[14]) + 1) % 10)
    assert _tac_alerts(det, bad, "001010000000002") == []  # the Luhn alert covers it


def test_an_imported_database_checks_tacs_exactly() -> None:
    tacs = TacAllocations.shipped(frozenset({"35328611"}), {"source": "test"})
    assert tacs.problem("35328611") == ""
    assert tacs.problem("35328612") == "unallocated-tac"
    assert tacs.problem("12345678") == "unallocated-rbi"  # the table still applies
    det = FraudDetector()
    det.tac_allocations = lambda: tacs
    assert _tac_alerts(det, _imei("35328612")) == ["unallocated-tac"]


EXPORT = ('"TAC","Marketing Name","Manufacturer (or) Applicant","Allocation Date",'
          '"Device Type"\r\n'
          '"35328611","Module X","Example Ltd","01-Jan-2024","Module"\r\n'
          '"86123404","Tracker Y","Other Co","15-Mar-2023","Module"\r\n'
          '"35328611","Module X rev","Example Ltd","02-Jan-2024","Module"\r\n')


def test_a_gsma_export_is_read() -> None:
    found = parse_tac_csv(EXPORT)
    assert sorted(found) == ["35328611", "86123404"]
    assert found["35328611"] == {"name": "Module X", "manufacturer": "Example Ltd",
                                 "allocated": "01-Jan-2024"}
    semi = parse_tac_csv("tac;model name\n35328611;A\n")
    assert semi["35328611"]["name"] == "A"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("Model,Maker\nA,B\n", "line 1: no 'TAC' column"),
    ("TAC,Name\n3532861,A\n", "line 2: TAC '3532861' is not 8 digits"),
    ("TAC,Name\n35328611,A\n3532861x,B\n", "line 3"),
    ("TAC,Name\n", "no TAC rows"),
    ("TAC\x00,Name\n", "NUL"),
])
def test_a_malformed_export_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_tac_csv(text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.text(alphabet="0123456789,;\"\n TACab", max_size=20),
                          max_size=8).map(lambda rows: "TAC,Name\n" + "\n".join(rows))))
def test_the_export_decoder_fuzz(text: str) -> None:
    try:
        found = parse_tac_csv(text)
    except InvalidInput:
        return
    assert found
    assert all(len(t) == 8 and t.isdigit() for t in found)


def test_the_file_is_re_read_when_it_changes(tmp_path: Path) -> None:
    now = [0.0]
    db = TacDatabaseFile(tmp_path / "tac-database.json", recheck_s=5.0,
                         monotonic=lambda: now[0])
    assert db.current().exact is None
    assert db.summary() is None
    summary = db.save(parse_tac_csv(EXPORT), "GSMA export 2026-11",
                      datetime(2026, 12, 1, tzinfo=UTC))
    assert summary == {"source": "GSMA export 2026-11",
                       "imported_at": "2026-12-01T00:00:00+00:00", "count": 2}
    assert db.current().problem("35328612") == "unallocated-tac"
    assert db.model("86123404") == {"name": "Tracker Y", "manufacturer": "Other Co",
                                    "allocated": "15-Mar-2023"}
    # another process replaces the file: seen after the recheck interval
    other = TacDatabaseFile(tmp_path / "tac-database.json")
    other.save(parse_tac_csv("TAC\n35328612\n"), "newer", datetime(2026, 12, 2, tzinfo=UTC))
    stat = os.stat(tmp_path / "tac-database.json")
    os.utime(tmp_path / "tac-database.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert db.current().problem("35328612") == "unallocated-tac"  # not re-checked yet
    now[0] = 6.0
    assert db.current().problem("35328612") == ""
    assert db.current().problem("35328611") == "unallocated-tac"
    (tmp_path / "tac-database.json").unlink()
    now[0] = 12.0
    assert db.current().exact is None
