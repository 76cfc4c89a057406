"""``simtrust fraud analyse`` and ``python -m simtrust.testing.fraud``; SimEvent JSON fuzzed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.cli import main
from simtrust.detect import SimEvent
from simtrust.domain import Imei
from simtrust.errors import InvalidInput
from simtrust.testing.fraud.cli import app as gear_app


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def go(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            if args[:1] == ("gear",):
                gear_app([str(a) for a in args[1:]])
            else:
                main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return go


def _write(path: Path, events: list[SimEvent]) -> Path:
    path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
    return path


def test_analyse_json_lines(run: Callable[..., Result], tmp_path: Path) -> None:
    imsi = "262019876543210"
    good = str(Imei.from_tac_snr("35328611", "000001"))
    other = str(Imei.from_tac_snr("86123404", "000001"))
    events = _write(tmp_path / "ev.jsonl", [
        SimEvent(0, imsi, "auth", plmn="26201", imei=good),
        SimEvent(600, imsi, "auth", plmn="72405", imei=good),
        SimEvent(700, imsi, "auth", plmn="72405", imei=other),
    ])
    models = tmp_path / "models.csv"
    models.write_text(f"imsi,tac\n{imsi},35328611\n")
    block = tmp_path / "block.txt"
    block.write_text("86123404\n")
    r = run("fraud", "analyse", events, "--models", models, "--blocklist", block, "--json")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    reasons = sorted(d["evidence"].get("reason", d["evidence"]["feature"]) for d in docs)
    assert reasons == ["blocklisted", "tac-mismatch", "travel_speed_kmh"]
    assert all(d["imsi"] == imsi and d["at"].endswith("Z") for d in docs)
    summary = run("fraud", "analyse", events)
    assert summary.returncode == 0
    assert "3 events, 1 SIMs, 1 alerts" in summary.stdout


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not JSON"),
    ('{"at": 1, "imsi": "1", "kind": "fly"}', "unknown SIM event kind"),
    ('{"at": 1, "imsi": "1", "kind": "auth", "x": 1}', "unknown SIM event field"),
    ('[1, 2]', "JSON object"),
])
def test_analyse_bad_input_exit_2(run: Callable[..., Result], tmp_path: Path, line: str,
                                  message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    r = run("fraud", "analyse", path, "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_analyse_bad_side_files(run: Callable[..., Result], tmp_path: Path) -> None:
    events = _write(tmp_path / "ev.jsonl", [SimEvent(0, "1", "auth")])
    (tmp_path / "m.csv").write_text("262010000000001,123\n")
    (tmp_path / "b.txt").write_text("abc\n")
    assert run("fraud", "analyse", events, "--models", tmp_path / "m.csv").returncode == 2
    assert run("fraud", "analyse", events, "--blocklist", tmp_path / "b.txt").returncode == 2
    assert run("fraud", "analyse", tmp_path / "missing.jsonl").returncode == 2


def test_gear_generate_then_analyse_and_evaluate(run: Callable[..., Result],
                                                 tmp_path: Path) -> None:
    out, labels = tmp_path / "ev.jsonl", tmp_path / "labels.json"
    r = run("gear", "generate", "--seed", "5", "--sims", "40", "--days", "3",
            "--out", out, "--labels", labels)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(labels.read_text())) == 40
    assert run("fraud", "analyse", out, "--json").returncode == 0
    ev = run("gear", "evaluate", "--seed", "5", "--sims", "40", "--days", "3", "--json")
    assert set(json.loads(ev.stdout)["recall"]) <= {"clone", "travel"}
    assert run("gear", "evaluate", "--sims", "0").returncode == 2


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))


@settings(max_examples=100, deadline=None)
@given(st.one_of(_scalars, st.lists(_scalars, max_size=3),
                 st.dictionaries(st.sampled_from(["at", "imsi", "kind", "plmn", "imei", "lat",
                                                  "lon", "session", "cell", "tenant", "zz"]),
                                 _scalars, max_size=8)))
def test_event_json_decoder_fuzz(doc: object) -> None:
    try:
        ev = SimEvent.from_json(doc)
    except InvalidInput:
        return
    assert SimEvent.from_json(ev.to_json()) == ev
