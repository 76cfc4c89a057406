"""``simtrust sim`` and ``simtrust attach``: import with progress and errors, list, check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simtrust.cli import app
from simtrust.config import load_settings
from simtrust.runtime import Runtime

from .conftest import K1, OPC1, TENANT, iccid, imei, imsi
from .vendorfile import write_vendor_file


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=path))
    rt.tenants.create_tenant(TENANT, "Acme")
    rt.close()
    return path


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"SIMTRUST_HOME": str(home),
                                                      "SIMTRUST_MQTT_URL": "mqtt://127.0.0.1:1"})
    return result.exit_code, result.stdout


def test_import_list_show_transition(home: Path, tmp_path: Path) -> None:
    file = write_vendor_file(tmp_path / "batch.csv", 25)
    code, out = run(home, "sim", "import", str(file), "--tenant", TENANT, "--json")
    assert 0 == code, out
    summary = json.loads(out)
    assert (25, 25, ["PIN1", "PUK1"]) == (summary["rows"], summary["imported"],
                                          summary["ignored_columns"])
    code, out = run(home, "sim", "list", "--tenant", TENANT, "--limit", "5", "--json")
    listed = json.loads(out)
    assert 5 == len(listed["sims"])
    assert 25 == listed["counts"]["inventory"]
    first = listed["sims"][0]["iccid"]
    code, out = run(home, "sim", "transition", first, "active", "--json")
    assert (0, "active") == (code, json.loads(out)["state"])
    code, out = run(home, "sim", "show", first, "--json")
    shown = json.loads(out)
    assert ("active", []) == (shown["state"], shown["bindings"])
    assert "k" not in shown
    code, _ = run(home, "sim", "transition", first, "inventory")
    assert 0 != code


def test_import_rejection_lists_every_bad_row(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "bad.csv"
    file.write_text(
        "ICCID,IMSI,KI,OPC\n"
        f"{iccid(1)},{imsi(1)},{K1.hex()},{OPC1.hex()}\n"
        f"{iccid(2)},{imsi(2)},xx,{OPC1.hex()}\n"
        f"{iccid(3)},123,{K1.hex()},{OPC1.hex()}\n",
        encoding="utf-8",
    )
    report = tmp_path / "errors.txt"
    code, out = run(home, "sim", "import", str(file), "--tenant", TENANT, "--json",
                    "--errors", str(report))
    assert 2 == code
    doc = json.loads(out)
    assert [3, 4] == [e["line"] for e in doc["errors"]]
    assert report.read_text().startswith("line 3: k:")
    code, out = run(home, "sim", "list", "--json")
    assert 0 == sum(json.loads(out)["counts"].values())


def test_attach_check_exit_codes(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "one.csv"
    file.write_text(f"ICCID,IMSI,KI,OPC,STATE\n{iccid(1)},{imsi(1)},{K1.hex()},{OPC1.hex()},"
                    "active\n", encoding="utf-8")
    assert 0 == run(home, "sim", "import", str(file), "--tenant", TENANT, "--json")[0]
    code, out = run(home, "attach", "check", "--imsi", imsi(1).value, "--imei", imei(1).value,
                    "--plmn", "00101", "--json")
    assert (0, "ok") == (code, json.loads(out)["reason"])
    code, out = run(home, "attach", "check", "--imsi", imsi(1).value, "--imei", imei(1).value,
                    "--plmn", "20801", "--json")
    assert (3, "roaming-not-permitted") == (code, json.loads(out)["reason"])
    block = tmp_path / "block.csv"
    block.write_text(f"type,value,reason\nimei,{imei(1)},stolen\n", encoding="utf-8")
    assert 0 == run(home, "attach", "blocklist-import", str(block))[0]
    code, out = run(home, "attach", "check", "--imsi", imsi(1).value, "--imei", imei(1).value,
                    "--plmn", "00101", "--json")
    assert (3, "imei-blocklisted") == (code, json.loads(out)["reason"])


def test_progress_bar_on_a_terminal_run(home: Path, tmp_path: Path) -> None:
    """The real entry point: a bar on stderr, a summary on stdout, bad identifiers exit 2."""
    file = write_vendor_file(tmp_path / "batch.csv", 3000)
    env = {**os.environ, "SIMTRUST_HOME": str(home), "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-m", "simtrust", "sim", "import", str(file),
                           "--tenant", TENANT], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert 0 == done.returncode, done.stderr
    assert "importing batch.csv" in done.stderr
    assert "3000/3000" in done.stderr
    assert "imported 3,000 SIMs" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "simtrust", "attach", "check", "--imsi", "1",
                          "--imei", imei(1).value, "--plmn", "00101"], capture_output=True,
                         text=True, env=env, timeout=120, check=False)
    assert 2 == bad.returncode
    assert 1 == len(bad.stderr.strip().splitlines())
