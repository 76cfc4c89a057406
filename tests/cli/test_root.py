"""The root CLI: version, init, audit verify/query, keys rotate, bench, errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simtrust.config import load_settings
from simtrust.runtime import Runtime


def simtrust(*args: str, home: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if home is not None:
        env["SIMTRUST_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "simtrust", *args], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )
    if check:
        assert 0 == done.returncode, done.stderr
    return done


def test_version() -> None:
    out = simtrust("--version", check=True).stdout
    assert out.startswith("simtrust 0.")


def test_help_lists_commands() -> None:
    out = simtrust("--help", check=True).stdout
    for command in ("init", "serve", "demo", "bench", "audit", "keys"):
        assert command in out


def test_init_is_idempotent_and_shows_key_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = json.loads(simtrust("init", "--json", home=home, check=True).stdout)
    assert first["initialised"] is True
    assert first["operator_api_key"].startswith("stk_")
    second = json.loads(simtrust("init", "--json", home=home, check=True).stdout)
    assert second["initialised"] is False
    assert second["operator_api_key"] is None
    assert first["master_key_id"] == second["master_key_id"]
    assert 0o700 == (home.stat().st_mode & 0o777)


def test_audit_verify_reports_tampering(tmp_path: Path) -> None:
    home = tmp_path / "home"
    simtrust("init", "--json", home=home, check=True)
    good = json.loads(simtrust("audit", "verify", "--json", home=home, check=True).stdout)
    assert good["intact"] is True
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        for i in range(3):
            rt.audit.append(actor="t", action="t.x", subject=f"s{i}", outcome="info")
        rt.db.execute("UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
    finally:
        rt.close()
    bad = simtrust("audit", "verify", "--json", home=home)
    assert 1 == bad.returncode
    verdict = json.loads(bad.stdout)
    assert [{"seq": 2, "problem": "altered"}] == [
        {"seq": b["seq"], "problem": b["problem"]} for b in verdict["breaks"]
    ]
    rows = json.loads(simtrust("audit", "query", "--subject", "s1", "--json", home=home,
                               check=True).stdout)
    assert ["s1"] == [r["subject"] for r in rows]


def test_keys_rotate_rewraps_sealed_columns(tmp_path: Path) -> None:
    home = tmp_path / "home"
    simtrust("init", "--json", home=home, check=True)
    before = json.loads(simtrust("keys", "list", "--json", home=home, check=True).stdout)
    rotated = json.loads(simtrust("keys", "rotate", "--retire", "--json", home=home,
                                  check=True).stdout)
    after = json.loads(simtrust("keys", "list", "--json", home=home, check=True).stdout)
    assert rotated["active"] == after["active"] != before["active"]
    assert [rotated["active"]] == after["keys"]
    assert before["active"] in rotated["retired"]


def test_uninitialised_home_is_one_line_error(tmp_path: Path) -> None:
    done = simtrust("audit", "verify", home=tmp_path / "empty")
    assert 0 != done.returncode
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines)
    assert "simtrust init" in lines[0]


def test_unknown_bench_is_one_line_error() -> None:
    done = simtrust("bench", "no-such-bench")
    assert 1 == done.returncode
    assert 1 == len(done.stderr.strip().splitlines())
    assert "no benchmark" in done.stderr


def test_bench_json_contract() -> None:
    done = simtrust("bench", "foundation", "--quick", "--json", check=True)
    result = json.loads(done.stdout)
    assert {"bench", "metrics", "limits", "ratios", "machine"} <= set(result)
    assert "foundation" == result["bench"]
    assert {"cpus", "python"} <= set(result["machine"])
    assert result["metrics"]["audit_batched_per_s"] > 0
    for name, value in result["ratios"].items():
        assert value > 0, name


@pytest.mark.parametrize("args", [["bench"], ["init", "--bogus"]])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    done = simtrust(*args, home=tmp_path / "h")
    assert 2 == done.returncode
