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
from collections.abc import Callable
from datetime import datetime

from simtrust.crypto import Keyring
from simtrust.devices._transport import PskEntry
from simtrust.store import Database

__all__ = ["BOOTSTRAP", "DM", "CredentialStore"]

log = logging.getLogger(__name__)

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

    def last_imei(self, imsi: str) -> str | None:
        with self._lock:
            if imsi in self._reported:
                return self._reported[imsi][1]
        row = self._db.query_one("SELECT imei FROM dev_reported WHERE imsi = ?", (imsi,))
        return None if row is None or row[0] is None else str(row[0])

    def record_imei(self, imsi: str, endpoint: str, imei: str | None) -> None:
        """Hand over the IMEI ``imsi`` reported; written by the writer thread."""
        with self._lock:
            self._reported[imsi] = (endpoint, imei, self._clock().isoformat())
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_reported, daemon=True,
                                                name="devices-reported")
                self._writer.start()
        self._wake.set()

    def flush(self) -> None:
        """Write every IMEI handed over so far (durable when it returns)."""
        with self._flushing:
            with self._lock:
                batch = dict(self._reported)
            if not batch:
                return
            with self._db.transaction(durable=True):
                for imsi, (endpoint, imei, at) in batch.items():
                    self._db.execute("DELETE FROM dev_reported WHERE imsi = ?", (imsi,))
                    self._db.execute(
                        "INSERT INTO dev_reported (imsi, endpoint, imei, updated_at)"
                        " VALUES (?, ?, ?, ?)", (imsi, endpoint, imei, at))
            with self._lock:
                for imsi, row in batch.items():
                    if self._reported.get(imsi) is row:
                        del self._reported[imsi]

    def _write_reported(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for the next round; the store may be back by then
                log.exception("writing reported IMEIs failed; retried at the next registration")
