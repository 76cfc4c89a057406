"""Write-ahead log checkpoints of a SQLite store on a thread of their own.

SQLite checkpoints from inside ``COMMIT`` once the log passes
``wal_autocheckpoint`` pages (1000 by default): the committing caller copies
the log into the database and fsyncs both, which on a busy disk holds it for
tens to hundreds of milliseconds. A process whose writes run on an event loop
(a consortium validator) stops everything else for that long.
:class:`WalCheckpointer` moves the routine checkpoints to a daemon thread with
its own connection (``PRAGMA wal_checkpoint(PASSIVE)``, which never waits for
the writer; ``sqlite3`` releases the GIL while it copies and syncs) and raises
the in-commit threshold to a fallback that is reached only if the thread falls
behind. Durability is SQLite's own either way: a checkpoint only moves
committed frames, and a crash at any point recovers from the log.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["WalCheckpointer"]


class WalCheckpointer:
    """A daemon thread running passive checkpoints of ``path`` every ``interval_s``."""

    __slots__ = ("_stop", "_thread", "checkpoints", "errors", "interval_s", "path")

    def __init__(self, path: str, interval_s: float = 0.25) -> None:
        self.path = path
        self.interval_s = interval_s
        self.checkpoints = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=0)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    # Busy (another checkpoint runs) or a transient I/O error: the next
                    # round retries, and the in-commit fallback bounds the log meanwhile.
                    self.errors += 1
        finally:
            conn.close()
