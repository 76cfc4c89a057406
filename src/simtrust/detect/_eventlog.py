"""The per-SIM event stream shared by the processes of one installation.

``simtrust serve`` answers the HTTP API in worker processes and runs the
protocol listeners and the fraud detectors in the master
(docs/decisions/corenet-api-workers.md). Events a worker sees — attach
decisions through the internal API, LwM2M device reports in the worker that
serves LwM2M — are appended to the store's ``detect_sim_events`` table
(:class:`SimEventLog`; concurrent appends of one process share one
transaction through :class:`~simtrust.store.GroupCommit`), and the serving
process follows the table (:class:`EventFollower`) and puts every event
through its own detectors exactly once. The store is the one service every
installation has and every process already writes, so the path needs no
broker (docs/decisions/fraud-shared-event-stream.md).

Rows hold the event's JSON form (:meth:`SimEvent.to_json`); the reader
validates each again with :meth:`SimEvent.from_json` and skips (counts) a
row that does not parse, so one bad row cannot stop the stream. On
PostgreSQL an identity value is taken at insert and rows commit in any order,
so the reader re-reads :data:`OVERLAP` sequence numbers behind its position
and skips those it applied (the inventory change feed does the same); the
follower prunes the table to the last :data:`KEEP` rows.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence

from simtrust.detect._events import SimEvent
from simtrust.errors import InvalidInput, SimtrustError
from simtrust.store import Database, GroupCommit

__all__ = ["EventFollower", "QueuedSimEventLog", "SimEventLog"]

_log = logging.getLogger("simtrust.detect")

#: Rows kept behind the head when the follower prunes.
KEEP = 100_000
#: Sequence numbers re-read behind the reader's position (PostgreSQL commit order).
OVERLAP = 256
_BATCH = 5_000


class SimEventLog:
    """Append and read ``detect_sim_events``."""

    __slots__ = ("_commit", "_db", "_origin")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._origin = os.getpid()
        self._commit: GroupCommit[SimEvent] = GroupCommit(self._write)

    def __repr__(self) -> str:
        return f"SimEventLog({self._commit!r})"

    def append(self, event: SimEvent) -> None:
        """Store ``event`` for the serving process; returns once it is committed.

        Inside a transaction of the calling thread (an attach decision that binds a
        device) the row joins it: a group's leader in another thread could not take
        the store while this thread holds it.
        """
        if self._db.in_transaction:
            self._write([event])
        else:
            self._commit.submit(event)

    def append_many(self, events: Sequence[SimEvent], chunk: int = 1000) -> None:
        """Store many events (an import) in transactions of ``chunk`` rows, in order."""
        for i in range(0, len(events), chunk):
            self._write(events[i:i + chunk])

    def _write(self, events: Sequence[SimEvent]) -> None:
        rows = [(self._origin, json.dumps(e.to_json(), separators=(",", ":")))
                for e in events]
        with self._db.transaction():
            self._db.executemany(
                "INSERT INTO detect_sim_events (origin, body) VALUES (?, ?)", rows)

    def head(self) -> int:
        """The highest sequence number stored (0: none)."""
        row = self._db.query_one("SELECT MAX(seq) FROM detect_sim_events")
        return int(row[0]) if row and row[0] is not None else 0

    def since(self, seq: int, limit: int = _BATCH) -> list[tuple[int, str]]:
        """Rows after ``seq - OVERLAP`` (oldest first): (sequence, JSON body)."""
        rows = self._db.query(
            "SELECT seq, body FROM detect_sim_events WHERE seq > ? ORDER BY seq LIMIT ?",
            (max(0, seq - OVERLAP), limit))
        return [(int(s), str(b)) for s, b in rows]

    def prune(self, keep: int = KEEP) -> int:
        """Delete all but the last ``keep`` rows; the number deleted."""
        return self._db.execute(
            "DELETE FROM detect_sim_events WHERE seq <= "
            "(SELECT MAX(seq) FROM detect_sim_events) - ?", (keep,))


class QueuedSimEventLog(SimEventLog):
    """A :class:`SimEventLog` whose appends return at once: a thread writes what is
    queued, one transaction per pass.

    For a RADIUS worker process (docs/decisions/aaa-workers.md): its answers must not
    wait on a store commit for an event only fraud detection reads, and one waiting
    commit per request cost more CPU than the request itself. Events still queued
    when the process dies are lost, as the serving process's in-memory detector
    state is on a crash; beyond ``limit`` queued events, new ones are counted in
    ``dropped`` instead of growing the queue.
    """

    __slots__ = ("_closed", "_cond", "_limit", "_queue", "_thread", "dropped", "written")

    def __init__(self, db: Database, *, limit: int = 100_000) -> None:
        super().__init__(db)
        self._limit = limit
        self._queue: list[SimEvent] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0
        self.written = 0

    def __repr__(self) -> str:
        return f"QueuedSimEventLog(written={self.written}, dropped={self.dropped})"

    def append(self, event: SimEvent) -> None:
        """Queue ``event`` for the writer thread (dropped and counted when full)."""
        with self._cond:
            if self._closed or len(self._queue) >= self._limit:
                self.dropped += 1
                return
            self._queue.append(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="simtrust-sim-events-out")
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            try:
                self.append_many(batch)
                self.written += len(batch)
            except SimtrustError as exc:
                self.dropped += len(batch)
                _log.warning("%d SIM events not forwarded: %s", len(batch), exc.detail)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)


class EventFollower:
    """Puts every event other processes append to a :class:`SimEventLog` through ``observe``.

    Starts at the log's head: events stored before the follower started are
    not applied (detector state is rebuilt from the next events,
    docs/decisions/fraud-live-path.md). :meth:`poll` is one pass (the thread
    calls it every ``interval`` seconds); it never raises into the caller.
    """

    __slots__ = (
        "_applied",
        "_interval",
        "_log",
        "_observe",
        "_seen",
        "_start",
        "_stop",
        "applied",
        "failures",
        "malformed",
    )

    def __init__(self, log: SimEventLog, observe: Callable[[SimEvent], object],
                 interval: float = 0.2) -> None:
        self._log = log
        self._observe = observe
        self._interval = interval
        self._seen = self._start = log.head()
        self._applied: set[int] = set()
        self._stop: threading.Event | None = None
        self.applied = 0
        self.malformed = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"EventFollower(seen={self._seen}, applied={self.applied})"

    def poll(self) -> int:
        """Apply the events stored since the last pass; how many were applied."""
        done = 0
        while True:
            try:
                rows = self._log.since(self._seen)
            except SimtrustError as exc:
                self.failures += 1
                _log.error("SIM event stream: %s", exc.detail)
                return done
            fresh = [(s, b) for s, b in rows if s > self._start and s not in self._applied]
            for seq, body in fresh:
                self._applied.add(seq)
                self._seen = max(self._seen, seq)
                try:
                    event = SimEvent.from_json(json.loads(body))
                except (ValueError, InvalidInput):
                    self.malformed += 1
                    continue
                try:
                    self._observe(event)
                except Exception:  # noqa: BLE001 - one event must not stop the stream
                    self.failures += 1
                    _log.exception("SIM event %d not applied", seq)
                    continue
                done += 1
                self.applied += 1
            if len(self._applied) > 4 * OVERLAP + _BATCH:
                floor = self._seen - OVERLAP
                self._applied = {q for q in self._applied if q > floor}
            if len(rows) < _BATCH or not fresh:
                return done

    def start(self) -> EventFollower:
        """Poll in a daemon thread until :meth:`stop`; prune the table now and then."""
        if self._stop is not None:
            return self
        stop = self._stop = threading.Event()

        def loop() -> None:
            passes = 0
            while not stop.wait(self._interval):
                self.poll()
                passes += 1
                if passes % 300 == 0:
                    try:
                        self._log.prune()
                    except SimtrustError as exc:
                        _log.error("SIM event stream prune: %s", exc.detail)

        threading.Thread(target=loop, name="simtrust-sim-events", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    close = stop
