"""The inventory change feed: how caches in other processes learn of writes.

Every write to attach-relevant state (SIMs, bindings, blocklist, policies,
groups, devices) appends ``(kind, item)`` to ``sub_changes`` in the same
transaction. A cache in another process polls the rows past the last sequence
it saw and drops those items; a cache that fell behind the pruned horizon
drops everything.
"""

from __future__ import annotations

from simtrust.store import Database

__all__ = ["ChangeFeed"]

#: Rows kept when the feed is pruned (a reader further behind reloads everything).
KEEP = 100_000
_PRUNE_EVERY = 1_000
#: Rows re-read behind the reader's position (see :meth:`ChangeFeed.since`).
OVERLAP = 256


class ChangeFeed:
    """Append and read ``sub_changes``; ``kind`` is ``sim``, ``binding``, ``blocklist``, ..."""

    __slots__ = ("_db", "_writes")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._writes = 0

    def record(self, kind: str, item: str) -> None:
        """Append one change; call inside the writing transaction."""
        self._db.execute("INSERT INTO sub_changes (kind, item) VALUES (?, ?)", (kind, item))
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._db.execute(
                "DELETE FROM sub_changes WHERE seq <= (SELECT MAX(seq) FROM sub_changes) - ?",
                (KEEP,),
            )

    def head(self) -> int:
        row = self._db.query_one("SELECT MAX(seq) FROM sub_changes")
        return int(row[0]) if row and row[0] is not None else 0

    def since(self, seq: int, limit: int = 10_000) -> tuple[list[tuple[int, str, str]], bool]:
        """Changes after ``seq`` (oldest first) and whether the reader must reload all.

        The last :data:`OVERLAP` rows before ``seq`` are read again: on
        PostgreSQL a lower sequence number may commit after a higher one, and
        dropping a cache entry twice is harmless.
        """
        rows = self._db.query(
            "SELECT seq, kind, item FROM sub_changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (max(0, seq - OVERLAP), limit),
        )
        changes = [(int(s), str(k), str(i)) for s, k, i in rows]
        reload_all = len(changes) == limit
        if seq > 0:
            first = self._db.query_one("SELECT MIN(seq) FROM sub_changes")
            # Rows the reader never saw were pruned away.
            reload_all = reload_all or (
                first is not None and first[0] is not None and int(first[0]) > seq + 1
            )
        return changes, reload_all
