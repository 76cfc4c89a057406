"""Usage from RADIUS accounting (issue 15 item 3): closed roaming sessions become usage
records that reconcile against the other side's file; paging covers every session."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from simtrust.aaa import AccountingLog, AcctRecord
from simtrust.errors import InvalidInput
from simtrust.runtime import Runtime
from simtrust.settlement import export_session_usage, load_agreement, reconcile_files
from tests.settlement.test_cli import cli
from tests.settlement.test_reconcile import agreement_file, row, write


def _session(n: int, *, status: str = "closed", visited: str | None = "20810",
             at: str = "2026-01-10T12:00:00+00:00") -> AcctRecord:
    return AcctRecord(session_key=f"1:s{n}", acct_session_id=f"s{n}", client_id=1,
                      status=status, at=at, imsi="262010000000001",
                      iccid="8988200000000000018", in_octets=300 + n, out_octets=700,
                      session_time=60, serving_plmn=visited, visited_plmn=visited)


def test_sessions_export_and_reconcile(runtime: Runtime, tmp_path: Path) -> None:
    log = AccountingLog(runtime.db)
    try:
        log.write_now([_session(n) for n in range(7)]
                      + [_session(7, status="open"), _session(8, visited=None),
                         _session(9, at="2026-03-01T00:00:00+00:00")])
        out = tmp_path / "visited.csv"
        count = export_session_usage(
            lambda after: log.roaming_sessions(after=after, limit=3), out, home_plmn="26201",
            until_us=1_772_323_200_000_000)  # 2026-03-01: the March session is left out
        assert 7 == count
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [f"s{n}" for n in range(7)] == sorted(r["charging_id"] for r in rows)
        assert {("20810", "26201", "data", "60", "700")} == {
            (r["visited_plmn"], r["home_plmn"], r["service"], r["duration_s"], r["bytes_down"])
            for r in rows}
        home = write(tmp_path, "home.csv", [
            row(f"s{n}", volume=1000 + n) for n in range(6)])  # s6 missing at home
        result = reconcile_files(load_agreement(agreement_file(tmp_path)), home, out)
        assert (12, 1) == (result.counts["matched"], result.counts["visited-only"])
        with pytest.raises(InvalidInput):
            export_session_usage(lambda after: [], tmp_path / "x.csv", home_plmn="26")
        assert not (tmp_path / "x.csv").exists()
    finally:
        log.close()


def test_usage_export_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    cli("init", "--json", check=True)
    out = tmp_path / "usage.csv"
    done = json.loads(cli("settle", "usage-export", "--out", str(out), "--home-plmn", "26201",
                          "--from", "2026-01-01T00:00:00Z", "--json", check=True).stdout)
    assert (0, str(out)) == (done["records"], done["path"])
    assert out.read_text().startswith("charging_id,imsi,visited_plmn,home_plmn,service,")
    bad = cli("settle", "usage-export", "--out", str(tmp_path / "y.csv"), "--home-plmn", "2")
    assert 2 == bad.returncode
    assert not (tmp_path / "y.csv").exists()
