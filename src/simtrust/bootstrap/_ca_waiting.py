"""Enrolments a CMP-delegated enterprise CA answers ``waiting``: EST 202, polled on.

RFC 7030 §4.2.3: when the certificate is not ready, the EST server answers
``202 Accepted`` with ``Retry-After``, and the client sends the same request
again later. simtrust keeps the CMP transaction (RFC 9483 §4.4: its
transactionID, the server's last senderNonce for recipNonce, the certReqId,
the checkAfter) in ``boot_cmp_waiting``, keyed by the CA and the CSR's exact
bytes, and a background poller in the serving process sends ``pollReq`` as the
CA asks; a restart resumes from the table. When the CA delivers, the certificate
is checked, confirmed (certConf/pkiConf) and recorded in the same transaction
that marks the row ``issued``; the device's next retry gets it (200). A refusal
or a wait past :data:`MAX_WAIT` marks the row ``failed``: the next retry gets
that problem once and the row is dropped, so a later retry starts afresh.
Transport failures while polling are retried with back-off until the deadline.
docs/decisions/bootstrap-cmp-renewal-revocation.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.bootstrap._ca_model import CaRecord, DeviceClaims
from simtrust.bootstrap._cmp import CmpClient, Waiting
from simtrust.bootstrap._worker import BackgroundWorker
from simtrust.errors import SimtrustError, StoreError
from simtrust.store import Database

__all__ = ["MAX_WAIT", "DelegatedEnrolments", "EnrolmentPending"]

_log = logging.getLogger("simtrust.bootstrap.waiting")

#: Longest an enrolment may stay ``waiting`` at the enterprise CA.
MAX_WAIT = timedelta(days=1)
_LEASE = timedelta(minutes=2)
_TRANSIENT = ("delegate-unreachable", "delegate-tls")

#: record(ca, cert, device, actor, key_type) inside the caller's transaction; then
#: notify("issued", iccid) once it committed.
Record = Callable[[CaRecord, x509.Certificate, DeviceClaims, str, str], None]


class EnrolmentPending(SimtrustError):
    """The enterprise CA has the request but no certificate yet (EST 202 + Retry-After)."""

    code = "enrolment-pending"
    status = 202
    title = "Enrolment pending"


class DelegatedEnrolments:
    """Enrolments at CMP-delegated CAs, immediate or waiting (``CertificateAuthorities``)."""

    __slots__ = ("_ca_for", "_client_for", "_clock", "_db", "_notify", "_record", "_worker")

    def __init__(self, db: Database, clock: Callable[[], datetime], *,
                 ca_for: Callable[[str], CaRecord], client_for: Callable[[CaRecord], CmpClient],
                 record: Record, notify: Callable[[str, str], None]) -> None:
        self._db = db
        self._clock = clock
        self._ca_for = ca_for
        self._client_for = client_for
        self._record = record
        self._notify = notify
        self._worker = BackgroundWorker("cmp-poll", self.due_in)

    def __repr__(self) -> str:
        return f"DelegatedEnrolments({self._db!r})"

    @staticmethod
    def request_id(ca: CaRecord, csr_der: bytes) -> str:
        return hashlib.sha256(ca.ca_id.encode() + b"\0" + csr_der).hexdigest()

    def enrol(self, ca: CaRecord, csr: x509.CertificateSigningRequest, device: DeviceClaims,
              *, actor: str, kind: str, renewing: x509.Certificate | None,
              ) -> tuple[x509.Certificate, bool]:
        """(certificate, fresh): fresh is True when the caller must record it; a
        certificate a poll already recorded comes back with False. Raises
        :class:`EnrolmentPending` while the CA is still working on it."""
        csr_der = csr.public_bytes(serialization.Encoding.DER)
        rid = self.request_id(ca, csr_der)
        row = self._db.query_one(
            "SELECT w.state, w.error, w.next_at, c.der FROM boot_cmp_waiting w"
            " LEFT JOIN boot_certs c ON c.serial = w.serial WHERE w.request_id = ?", (rid,))
        if row is not None:
            return self._known(rid, str(row[0]), row[1], str(row[2]), row[3]), False
        result = self._client_for(ca).start(csr, renewing)
        if isinstance(result, x509.Certificate):
            _check_renewal(result, renewing)
            return result, True
        now = self._clock()
        at = now + timedelta(seconds=result.check_after)
        renewing_der = (None if renewing is None
                        else renewing.public_bytes(serialization.Encoding.DER))
        with self._db.transaction(durable=True):  # the 202 is an acknowledgement
            self._db.execute(
                "INSERT INTO boot_cmp_waiting (request_id, ca_id, tenant_id, iccid, imsi, imei,"
                " did, actor, key_type, csr, renewing, tid, server_nonce, cert_req_id, rep,"
                " state, attempts, next_at, deadline, created_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                (rid, ca.ca_id, device.tenant_id, device.iccid, device.imsi, device.imei,
                 device.did, actor, kind, csr_der, renewing_der, result.tid,
                 result.server_nonce, result.cert_req_id, result.rep, at.isoformat(),
                 (now + MAX_WAIT).isoformat(), now.isoformat()))
        self._worker.wake()
        raise _pending(result.check_after)

    def _known(self, rid: str, state: str, error: object, next_at: str,
               der: object) -> x509.Certificate:
        if state == "issued" and der is not None:
            return x509.load_der_x509_certificate(bytes(der))  # type: ignore[call-overload]
        if state == "failed":
            self._db.execute("DELETE FROM boot_cmp_waiting WHERE request_id = ?"
                             " AND state = 'failed'", (rid,))
            raise StoreError(str(error), reason="delegate-failed")
        due = (datetime.fromisoformat(next_at) - self._clock()).total_seconds()
        raise _pending(max(1, math.ceil(due)))

    def pending(self) -> int:
        row = self._db.query_one("SELECT COUNT(*) FROM boot_cmp_waiting WHERE state = 'pending'")
        return int(row[0]) if row else 0

    def state(self, rid: str) -> str | None:
        row = self._db.query_one("SELECT state FROM boot_cmp_waiting WHERE request_id = ?",
                                 (rid,))
        return None if row is None else str(row[0])

    # -- polling ------------------------------------------------------------------------

    def poll(self, *, limit: int = 100) -> dict[str, int]:
        """Send the due pollReqs now; counts per outcome."""
        now = self._clock()
        rows = self._db.query(
            "SELECT request_id, ca_id, tenant_id, iccid, imsi, imei, did, actor, key_type, csr,"
            " renewing, tid, server_nonce, cert_req_id, rep, attempts, next_at, deadline"
            " FROM boot_cmp_waiting WHERE state = 'pending' AND next_at <= ?"
            " ORDER BY next_at LIMIT ?", (now.isoformat(), limit))
        counts = {"issued": 0, "waiting": 0, "failed": 0}
        # Finished rows answer the device's retries for a while, then go.
        self._db.execute("DELETE FROM boot_cmp_waiting WHERE state <> 'pending'"
                         " AND created_at < ?", ((now - 2 * MAX_WAIT).isoformat(),))
        for row in rows:
            rid, next_at = str(row[0]), str(row[16])
            if self._db.execute(
                    "UPDATE boot_cmp_waiting SET next_at = ? WHERE request_id = ?"
                    " AND state = 'pending' AND next_at = ?",
                    ((now + _LEASE).isoformat(), rid, next_at)) != 1:
                continue
            counts[self._poll_one(row)] += 1
        return counts

    def _poll_one(self, row: Any) -> str:
        rid, ca_id = str(row[0]), str(row[1])
        device = DeviceClaims(str(row[2]), str(row[3]), str(row[4]),
                              None if row[5] is None else str(row[5]),
                              None if row[6] is None else str(row[6]))
        csr = x509.load_der_x509_csr(bytes(row[9]))
        renewing = (None if row[10] is None
                    else x509.load_der_x509_certificate(bytes(row[10])))
        waiting = Waiting(bytes(row[11]), bytes(row[12]),
                          int(row[13]), 0, str(row[14]))
        attempts, deadline = int(row[15]), datetime.fromisoformat(str(row[17]))
        now = self._clock()
        try:
            ca = self._ca_for(ca_id)
            result = self._client_for(ca).resume(csr, waiting)
        except StoreError as exc:
            if exc.context.get("reason") in _TRANSIENT and now < deadline:
                delay = min(30 * 2 ** min(attempts, 7), 3600)
                self._db.execute(
                    "UPDATE boot_cmp_waiting SET attempts = ?, error = ?, next_at = ?"
                    " WHERE request_id = ?",
                    (attempts + 1, str(exc)[:300], (now + timedelta(seconds=delay)).isoformat(),
                     rid))
                return "waiting"
            return self._fail(rid, str(exc))
        except SimtrustError as exc:
            return self._fail(rid, str(exc))
        if isinstance(result, Waiting):
            if now + timedelta(seconds=result.check_after) > deadline:
                return self._fail(rid, f"enterprise CMP server still waiting after "
                                       f"{MAX_WAIT.days} day(s)")
            self._db.execute(
                "UPDATE boot_cmp_waiting SET server_nonce = ?, cert_req_id = ?, next_at = ?,"
                " attempts = 0, error = NULL WHERE request_id = ?",
                (result.server_nonce, result.cert_req_id,
                 (now + timedelta(seconds=result.check_after)).isoformat(), rid))
            return "waiting"
        try:
            _check_renewal(result, renewing)
        except StoreError as exc:
            return self._fail(rid, str(exc))
        with self._db.transaction():
            self._record(ca, result, device, str(row[7]), str(row[8]))
            self._db.execute(
                "UPDATE boot_cmp_waiting SET state = 'issued', serial = ?, error = NULL"
                " WHERE request_id = ?", (format(result.serial_number, "x"), rid))
        self._notify("issued", device.iccid)
        return "issued"

    def _fail(self, rid: str, error: str) -> str:
        _log.warning("delegated enrolment %s failed: %s", rid[:16], error)
        self._db.execute("UPDATE boot_cmp_waiting SET state = 'failed', error = ?"
                         " WHERE request_id = ?", (error[:300], rid))
        return "failed"

    def due_in(self) -> float | None:
        """Poll what is due; seconds until the next pending row is due (None if none)."""
        self.poll()
        row = self._db.query_one("SELECT MIN(next_at) FROM boot_cmp_waiting"
                                 " WHERE state = 'pending'")
        if row is None or row[0] is None:
            return None
        return (datetime.fromisoformat(str(row[0])) - self._clock()).total_seconds()

    def start(self) -> None:
        self._worker.start()

    def close(self) -> None:
        self._worker.close()


def _pending(seconds: int) -> EnrolmentPending:
    return EnrolmentPending(f"the enterprise CA is processing the request; send it again "
                            f"in {seconds} s (RFC 7030 §4.2.3)", retry_after=seconds)


def _check_renewal(cert: x509.Certificate, renewing: x509.Certificate | None) -> None:
    if renewing is not None and cert.serial_number == renewing.serial_number:
        raise StoreError("enterprise CMP server answered the renewal with the certificate "
                         "being renewed", reason="delegate-bad-answer")
