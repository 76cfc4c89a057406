"""The demo runs every step on a fresh SQLite data directory and reports success."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simtrust.demo import run_demo, steps


@pytest.mark.slow
def test_demo_report_passes(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "demo")
    failed = [s for s in report["sections"] if not s["ok"]]
    assert [] == failed
    assert report["ok"] is True
    names = [s["step"] for s in report["sections"]]
    assert names == [name for _, name, _ in steps()]
    audit = report["sections"][-1]["result"]
    assert audit["intact"] is True
    assert {"altered", "removed"} <= {b["problem"] for b in audit["tamper_demo"]}


def test_demo_cli_json_on_foundation_steps(tmp_path: Path) -> None:
    """`simtrust demo --json` prints one JSON report (the full run is checked above)."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import json,sys; from simtrust.demo import run_demo; "
         "r = run_demo(); print(json.dumps({'ok': r['ok'], 'steps': [s['step'] for s in r['sections']]}))"],
        capture_output=True, text=True, timeout=600, check=False,
        cwd=tmp_path,
    )
    assert 0 == done.returncode, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "foundation" in report["steps"]
    assert "zz_audit" == report["steps"][-1]
