"""Bad input on the command line: one line on stderr, exit 2, never a traceback.

Covers what a new user hit: a blocklist file that is not UTF-8, a SUCI with
non-ASCII digits (the API refuses them; the CLI now uses the same parser), and
a ledger message that does not decode (it exited 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.runtime import Runtime


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    Runtime.initialise(load_settings(env={}, home=path)).close()
    monkeypatch.setenv("SIMTRUST_HOME", str(path))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    return int(done.value.code or 0), err


@pytest.mark.parametrize("argv", [
    ["attach", "blocklist-import", "{bad_file}"],
    ["auc", "suci", "suci-0-00\u0661-01-0-0-0-0123456789"],
    ["auc", "suci", "suci-0-001-01-0-0-0-\u0660123456789"],
    ["ledger", "submit", "--message", "00"],
    ["ledger", "submit", "--message", "zz"],
    ["attach", "decide", "00101000000000\u0661", "352099000000014", "00101"],
    ["sim", "show", "8988200000000000\u00b9"],
])
def test_bad_input_exits_2_with_one_line(home: Path, tmp_path: Path, argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad_file = tmp_path / "blocklist.csv"
    bad_file.write_bytes(b"type,value\nimei,35209900000001\xff\n")
    code, err = _run([a.format(bad_file=bad_file) for a in argv], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert 2 == code, err
    assert 1 == len(lines), err
    assert "Traceback" not in err
