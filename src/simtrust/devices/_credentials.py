"""Device PSKs (RFC 4279 identities and keys) sealed at rest: the device-management PSKs the
bootstrap server provisions (Security object, Core §E.1 resources 3 and 5) and per-device
bootstrap PSKs for SIMs that cannot run GBA. Keys never leave this module except into a
DTLS handshake or a bootstrap write to the device itself.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from simtrust.crypto import Keyring
from simtrust.devices._transport import PskEntry
from simtrust.store import Database

__all__ = ["BOOTSTRAP", "DM", "CredentialStore", "ImeiChanged"]

log = logging.getLogger(__name__)

#: Called with the IMEI stored before, when a registration reported another one.
ImeiChanged = Callable[[str], None]
#: How long the writer lets hand-overs gather before it commits them together. Each commit
#: holds the store's lock (the registration path's SIM lookup waits on it), hands the
#: interpreter lock back and forth with the DTLS/CoAP loop and ends in an fsync: at 5 ms a
#: burst of first registrations made ~170 commits per 2,000, at 50 ms ~15-40
#: (docs/decisions/devices-registrations.md).
GROUP_COMMIT_S = 0.05
_IN_CHUNK = 500

DM = "dm"
BOOTSTRAP = "bootstrap"


class CredentialStore:
    """PSK identities → sealed keys, with an in-memory cache of opened entries (the DTLS
    handshake looks one up per registration)."""

    def __init__(self, db: Database, keyring: Keyring, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._cache: dict[str, PskEntry | None] = {}
        self._lock = threading.Lock()
        self._reported: dict[str, tuple[str, str | None, str]] = {}
        self._unchecked: dict[str, tuple[str | None, ImeiChanged]] = {}
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"CredentialStore({len(self._cache)} cached)"

    @staticmethod
    def _aad(identity: str, purpose: str) -> bytes:
        return f"devices.psk|{purpose}|{identity}".encode()

    def issue(self, purpose: str, imsi: str, tenant_id: str, *,
              key: bytes | None = None) -> tuple[str, bytes]:
        """A fresh identity and 128-bit key for ``imsi``; an earlier one for the same
        purpose is replaced (durable before the key is handed out)."""
        identity = f"{purpose}-" + base64.b32encode(os.urandom(10)).decode("ascii").lower()
        secret = key if key is not None else os.urandom(16)
        sealed = self._keyring.seal(secret, self._aad(identity, purpose))
        old = self._db.query("SELECT identity FROM dev_credentials WHERE imsi = ? AND purpose = ?",
                             (imsi, purpose))
        with self._db.transaction(durable=True):
            self._db.execute("DELETE FROM dev_credentials WHERE imsi = ? AND purpose = ?",
                             (imsi, purpose))
            self._db.execute(
                "INSERT INTO dev_credentials (identity, purpose, imsi, tenant_id, key_sealed,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (identity, purpose, imsi, tenant_id, sealed, self._clock().isoformat()))
        with self._lock:
            for row in old:
                self._cache.pop(str(row[0]), None)
            self._cache[identity] = PskEntry(secret, imsi, tenant_id, purpose)
        return identity, secret

    def resolve(self, identity: str, purpose: str) -> PskEntry | None:
        with self._lock:
            if identity in self._cache:
                found = self._cache[identity]
                return found if found is None or found.purpose == purpose else None
        row = self._db.query_one(
            "SELECT purpose, imsi, tenant_id, key_sealed FROM dev_credentials WHERE identity = ?",
            (identity,))
        entry = None
        if row is not None and str(row[0]) == purpose:
            key = self._keyring.open(bytes(row[3]), self._aad(identity, purpose))
            entry = PskEntry(key, str(row[1]), str(row[2]), purpose)
        with self._lock:
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            if entry is not None:
                self._cache[identity] = entry
        return entry

    def revoke(self, imsi: str) -> int:
        """Forget every PSK of a SIM (suspended, terminated or removed)."""
        rows = self._db.query("SELECT identity FROM dev_credentials WHERE imsi = ?", (imsi,))
        count = self._db.execute("DELETE FROM dev_credentials WHERE imsi = ?", (imsi,))
        with self._lock:
            for row in rows:
                self._cache.pop(str(row[0]), None)
        return count

    def identities(self, imsi: str) -> list[tuple[str, str]]:
        """(identity, purpose) pairs of a SIM, no keys."""
        return [(str(r[0]), str(r[1])) for r in self._db.query(
            "SELECT identity, purpose FROM dev_credentials WHERE imsi = ? ORDER BY purpose",
            (imsi,))]

    # -- what devices reported ---------------------------------------------------------------

    # The IMEI a SIM last reported at registration is written off the registering thread:
    # the DTLS/CoAP loop hands it over and goes on, a writer thread commits everything handed
    # over meanwhile in one durable transaction (group commit). Nothing acknowledged depends
    # on it: it only decides whether the next registration raises "imei-changed". A change
    # that is lost with the process is seen again -- and alerted again -- at the device's next
    # registration, because the stored value is still the old one (at least once, never lost).
    # When the loop does not know the SIM's previous IMEI (nothing pending, no registration in
    # memory), the comparison with the stored one is made by the writer too, for the whole
    # batch in one query, instead of a query per registration on the loop
    # (docs/decisions/devices-registrations.md).

    def last_imei(self, imsi: str) -> str | None:
        pending, imei = self.pending_imei(imsi)
        if pending:
            return imei
        row = self._db.query_one("SELECT imei FROM dev_reported WHERE imsi = ?", (imsi,))
        return None if row is None or row[0] is None else str(row[0])

    def pending_imei(self, imsi: str) -> tuple[bool, str | None]:
        """(True, IMEI) when an IMEI of ``imsi`` is handed over and not written yet; no
        store access."""
        with self._lock:
            row = self._reported.get(imsi)
        return (False, None) if row is None else (True, row[1])

    def record_imei(self, imsi: str, endpoint: str, imei: str | None,
                    changed: ImeiChanged | None = None) -> None:
        """Hand over the IMEI ``imsi`` reported; written by the writer thread. With
        ``changed``, the writer first compares it with the stored IMEI and calls
        ``changed(previous)`` (on the writer thread, once the batch is durable) when a
        different one was stored."""
        with self._lock:
            if changed is not None and imsi not in self._reported:
                self._unchecked[imsi] = (imei, changed)
            self._reported[imsi] = (endpoint, imei, self._clock().isoformat())
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_reported, daemon=True,
                                                name="devices-reported")
                self._writer.start()
        if not self._wake.is_set():  # set wakes the waiting writer: once per window
            self._wake.set()

    def flush(self) -> None:
        """Write every IMEI handed over so far (durable when it returns) and report the
        changes found against the stored IMEIs."""
        with self._flushing:
            with self._lock:
                batch = dict(self._reported)
                checks = {imsi: self._unchecked.pop(imsi) for imsi in list(self._unchecked)
                          if imsi in batch}
            if not batch:
                return
            rows = [(imsi, endpoint, imei, at) for imsi, (endpoint, imei, at) in batch.items()]
            try:
                with self._db.transaction(durable=True):
                    stored = self._stored_imeis(list(checks))
                    # A device seen again after a restart with the IMEI already stored
                    # needs no write.
                    rows = [r for r in rows if r[0] not in checks or stored.get(r[0]) != r[2]]
                    self._db.executemany(
                        "INSERT INTO dev_reported (imsi, endpoint, imei, updated_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (imsi) DO UPDATE SET"
                        " endpoint = excluded.endpoint, imei = excluded.imei,"
                        " updated_at = excluded.updated_at", rows)
            except BaseException:
                with self._lock:  # compared at the next attempt, as if never taken
                    for imsi, check in checks.items():
                        self._unchecked.setdefault(imsi, check)
                raise
            with self._lock:
                for imsi, row in batch.items():
                    if self._reported.get(imsi) is row:
                        del self._reported[imsi]
        for imsi, (imei, changed) in checks.items():
            before = stored.get(imsi)
            if before is not None and before != imei:
                try:
                    changed(before)
                except Exception:  # one listener's failure must not stop the others
                    log.exception("an IMEI change could not be reported")

    def _stored_imeis(self, imsis: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for at in range(0, len(imsis), _IN_CHUNK):
            chunk = imsis[at:at + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in self._db.query(
                    f"SELECT imsi, imei FROM dev_reported WHERE imsi IN ({marks})", chunk):
                if row[1] is not None:
                    found[str(row[0])] = str(row[1])
        return found

    def _write_reported(self) -> None:
        while True:
            self._wake.wait()
            # Group commit: what registrations hand over within the window shares one
            # transaction and one fsync.
            time.sleep(GROUP_COMMIT_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for the next round; the store may be back by then
                log.exception("writing reported IMEIs failed; retried at the next registration")
