"""Write-ahead log checkpoints on a thread (``SqliteDatabase.checkpoint_in_background``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from simtrust.store import SqliteDatabase


def test_background_checkpoints_keep_commits_and_bound_the_log(tmp_path: Path) -> None:
    path = tmp_path / "bg.db"
    db = SqliteDatabase(path)
    db.script("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    db.checkpoint_in_background(interval_s=0.02, fallback_pages=1_000_000)
    checkpointer = db._checkpointer
    assert checkpointer is not None
    for batch in range(200):
        with db.transaction():
            db.executemany("INSERT INTO t (k, v) VALUES (?, ?)",
                           [(batch * 50 + i, os.urandom(400)) for i in range(50)])
        if batch % 20 == 0:
            time.sleep(0.05)  # room for the thread between bursts, as a loop's idle ticks
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert checkpointer.checkpoints >= 3
    # The in-commit threshold is far away, so only the thread kept the log short:
    # about 4 MB of rows went through a log that stayed well below that.
    assert (path.parent / "bg.db-wal").stat().st_size < 3_000_000
    db.close()
    assert db._checkpointer is None
    again = SqliteDatabase(path)
    assert again.query_one("SELECT COUNT(*) FROM t") == (10_000,)
    again.close()


def test_memory_store_has_no_checkpointer() -> None:
    db = SqliteDatabase(":memory:")
    db.checkpoint_in_background()
    assert db._checkpointer is None
    db.close()
