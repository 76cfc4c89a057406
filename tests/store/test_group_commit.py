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


def _counting_syncs(tmp_path: Path) -> tuple[SqliteDatabase, list[int]]:
    """A store whose fsyncs are recorded (the durable commit count at each)."""
    db = SqliteDatabase(tmp_path / "s.db")
    syncs: list[int] = []
    original = db._sync

    def counting() -> None:
        syncs.append(db._commits)
        original()

    db._sync = counting  # type: ignore[method-assign]
    return db, syncs


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
    db, syncs = _counting_syncs(tmp_path)
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


def test_with_settle_the_next_batch_commits_while_the_previous_one_syncs() -> None:
    """``settle`` runs in every caller after leadership is released: a second batch
    is written while the first batch's callers are still in their fsync, and no
    caller returns before its own settle finished."""
    written: list[list[int]] = []
    first_syncing = threading.Event()
    release_sync = threading.Event()
    settled: list[tuple[int, int]] = []
    returned: list[int] = []

    def write(items: Sequence[int]) -> int:
        written.append(list(items))
        return len(written)

    def settle(token: int) -> None:
        if token == 1:
            first_syncing.set()
            release_sync.wait(30)
        settled.append((token, len(written)))

    group: GroupCommit[int] = GroupCommit(write, settle)
    first = threading.Thread(target=lambda: (group.submit(1), returned.append(1)))
    first.start()
    assert first_syncing.wait(30)
    # The first caller is still syncing; a second caller leads and writes at once.
    second = threading.Thread(target=lambda: (group.submit(2), returned.append(2)))
    second.start()
    second.join(30)
    assert [[1], [2]] == written
    assert [2] == returned  # the first caller has not returned: its sync is not done
    release_sync.set()
    first.join(30)
    assert [2, 1] == returned
    assert [(2, 2), (1, 2)] == settled


def test_a_failed_settle_raises_in_the_caller() -> None:
    def settle(token: object) -> None:
        raise StoreError("fsync failed")

    group: GroupCommit[int] = GroupCommit(lambda items: 1, settle)
    with pytest.raises(StoreError, match="fsync failed"):
        group.submit(1)


def test_durable_commit_without_sync_waits_for_sync_through(tmp_path: Path) -> None:
    db, syncs = _counting_syncs(tmp_path)
    try:
        db.execute("CREATE TABLE t (x INTEGER)")
        with db.transaction(durable=True, sync=False):
            db.execute("INSERT INTO t VALUES (1)")
        ticket = db.durable_ticket()
        assert [] == syncs  # committed, not yet synced
        with db.transaction(durable=True, sync=False):
            db.execute("INSERT INTO t VALUES (2)")
        db.sync_through(ticket)
        assert [2] == syncs  # one fsync covers both commits made so far
        db.sync_through(db.durable_ticket())
        assert [2] == syncs
        # Nested blocks follow the outer one: a default outer block syncs.
        with db.transaction(durable=True), db.transaction(durable=True, sync=False):
            db.execute("INSERT INTO t VALUES (3)")
        assert [2, 3] == syncs
    finally:
        db.close()


def test_with_settle_a_batch_s_callers_return_only_after_its_settle() -> None:
    release_write = threading.Event()
    second_syncing = threading.Event()
    release_sync = threading.Event()
    written: list[list[str]] = []
    returned: list[str] = []

    def write(items: Sequence[str]) -> int:
        if not written:
            release_write.wait(30)
        written.append(sorted(items))
        return len(written)

    def settle(token: int) -> None:
        if token == 2:
            second_syncing.set()
            release_sync.wait(30)

    group: GroupCommit[str] = GroupCommit(write, settle)

    def caller(name: str) -> threading.Thread:
        thread = threading.Thread(target=lambda: (group.submit(name), returned.append(name)))
        thread.start()
        return thread

    first = caller("a")
    _wait_until(lambda: group._leading)
    others = [caller("b"), caller("c")]
    _wait_until(lambda: len(group._queue) == 2)
    release_write.set()
    assert second_syncing.wait(30)
    first.join(30)
    assert [["a"], ["b", "c"]] == written
    assert ["a"] == returned  # b and c wait for their batch's fsync, whoever leads it
    release_sync.set()
    for thread in others:
        thread.join(30)
    assert ["a", "b", "c"] == sorted(returned)
