"""The benchmark contract's shared disk limit (``fsync_rate``)."""

from __future__ import annotations

from pathlib import Path

from simtrust.benchmark import fsync_rate


def test_fsync_rate_counts_appends_and_removes_its_probe(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert fsync_rate(tmp_path, 0.05) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
