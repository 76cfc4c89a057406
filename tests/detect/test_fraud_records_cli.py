"""``simtrust fraud usage-import``, ``tac-import`` and ``tac-status`` on a data directory.

Imported records of inventory SIMs land on the shared event stream the
serving process follows (one row per record, the SIM mapped from its ICCID,
no counterpart); unknown SIMs are counted; bad input is one line and exit 2
with nothing imported. A TAC export replaces the imported database, which
``tac-status`` reports and the runtime's detector uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.detect import SimEvent
from simtrust.domain import Imei, imsi_digits
from simtrust.runtime import Runtime
from simtrust.subscriber import Iccid, Imsi, OpKind, SimSecrets, SimSpec, SimState, luhn_check_digit

IMSI = "001010000000007"
_BODY = "89882" + "0" * 12 + "7"
ICCID = _BODY + str(luhn_check_digit(_BODY))


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert 0 == _cli(capsys, "init", "--json")[0]
    rt = Runtime.open()
    try:
        rt.tenants.create_tenant("acme", "Acme")
        rt.subscriber.inventory.add_sim("acme", SimSpec(
            Iccid(ICCID), Imsi(IMSI, 2),
            SimSecrets(bytes(16), bytes(range(16)), OpKind.OPC), state=SimState.ACTIVE),
            actor="test")
    finally:
        rt.close()
    return tmp_path


def test_usage_import_queues_events_for_the_serving_process(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = home / "cdr.csv"
    records.write_text("iccid,imsi,kind,direction,start,duration,counterpart\n"
                       f"{ICCID},,voice,mo,2026-12-01T10:00:00Z,42,+4915100000001\n"
                       f",{IMSI},sms,mt,2026-12-01T09:00:00Z,,\n"
                       ",001019999999999,sms,mo,2026-12-01T09:30:00Z,,\n", "utf-8")
    code, out, err = _cli(capsys, "fraud", "usage-import", records, "--json")
    assert 0 == code, err
    assert {"records": 3, "queued": 2, "unknown_sims": 1} == json.loads(out)
    rt = Runtime.open()
    try:
        rows = rt.sim_events.since(0)
    finally:
        rt.close()
    events = [SimEvent.from_json(json.loads(body)) for _, body in rows]
    assert [(IMSI, "sms", "mt", "acme", 0.0), (IMSI, "voice", "mo", "acme", 42.0)] == [
        (e.imsi, e.kind, e.direction, e.tenant, e.duration) for e in events]
    assert "+4915100000001" not in str(rows)


@pytest.mark.parametrize(("text", "message"), [
    ('{"imsi": "001010000000007", "kind": "fax", "direction": "mo", "start": 1}\n',
     "line 1: 'kind'"),
    ("imsi,kind,direction,start\n001010000000007,sms,mo\n", "line 2: 3 columns"),
    ("imsi,kind,direction,start,price\n", "unknown column 'price'"),
])
def test_usage_import_bad_input_is_one_line_and_exit_2(
        home: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    records = home / "bad.jsonl"
    records.write_text(text, "utf-8")
    code, _, err = _cli(capsys, "fraud", "usage-import", records)
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    assert message in err
    assert str(records) in err
    code, _, err = _cli(capsys, "fraud", "usage-import", home / "missing.csv")
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    rt = Runtime.open()
    try:
        assert [] == rt.sim_events.since(0)
    finally:
        rt.close()


def test_tac_import_status_and_the_detector(home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert "reporting bodies only" in _cli(capsys, "fraud", "tac-status")[1]
    export = home / "tac.csv"
    export.write_text("TAC,Marketing Name\n35328611,Module X\n86123404,Tracker Y\n", "utf-8")
    code, out, err = _cli(capsys, "fraud", "tac-import", export, "--source", "GSMA 2026-11",
                          "--json")
    assert 0 == code, err
    assert (2, "GSMA 2026-11") == (json.loads(out)["count"], json.loads(out)["source"])
    code, out, _ = _cli(capsys, "fraud", "tac-status", "--json")
    assert 2 == json.loads(out)["imported"]["count"]
    rt = Runtime.open()
    try:
        imei = str(Imei.from_tac_snr("35328612", "000001"))
        found = rt.detect.observe_sim(SimEvent(1_000.0, imsi_digits(IMSI), "auth", imei=imei))
    finally:
        rt.close()
    assert ["unallocated-tac"] == [a.evidence["reason"] for a in found
                                   if a.evidence["feature"] == "tac_allocated"]
    bad = home / "bad.csv"
    bad.write_text("Model\nX\n", "utf-8")
    code, _, err = _cli(capsys, "fraud", "tac-import", bad)
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    assert "no 'TAC' column" in err
    code, out, _ = _cli(capsys, "fraud", "tac-status", "--json")
    assert 2 == json.loads(out)["imported"]["count"]  # the bad file changed nothing
