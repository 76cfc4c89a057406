"""``simtrust fraud publish|reports|revoke|confirm|status|alerts`` on a data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits
from simtrust.runtime import Runtime

STOLEN = "490154203237518"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_publish_list_revoke_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert 0 == _cli(capsys, "init", "--json")[0]
    code, _, err = _cli(capsys, "fraud", "reports")
    assert 1 == code
    assert "SIMTRUST_FRAUD_CONSORTIUM" in err
    assert 1 == len(err.strip().splitlines())
    consortium = tmp_path / "consortium.json"
    consortium.write_text(json.dumps({"members": [], "current": "e1",
                                      "keys": {"e1": "cd" * 32}}), "utf-8")
    monkeypatch.setenv("SIMTRUST_FRAUD_CONSORTIUM", str(consortium))
    code, out, err = _cli(capsys, "fraud", "publish", "--indicator", "stolen-equipment",
                          "--imei", STOLEN, "--severity", "critical", "--json")
    assert 0 == code, err
    published = json.loads(out)
    assert "applied" == published["outcome"]
    code, out, _ = _cli(capsys, "fraud", "reports", "--json")
    [report] = json.loads(out)["reports"]
    assert (published["id"], "critical", {"imsi": 0, "imei": 1}) == (
        report["id"], report["severity"], report["identifiers"])
    assert STOLEN not in out
    code, out, err = _cli(capsys, "fraud", "revoke", published["id"], "--reason", "found")
    assert 0 == code, err
    code, out, _ = _cli(capsys, "fraud", "status", "--json")
    assert {"reports": 1, "revoked": 1} == {
        k: v for k, v in json.loads(out)["sharing"].items() if k in ("reports", "revoked")}
    # bad input: one line, exit 2; a missing report: exit 1
    for args in (("publish", "--indicator", "nonsense", "--imsi", "001010000000001"),
                 ("publish", "--indicator", "sim-box", "--imsi", "not-an-imsi"),
                 ("publish",), ("alerts", "--kind", "scan")):
        code, _, err = _cli(capsys, "fraud", *args)
        assert 2 == code, args
        assert 1 == len(err.strip().splitlines()), err
    code, _, err = _cli(capsys, "fraud", "confirm", "urn:uuid:none")
    assert 1 == code
    assert 1 == len(err.strip().splitlines())


def test_alerts_and_publish_from_an_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert 0 == _cli(capsys, "init", "--json")[0]
    consortium = tmp_path / "consortium.json"
    consortium.write_text(json.dumps({"members": [], "current": "e1",
                                      "keys": {"e1": "cd" * 32}}), "utf-8")
    monkeypatch.setenv("SIMTRUST_FRAUD_CONSORTIUM", str(consortium))
    rt = Runtime.open()
    try:  # what the serving process does: detect, and write its counters
        rt.detect.observe_sim(SimEvent(at=1_000.0, imsi=imsi_digits("001010000000001"),
                                       kind="location", plmn="00101", imei="490154203237517"))
        rt.publish_fraud_status({"sbi": {"admitted": 5, "refused": {}, "buckets": {}}})
    finally:
        rt.close()
    code, out, _ = _cli(capsys, "fraud", "alerts", "--json")
    [alert] = json.loads(out)["alerts"]
    assert "imei_valid" == alert["evidence"]["feature"]
    code, out, err = _cli(capsys, "fraud", "publish", "--alert", alert["event_id"], "--json")
    assert 0 == code, err
    code, out, _ = _cli(capsys, "fraud", "reports", "--json")
    assert ["invalid-equipment"] == [r["indicator"] for r in json.loads(out)["reports"]]
    code, out, _ = _cli(capsys, "fraud", "status")
    assert "storm sbi: admitted 5" in out
    assert "detector: 1 SIMs" in out


def test_verdicts_close_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert 0 == _cli(capsys, "init", "--json")[0]
    rt = Runtime.open()
    try:
        rt.detect.observe_sim(SimEvent(at=1_000.0, imsi=imsi_digits("001010000000001"),
                                       kind="auth-sqn-ahead"))
    finally:
        rt.close()
    code, out, _ = _cli(capsys, "fraud", "alerts", "--json")
    [alert] = json.loads(out)["alerts"]
    assert "open" == alert["case"]["state"]
    code, _, err = _cli(capsys, "fraud", "verdict", alert["event_id"], "maybe")
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    code, _, err = _cli(capsys, "fraud", "verdict", "no-such-event", "dismissed")
    assert 1 == code
    code, out, err = _cli(capsys, "fraud", "verdict", alert["event_id"], "dismissed",
                          "--note", "AuC restored from backup")
    assert 0 == code, err
    code, out, _ = _cli(capsys, "fraud", "alerts")
    assert "[dismissed]" in out
