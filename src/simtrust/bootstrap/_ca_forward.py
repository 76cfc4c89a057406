"""Revocations reaching the enterprise CA of a CMP-delegated tenant CA.

A certificate simtrust obtained from an enterprise CA over CMP is revoked here
first (status, CRL, OCSP, broker); the enterprise CA must learn it too, or its own
CRL and OCSP keep vouching for the device. Each such revocation is queued in
``boot_delegate_revocations`` in the same transaction as the revocation itself
(an outbox: acknowledged means durable), then sent as a CMP ``rr`` (RFC 4210
§5.3.9; RFC 9483 §4.2, sent by simtrust as the RA on the device's behalf per
§5.3.2) by :meth:`RevocationForwarder.forward`:

- ``rp`` accepted, or the CA answers certRevoked (revoked before) → ``done``;
- the CA refuses (rejection, badRequest, a wrong certificate...) → ``refused``,
  kept with the CA's words for the operator, not retried;
- unreachable, TLS failure, a malformed or unauthenticated answer → stays
  ``pending`` with the error, retried after 30 s doubling up to 1 h.

Every outcome is audited (``pki.revoke-delegate``). The serving process runs a
background sender (:meth:`RevocationForwarder.start`, with the bootstrap
listener, so a restart resumes what was queued), woken when a revocation commits
and otherwise looking every 30 s; a one-shot process (the CLI) calls
:meth:`RevocationForwarder.forward` itself. A row is claimed before it is sent so
two processes do not both send it (a repeat would be answered certRevoked anyway).
docs/decisions/bootstrap-cmp-renewal-revocation.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from simtrust.audit import AuditLog
from simtrust.bootstrap._ca_model import REVOCATION_REASONS
from simtrust.bootstrap._cmp import CmpClient
from simtrust.bootstrap._worker import BackgroundWorker
from simtrust.errors import PermissionDenied, SimtrustError
from simtrust.store import Database

__all__ = ["QUEUE_FOR_SERIALS", "QUEUE_FOR_SIM", "RevocationForwarder"]

_log = logging.getLogger("simtrust.bootstrap.forward")

_QUEUE = ("INSERT INTO boot_delegate_revocations (serial, ca_id, reason, state, attempts,"
          " queued_at, next_at) SELECT c.serial, c.ca_id, ?, 'pending', 0, ?, ?"
          " FROM boot_certs c JOIN boot_cas a ON a.ca_id = c.ca_id"
          " WHERE a.delegate_kind = 'cmp' AND c.status = 'good' AND ")
#: Queue the rr of one good certificate (params: reason, now, now, serial); run
#: inside the revoking transaction, before the status changes.
QUEUE_FOR_SERIALS = _QUEUE + "c.serial = ? ON CONFLICT (serial) DO NOTHING"
#: Queue the rr of every good certificate of a SIM (params: reason, now, now, iccid).
QUEUE_FOR_SIM = _QUEUE + "c.iccid = ? ON CONFLICT (serial) DO NOTHING"

#: How long a claimed row is left alone by other processes while it is being sent.
_LEASE = timedelta(minutes=2)
_FIRST_RETRY = 30
_LONGEST_RETRY = 3600


class RevocationForwarder:
    """Sends queued revocations to the enterprise CAs (``CertificateAuthorities.forwarder``).

    ``client_for(ca_id)`` builds the CMP client of a delegated CA."""

    __slots__ = ("_audit", "_client_for", "_clock", "_db", "_worker")

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime],
                 client_for: Callable[[str], CmpClient]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._client_for = client_for
        self._worker = BackgroundWorker("cmp-rr", self.due_in)

    def __repr__(self) -> str:
        return f"RevocationForwarder({self._db!r})"

    # -- state ----------------------------------------------------------------------

    def state(self, serial: str) -> dict[str, Any] | None:
        """The forwarding state of ``serial`` (None if its CA is not CMP-delegated)."""
        row = self._db.query_one(
            "SELECT state, attempts, last_error, queued_at, next_at, done_at"
            " FROM boot_delegate_revocations WHERE serial = ?", (serial.lower(),))
        if row is None:
            return None
        keys = ("state", "attempts", "last_error", "queued_at", "next_at", "done_at")
        return dict(zip(keys, row, strict=True))

    def pending(self) -> int:
        row = self._db.query_one(
            "SELECT COUNT(*) FROM boot_delegate_revocations WHERE state = 'pending'")
        return int(row[0]) if row else 0

    # -- sending --------------------------------------------------------------------

    def forward(self, *, limit: int = 100) -> dict[str, int]:
        """Send the due queued revocations now; counts per outcome."""
        now = self._clock()
        rows = self._db.query(
            "SELECT r.serial, r.ca_id, r.reason, r.attempts, r.next_at, c.der, c.tenant_id,"
            " c.iccid FROM boot_delegate_revocations r JOIN boot_certs c"
            " ON c.serial = r.serial WHERE r.state = 'pending' AND r.next_at <= ?"
            " ORDER BY r.next_at LIMIT ?", (now.isoformat(), limit))
        counts = {"done": 0, "refused": 0, "retry": 0}
        for serial, ca_id, reason, attempts, next_at, der, tenant_id, iccid in rows:
            if not self._claim(str(serial), str(next_at), now):
                continue
            outcome = self._send(str(serial), str(ca_id), str(reason), int(attempts),
                                 bytes(der), str(tenant_id), str(iccid))
            counts[outcome] += 1
        return counts

    def _claim(self, serial: str, next_at: str, now: datetime) -> bool:
        return self._db.execute(
            "UPDATE boot_delegate_revocations SET next_at = ? WHERE serial = ?"
            " AND state = 'pending' AND next_at = ?",
            ((now + _LEASE).isoformat(), serial, next_at)) == 1

    def _send(self, serial: str, ca_id: str, reason: str, attempts: int, der: bytes,
              tenant_id: str, iccid: str) -> str:
        cert = x509.load_der_x509_certificate(der)
        flag = REVOCATION_REASONS.get(reason, x509.ReasonFlags.unspecified)
        try:
            answer = self._client_for(ca_id).revoke(cert.issuer, cert.serial_number, flag)
        except PermissionDenied as exc:
            return self._finish(serial, "refused", attempts + 1, str(exc), tenant_id, iccid)
        except SimtrustError as exc:
            delay = min(_FIRST_RETRY * 2 ** min(attempts, 12), _LONGEST_RETRY)
            at = self._clock() + timedelta(seconds=delay)
            self._db.execute(
                "UPDATE boot_delegate_revocations SET attempts = ?, last_error = ?, next_at = ?"
                " WHERE serial = ? AND state = 'pending'",
                (attempts + 1, str(exc)[:300], at.isoformat(), serial))
            _log.warning("revocation of %s not yet at the enterprise CA (%s); retry in %d s",
                         serial, exc, delay)
            return "retry"
        return self._finish(serial, "done", attempts + 1,
                            "revoked before" if answer == "already" else "", tenant_id, iccid)

    def _finish(self, serial: str, state: str, attempts: int, error: str, tenant_id: str,
                iccid: str) -> str:
        now = self._clock().isoformat()
        with self._db.transaction():
            self._db.execute(
                "UPDATE boot_delegate_revocations SET state = ?, attempts = ?, last_error = ?,"
                " done_at = ? WHERE serial = ? AND state = 'pending'",
                (state, attempts, error[:300] or None, now, serial))
            self._audit.append(actor="pki", action="pki.revoke-delegate",
                               subject=f"sim:{iccid}",
                               outcome="success" if state == "done" else "failure",
                               tenant_id=tenant_id, reason=error[:300],
                               details={"serial": serial})
        return "done" if state == "done" else "refused"

    # -- the background sender --------------------------------------------------------

    def due_in(self) -> float | None:
        """Send what is due; seconds until the next pending row is due (None if none)."""
        self.forward()
        row = self._db.query_one("SELECT MIN(next_at) FROM boot_delegate_revocations"
                                 " WHERE state = 'pending'")
        if row is None or row[0] is None:
            return None
        return (datetime.fromisoformat(str(row[0])) - self._clock()).total_seconds()

    def wake(self) -> None:
        """A revocation was queued: the background sender (if running) sends it now."""
        self._worker.wake()

    def start(self) -> None:
        """Run the background sender (idempotent): due rows are sent at once, on
        :meth:`wake`, and every 30 s at most (rows queued by other processes too)."""
        self._worker.start()

    def close(self) -> None:
        self._worker.close()
