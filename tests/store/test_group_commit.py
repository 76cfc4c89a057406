"""Group commit: callers that arrive while a write runs share the next write;
nobody returns before the write carrying its item; a failed write raises in
every caller it carried."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from simtrust.errors import StoreError
from simtrust.store import GroupCommit, SqliteDatabase


def _wait_until(condition: Callable[[], bool], bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    release = threading.Event()
    batches: list[list[int]] = []

    def write(items: Sequence[int]) -> None:
        if not batches:
            release.wait(30)
        batches.append(list(items))

    group: GroupCommit[int] = GroupCommit(write)
    returned: list[int] = []
    leader = threading.Thread(target=lambda: (group.submit(0), returned.append(0)))
    leader.start()
    _wait_until(lambda: group.batches == 0 and group._leading)
    followers = [threading.Thread(target=lambda n=n: (group.submit(n), returned.append(n)))
                 for n in range(1, 6)]
    for thread in followers:
        thread.start()
    _wait_until(lambda: len(group._queue) == 5)
    assert [] == returned  # nobody is answered before its write
    release.set()
    for thread in [leader, *followers]:
        thread.join(30)
    assert [[0], [1, 2, 3, 4, 5]] == [batches[0], sorted(batches[1])]
    assert (2, 6) == (group.batches, group.items)
    assert [0, 1, 2, 3, 4, 5] == sorted(returned)


def test_a_failed_write_raises_in_every_caller_it_carried() -> None:
    def write(items: Sequence[str]) -> None:
        raise StoreError("disk full")

    group: GroupCommit[str] = GroupCommit(write)
    with pytest.raises(StoreError, match="disk full"):
        group.submit("a")
    group2: GroupCommit[str] = GroupCommit(lambda items: None)
    group2.submit("b")
    assert 1 == group2.items


def test_durable_transaction_syncs_once_for_commits_made_meanwhile(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "s.db")
    syncs: list[int] = []
    original = db._sync

    def counting() -> None:
        syncs.append(db._commits)
        original()

    db._sync = counting  # type: ignore[method-assign]
    try:
        db.execute("CREATE TABLE t (x INTEGER)")
        with db.transaction(durable=True):
            db.execute("INSERT INTO t VALUES (1)")
        with db.transaction():
            with db.transaction(durable=True):  # a durable nested block: the outer syncs
                db.execute("INSERT INTO t VALUES (2)")
            assert db.in_transaction
        assert not db.in_transaction
        with db.transaction():
            db.execute("INSERT INTO t VALUES (3)")
        assert [1, 2] == syncs
        # A commit already covered by an earlier fsync is not synced again.
        db._commits += 1
        db._sync_through(2)
        assert [1, 2] == syncs
    finally:
        db.close()


def test_submit_many_writes_its_items_in_one_batch_and_returns_after_it() -> None:
    batches: list[list[int]] = []
    group: GroupCommit[int] = GroupCommit(lambda items: batches.append(list(items)))
    group.submit_many([])
    assert [] == batches  # nothing to write: no write
    group.submit_many([1, 2, 3])
    group.submit(4)
    assert [[1, 2, 3], [4]] == batches
    assert (2, 4) == (group.batches, group.items)
    failing: GroupCommit[int] = GroupCommit(lambda items: (_ for _ in ()).throw(
        StoreError("disk full")))
    with pytest.raises(StoreError, match="disk full"):
        failing.submit_many([5, 6])
