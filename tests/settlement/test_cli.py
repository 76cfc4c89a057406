"""`simtrust settle reconcile`: offline, one JSON document, the records file; bad input is
one stderr line, exit code 2, and nothing written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli.test_root import simtrust
from tests.settlement.test_reconcile import agreement_file, row, write


def test_reconcile_prints_counts_statement_and_writes_records(tmp_path: Path) -> None:
    agreement = agreement_file(tmp_path)
    home = write(tmp_path, "home.csv", [row("1"), row("2", volume=2000), row("3"), row("3")])
    visited = write(tmp_path, "visited.csv", [row("1"), row("2"), row("4", service="sms", volume=2)])
    out = tmp_path / "records.csv"
    done = simtrust("settle", "reconcile", "--agreement", str(agreement), "--home", str(home),
                    "--visited", str(visited), "--records", str(out), "--json",
                    home=tmp_path / "no-such-home", check=True)
    document = json.loads(done.stdout)
    assert {"matched": 2, "partial": 2, "visited-only": 1, "home-only": 1, "duplicate": 1,
            "out-of-agreement": 0} == document["counts"]
    statement = document["statement"]
    assert "EUR" == statement["currency"]
    # matched 1000 B at 150/MB -> 0.15 -> 0; partial min(0.3, 0.15) -> 0; sms 2 x 5 disputed
    assert 0 == statement["total_minor_units"]
    assert 0 + 10 == statement["disputed_minor_units"]
    assert isinstance(statement["lines"], list)
    rows = list(csv.reader(out.open()))
    assert ["charging_id", "imsi", "side", "class"] == rows[0]
    assert 7 == len(rows) - 1
    assert ["3", "262010000000001", "home", "duplicate"] == rows[4]
    assert not (tmp_path / "no-such-home").exists()


def test_unreadable_input_is_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    agreement = agreement_file(tmp_path)
    good = write(tmp_path, "good.csv", [row("1")])
    bad = write(tmp_path, "bad.csv", [], text="charging_id,imsi\n1,2\n")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    out = tmp_path / "records.csv"
    cases = [
        ("--agreement", str(agreement), "--home", str(good), "--visited", str(bad)),
        ("--agreement", str(agreement), "--home", str(tmp_path / "missing.csv"), "--visited",
         str(good)),
        ("--agreement", str(broken), "--home", str(good), "--visited", str(good)),
    ]
    for args in cases:
        done = simtrust("settle", "reconcile", *args, "--records", str(out), "--json")
        assert 2 == done.returncode, done.stderr
        assert "" == done.stdout
        assert 1 == len(done.stderr.strip().splitlines()), done.stderr
        assert not out.exists()
