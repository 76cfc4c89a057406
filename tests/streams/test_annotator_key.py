"""The streams annotator key is made once per store, even by processes starting together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.streams._evidence import Evidence


class _LateReader:
    """A store whose first annotator-key read comes before another process's insert."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.hidden = 0

    def query_one(self, sql: str, params: Any = ()) -> Any:
        if "stream_keys" in sql and not self.hidden:
            self.hidden += 1
            return None
        return self._db.query_one(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_second_process_uses_the_key_stored_first(tmp_path: Path) -> None:
    rt = Runtime.initialise(load_settings(env={}, home=tmp_path / "home"))
    try:
        first = rt.streams.evidence.annotator.public_key
        late = _LateReader(rt.db)
        second = Evidence(late, rt.keyring, rt.audit, rt.clock)  # type: ignore[arg-type]
        assert late.hidden == 1  # it did not see the key before inserting
        assert second.annotator.public_key == first
        assert [1] == [r[0] for r in rt.db.query("SELECT COUNT(*) FROM stream_keys")]
    finally:
        rt.close()
