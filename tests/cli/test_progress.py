"""Progress bars keep their counts whole on an 80-column terminal and know their totals."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from rich.console import Console

from simtrust.cli._common import progress_bar
from simtrust.config import load_settings
from simtrust.runtime import Runtime


def test_counts_survive_80_columns() -> None:
    target = Console(file=StringIO(), width=80, force_terminal=True, color_system=None)
    name = "importing personalisation-batch-0042-with-a-very-long-name.csv"
    with progress_bar(name, 1_000_000, unit="rows", target=target) as advance:
        advance(completed=999_999)
    out = target.file.getvalue()  # type: ignore[attr-defined]
    last = [line for line in out.splitlines() if "/" in line][-1]
    assert "999999/1000000" in last
    assert "rows/s" in last
    assert "?" not in last


def test_key_rotation_knows_its_total(tmp_path: Path) -> None:
    rt = Runtime.initialise(load_settings(env={}, home=tmp_path / "home"))
    try:
        expected = rt.sealed_count()
        seen: list[int] = []
        _kid, count = rt.rotate_master_key(progress=seen.append)
        assert expected == count
        assert (seen[-1] if seen else 0) == expected
    finally:
        rt.close()
