"""Fraud checks (issue 15 item 3): usage of SIMs the home network had suspended at the
record's start is flagged (half-open intervals, open end), without changing classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.errors import DecodeError
from simtrust.settlement import load_suspensions, suspended_usage
from tests.settlement.test_cli import cli
from tests.settlement.test_reconcile import agreement_file, row, write


def test_suspended_sims_are_flagged(tmp_path: Path) -> None:
    visited = write(tmp_path, "visited.csv", [
        row("1", "262010000000001", start="2026-01-10T00:00:00Z"),  # inside the suspension
        row("2", "262010000000001", start="2026-01-20T00:00:00Z"),  # at its end: not
        row("3", "262010000000002", start="2026-01-25T00:00:00Z"),  # open-ended: flagged
        row("4", "262010000000003", start="2026-01-25T00:00:00Z"),  # never suspended
    ])
    suspensions = tmp_path / "suspended.csv"
    suspensions.write_text("imsi,suspended_from,suspended_until\n"
                           "262010000000001,2026-01-05T00:00:00Z,2026-01-20T00:00:00Z\n"
                           "262010000000002,2026-01-24T00:00:00Z,\n")
    flagged = suspended_usage(visited, load_suspensions(suspensions))
    assert [1, 3] == [f["record"] for f in flagged]
    home = write(tmp_path, "home.csv", [])
    done = cli("settle", "reconcile", "--agreement", str(agreement_file(tmp_path)), "--home",
               str(home), "--visited", str(visited), "--suspended", str(suspensions), "--json",
               check=True)
    document = json.loads(done.stdout)
    assert ["1", "3"] == [f["charging_id"] for f in document["fraud"]["suspended_sim_usage"]]
    assert 4 == document["counts"]["visited-only"]
    suspensions.write_text("imsi,from\n1,2\n")
    with pytest.raises(DecodeError):
        load_suspensions(suspensions)
