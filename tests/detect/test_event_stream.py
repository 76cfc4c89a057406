"""The per-SIM event stream between processes: what one service forwards, another detects.

On SQLite and PostgreSQL: a forwarding :class:`DetectionService` raises nothing
itself and stores its events; a following one applies each exactly once (a
re-read overlap never applies an event twice), in order, from its start on;
rows that do not parse are counted and skipped (fuzzed); appends inside a
caller's transaction join it (and vanish with its rollback). The real
multi-process path is ``tests/detect/test_event_stream_serve.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import DetectionService, EventFollower, SimEvent, SimEventLog
from simtrust.detect._schema import MIGRATIONS
from simtrust.store import Database, SqliteDatabase, apply_migrations

IMSI = "001010000000001"


def _log(db: Database) -> SimEventLog:
    apply_migrations(db, MIGRATIONS)
    return SimEventLog(db)


def _wait(condition: Callable[[], bool], what: str, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_forwarded_events_reach_the_follower_once(db: Database) -> None:
    log = _log(db)
    log.append(SimEvent(1.0, IMSI, "location", plmn="26201"))  # before the follower: skipped
    worker, serving = DetectionService([]), DetectionService([])
    worker.forward_to(log)
    raised: list[str] = []
    follower = EventFollower(log, lambda e: raised.extend(a.kind for a in serving.observe_sim(e)))
    # Berlin, then a US network two minutes later: impossible travel, seen only by the follower
    assert [] == worker.observe_sim(SimEvent(1_000.0, IMSI, "location", plmn="26201"))
    assert [] == worker.observe_sim(SimEvent(1_120.0, IMSI, "location", plmn="31041"))
    assert 0 == worker.fraud.events
    assert 2 == worker.forwarded
    assert 2 == follower.poll()
    assert 0 == follower.poll()  # the overlap re-reads both rows and skips them
    assert 2 == serving.fraud.events
    assert 2 == follower.applied
    assert ["impossible-travel"] == raised


def test_follow_thread_applies_concurrent_appends(db: Database) -> None:
    log = _log(db)
    seen: list[SimEvent] = []
    lock = threading.Lock()

    def observe(event: SimEvent) -> None:
        with lock:
            seen.append(event)

    follower = EventFollower(log, observe, interval=0.01).start()
    try:
        def writer(w: int) -> None:
            for k in range(50):
                log.append(SimEvent(float(k), f"00101000000{w:04d}", "auth"))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _wait(lambda: len(seen) >= 200, "200 events")
    finally:
        follower.stop()
    assert 200 == len(seen)
    for w in range(4):  # each writer's events in its own order
        mine = [e.at for e in seen if e.imsi == f"00101000000{w:04d}"]
        assert mine == sorted(mine)
        assert 50 == len(mine)


def test_append_joins_the_callers_transaction(db: Database) -> None:
    log = _log(db)
    applied: list[SimEvent] = []
    follower = EventFollower(log, applied.append)
    try:
        with db.transaction():
            log.append(SimEvent(1.0, IMSI, "auth"))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with db.transaction():
        log.append(SimEvent(2.0, IMSI, "auth"))
    assert 1 == follower.poll()
    assert [2.0] == [e.at for e in applied]


def test_malformed_rows_are_skipped(db: Database) -> None:
    log = _log(db)
    applied: list[SimEvent] = []
    follower = EventFollower(log, applied.append)
    for body in ("not json", "[]", json.dumps({"at": 1, "imsi": IMSI, "kind": "teleport"})):
        db.execute("INSERT INTO detect_sim_events (origin, body) VALUES (?, ?)", (0, body))
    log.append(SimEvent(3.0, IMSI, "auth"))
    assert 1 == follower.poll()
    assert 3 == follower.malformed
    assert [3.0] == [e.at for e in applied]


def test_prune_keeps_the_newest_rows(db: Database) -> None:
    log = _log(db)
    for k in range(10):
        log.append(SimEvent(float(k), IMSI, "auth"))
    assert 7 == log.prune(keep=3)
    assert [8, 9, 10] == [s for s, _ in log.since(0)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["at", "imsi", "kind", "plmn", "imei", "lat", "lon", "octets",
                         "session", "x"]), kids, max_size=6), max_leaves=12).map(json.dumps)))
def test_any_row_body_never_stops_the_stream(body: str) -> None:
    db = SqliteDatabase(":memory:")
    try:
        log = _log(db)
        applied: list[SimEvent] = []
        follower = EventFollower(log, applied.append)
        db.execute("INSERT INTO detect_sim_events (origin, body) VALUES (?, ?)", (0, body))
        log.append(SimEvent(5.0, IMSI, "auth"))
        follower.poll()
        assert applied[-1].at == 5.0
        assert follower.malformed + len(applied) == 2
    finally:
        db.close()


def test_a_burst_of_events_raises_what_one_by_one_raises(db: Database) -> None:
    events = [SimEvent(1_000.0, IMSI, "location", plmn="26201"),
              SimEvent(1_060.0, "001010000000002", "location", plmn="26201"),
              SimEvent(1_120.0, IMSI, "location", plmn="31041")]
    one, burst = DetectionService([]), DetectionService([])
    assert [a.kind for e in events for a in one.observe_sim(e)] == \
        [a.kind for a in burst.observe_sim_burst(events)] == ["impossible-travel"]
    assert 3 == burst.fraud.events
    log = _log(db)
    worker = DetectionService([])
    worker.forward_to(log)
    assert [] == worker.observe_sim_burst(events)  # forwarded as observe_sim forwards each
    assert (0, 3) == (worker.fraud.events, worker.forwarded)
    assert 3 == len(log.since(0))
