"""EAP-AKA / EAP-AKA' pseudonyms and fast re-authentication identities in the store, so
identities handed to peers (RFC 4187 §4.1.1.7, §5; RFC 5448 §3) outlive a restart.

A pseudonym maps to the IMSI; a re-authentication identity carries the keys of the
full authentication it came from (K_encr, K_aut and MK or K_re, sealed by the
keyring with the identity as associated data) and the next counter. Writes go through
one background writer in batches (one transaction per batch), so authentications do
not wait for them: an identity lost to a crash in the last instant is simply unknown
later, and RFC 4187 §4.1.1.8 has the server ask the peer for its permanent identity.
The writer is woken by the first write queued after a batch and then waits
``linger`` seconds for more, so that under load a batch carries the identities of many
authentications (one transaction, one ``executemany`` per run of puts or deletes)
instead of one wake-up and one transaction each; it seals the keys itself, off the
thread that answers (docs/decisions/aaa-eap-cpu.md).
A re-authentication identity is used once: taking it deletes it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.crypto import Keyring
from simtrust.errors import SimtrustError
from simtrust.store import Database

__all__ = ["EapIdentityStore", "StoredReauth"]

_log = logging.getLogger("simtrust.aaa.eap")

_PUT = ("INSERT INTO aaa_eap_identities (identity, kind, imsi, method, counter, keys_sealed,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (identity) DO NOTHING")
_DELETE = "DELETE FROM aaa_eap_identities WHERE identity = ?"


class StoredReauth:
    """A re-authentication identity's context, as read back from the store."""

    __slots__ = ("counter", "imsi", "k_aut", "k_encr", "method", "secret")

    def __init__(self, imsi: str, method: int, k_encr: bytes, k_aut: bytes, secret: bytes,
                 counter: int) -> None:
        self.imsi, self.method, self.counter = imsi, method, counter
        self.k_encr, self.k_aut, self.secret = k_encr, k_aut, secret

    def __repr__(self) -> str:
        return f"StoredReauth(imsi={self.imsi!r}, method={self.method}, counter={self.counter})"


def _aad(identity: str) -> bytes:
    return b"aaa-eap-identity|" + identity.encode()


class EapIdentityStore:
    """Batched writer and direct reader of ``aaa_eap_identities``."""

    def __init__(self, db: Database, keyring: Keyring, clock: Callable[[], datetime], *,
                 max_batch: int = 1024, linger: float = 0.02) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._max_batch = max_batch
        self._linger = linger
        self._queue: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._idle = threading.Event()
        self._idle.set()
        self.written = 0
        self.batches = 0

    def __repr__(self) -> str:
        return (f"EapIdentityStore(written={self.written}, batches={self.batches}, "
                f"queued={len(self._queue)})")

    # -- writes (queued) -----------------------------------------------------------

    def put_pseudonym(self, pseudonym: bytes, imsi: str, method: int) -> None:
        self._enqueue("put", (pseudonym.decode("ascii"), "pseudonym", imsi, method, 0, None,
                              self._clock().isoformat()))

    def put_reauth(self, identity: bytes, imsi: str, method: int, k_encr: bytes, k_aut: bytes,
                   secret: bytes, counter: int) -> None:
        """Queue a re-authentication identity; the writer seals its keys before storing."""
        text = identity.decode("ascii", "replace")
        self._enqueue("seal", (text, "reauth", imsi, method, counter,
                               bytes((len(k_encr), len(k_aut))) + k_encr + k_aut + secret,
                               self._clock().isoformat()))

    def delete(self, identity: bytes) -> None:
        self._enqueue("delete", (identity.decode("ascii", "replace"),))

    def _enqueue(self, op: str, row: tuple[Any, ...]) -> None:
        with self._cond:
            first = not self._queue
            self._queue.append((op, row))
            if first:
                # The writer waits only for an empty queue: one wake-up per batch.
                self._idle.clear()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="simtrust-eap-identities")
                    self._thread.start()
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._idle.set()
                    self._cond.wait()
                if not self._queue:
                    self._idle.set()
                    return
                if not self._stop and self._linger > 0:
                    # More authentications finish meanwhile; their identities join.
                    self._cond.wait(self._linger)
                batch = [self._queue.popleft()
                         for _ in range(min(len(self._queue), self._max_batch))]
            try:
                self._write(batch)
                self.written += len(batch)
                self.batches += 1
            except SimtrustError as exc:
                # Lost identities only cost their peers a full authentication.
                _log.error("EAP identities not stored (%d): %s", len(batch), exc.detail)

    def _write(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        """One transaction; each run of puts (sealed here) or of deletes in one
        ``executemany``, in the order they were queued."""
        runs: list[tuple[str, list[tuple[Any, ...]]]] = []
        for queued, row in batch:
            op, stored = queued, row
            if queued == "seal":
                op = "put"
                stored = (*row[:5], self._keyring.seal(row[5], _aad(row[0])), row[6])
            if runs and runs[-1][0] == op:
                runs[-1][1].append(stored)
            else:
                runs.append((op, [stored]))
        with self._db.transaction():
            for op, rows in runs:
                self._db.executemany(_PUT if op == "put" else _DELETE, rows)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued is written (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- reads ---------------------------------------------------------------------

    def pseudonym(self, pseudonym: bytes) -> str | None:
        row = self._db.query_one(
            "SELECT imsi FROM aaa_eap_identities WHERE identity = ? AND kind = 'pseudonym'",
            (pseudonym.decode("ascii", "replace"),))
        return None if row is None else str(row[0])

    def take_reauth(self, identity: bytes) -> StoredReauth | None:
        """The context of a re-authentication identity, deleted as it is taken."""
        text = identity.decode("ascii", "replace")
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT imsi, method, counter, keys_sealed FROM aaa_eap_identities"
                " WHERE identity = ? AND kind = 'reauth'", (text,))
            if row is None:
                return None
            # Whoever deletes the row takes it: two processes reading it at once (two
            # RADIUS workers on PostgreSQL) cannot both use it (RFC 4187 §5.1: once).
            if self._db.execute("DELETE FROM aaa_eap_identities WHERE identity = ?",
                                (text,)) != 1:
                return None
        keys = self._keyring.open(bytes(row[3]), _aad(text))
        encr_end = 2 + keys[0]
        aut_end = encr_end + keys[1]
        return StoredReauth(str(row[0]), int(row[1]), keys[2:encr_end], keys[encr_end:aut_end],
                            keys[aut_end:], int(row[2]))
