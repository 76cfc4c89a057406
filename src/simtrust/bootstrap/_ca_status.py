"""Issued certificates and their revocation: the list, revoking, CRLs and OCSP.

- Revocation by serial or of every certificate of a SIM, audited, with the
  RFC 5280 §5.3.1 reason; a certificate from a CMP-delegated CA is queued in the
  same transaction for its enterprise CA (``_ca_forward``).
- CRLs per CA (RFC 5280 §5) with an increasing cRLNumber, and OCSP responses
  (RFC 6960 §4.2) signed by the CA itself (§4.2.2.2); nonce-less responses are
  reused while fresh (RFC 5019 §2.2, §6), the status is read on every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from simtrust.audit import AuditLog
from simtrust.bootstrap._ca_forward import QUEUE_FOR_SERIALS, QUEUE_FOR_SIM
from simtrust.bootstrap._ca_model import REVOCATION_REASONS, CaRecord, IssuedCert, issued_from_row
from simtrust.bootstrap._pkcs11 import Pkcs11Key, sign_crl, sign_ocsp
from simtrust.errors import InvalidInput, NotFound
from simtrust.store import Database

__all__ = ["CertificateStatus"]

#: How long a signed OCSP response is reused for nonce-less requests (RFC 5019).
OCSP_REUSE = timedelta(seconds=60)
OCSP_CACHE_MAX = 100_000

SigningKey = ec.EllipticCurvePrivateKey | Pkcs11Key


class CertificateStatus:
    """Issued certificates, their revocation, CRLs and OCSP (``CertificateAuthorities.status``).

    ``lookup`` finds a CA by EST label, ``signing_key`` opens its key and
    ``notify(event, iccid)`` tells the CA store's listeners of a revocation.
    """

    __slots__ = ("_audit", "_by_key_hash", "_cache_lock", "_clock", "_db", "_lookup", "_notify",
                 "_ocsp_cache", "_signing_key")

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        lookup: Callable[[str], CaRecord],
        signing_key: Callable[[CaRecord], SigningKey],
        notify: Callable[[str, str], None],
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._lookup = lookup
        self._signing_key = signing_key
        self._notify = notify
        self._by_key_hash: dict[bytes, str] = {}
        self._cache_lock = threading.Lock()
        self._ocsp_cache: dict[tuple[bytes, bytes, int, str, str], tuple[bytes, datetime]] = {}

    def __repr__(self) -> str:
        return f"CertificateStatus({self._db!r})"
    def certificates(self, *, tenant_id: str | None = None, iccid: str | None = None,
                     limit: int = 100) -> list[IssuedCert]:
        sql = ("SELECT serial, ca_id, tenant_id, iccid, subject, not_before, not_after, status,"
               " revoked_at, revocation_reason FROM boot_certs WHERE 1 = 1")
        params: list[Any] = []
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id)
        if iccid is not None:
            sql += " AND iccid = ?"
            params.append(iccid)
        rows = self._db.query(sql + " ORDER BY issued_at DESC, serial LIMIT ?",
                              (*params, limit))
        return [issued_from_row(r) for r in rows]

    def certificate(self, serial: str) -> IssuedCert:
        found = self._select("serial = ?", (serial.lower(),))
        if not found:
            raise NotFound(f"no certificate with serial {serial}")
        return found[0]

    def presented(self, der: bytes) -> IssuedCert | None:
        """The issued certificate whose exact DER a TLS client presented (None if not ours)."""
        try:
            serial = format(x509.load_der_x509_certificate(der).serial_number, "x")
        except ValueError:
            return None
        row = self._db.query_one("SELECT der FROM boot_certs WHERE serial = ?", (serial,))
        if row is None or bytes(row[0]) != der:
            return None
        return self.certificate(serial)

    def ocsp_of(self, der: bytes) -> tuple[bytes, bytes] | None:
        """For an issued certificate presented as ``der``: its CA's certificate (DER) and
        this responder's signed OCSP response about it (RFC 6960 §4.2, SHA-256 CertID),
        so a relying party holds the CA's own word on its revocation status. None when
        it was not issued here by a CA whose status this responder signs."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        row = self._db.query_one(
            "SELECT c.label, c.mode FROM boot_certs s JOIN boot_cas c ON c.ca_id = s.ca_id"
            " WHERE s.serial = ?", (format(cert.serial_number, "x"),))
        if row is None or str(row[1]) not in ("hosted", "pkcs11"):
            return None
        ca = self._lookup(str(row[0]))
        request = ocsp.OCSPRequestBuilder().add_certificate(
            cert, ca.certificate, hashes.SHA256()).build()
        return (ca.certificate.public_bytes(serialization.Encoding.DER),
                self.ocsp_response(request.public_bytes(serialization.Encoding.DER)))

    def _select(self, where: str, params: tuple[Any, ...]) -> list[IssuedCert]:
        rows = self._db.query(
            "SELECT serial, ca_id, tenant_id, iccid, subject, not_before, not_after, status,"
            f" revoked_at, revocation_reason FROM boot_certs WHERE {where}", params)
        return [issued_from_row(r) for r in rows]

    def revoke(self, serial: str, *, reason: str = "unspecified", actor: str) -> IssuedCert:
        if reason not in REVOCATION_REASONS:
            raise InvalidInput(f"unknown revocation reason {reason!r}", field="reason")
        cert = self.certificate(serial)
        if cert.status == "revoked":
            return cert
        now = self._clock().isoformat()
        with self._db.transaction(durable=True):  # acknowledged revocations survive a crash
            self._db.execute(QUEUE_FOR_SERIALS, (reason, now, now, cert.serial))
            self._db.execute(
                "UPDATE boot_certs SET status = 'revoked', revoked_at = ?, revocation_reason = ?"
                " WHERE serial = ? AND status = 'good'", (now, reason, cert.serial))
            self._audit.append(actor=actor, action="pki.revoke", subject=f"sim:{cert.iccid}",
                               outcome="success", tenant_id=cert.tenant_id,
                               details={"serial": cert.serial, "reason": reason})
        self._notify("revoked", cert.iccid)
        return self.certificate(serial)

    def revoke_sim(self, iccid: str, *, reason: str, actor: str, why: str = "") -> list[str]:
        """Revoke every valid certificate of a SIM; returns their serials."""
        if reason not in REVOCATION_REASONS:
            raise InvalidInput(f"unknown revocation reason {reason!r}", field="reason")
        now = self._clock().isoformat()
        with self._db.transaction(durable=True):
            rows = self._db.query(
                "SELECT serial, tenant_id FROM boot_certs WHERE iccid = ? AND status = 'good'",
                (iccid,))
            serials = [str(r[0]) for r in rows]
            if serials:
                self._db.execute(QUEUE_FOR_SIM, (reason, now, now, iccid))
                self._db.execute(
                    "UPDATE boot_certs SET status = 'revoked', revoked_at = ?,"
                    " revocation_reason = ? WHERE iccid = ? AND status = 'good'",
                    (now, reason, iccid))
                self._audit.append(actor=actor, action="pki.revoke-sim", subject=f"sim:{iccid}",
                                   outcome="success", tenant_id=str(rows[0][1]),
                                   reason=why, details={"serials": serials, "reason": reason})
        if serials:
            self._notify("revoked", iccid)
        return serials

    def crl(self, label: str, *, validity: timedelta = timedelta(hours=1)) -> bytes:
        """A fresh DER CRL of the CA (RFC 5280 §5) with an increasing cRLNumber."""
        ca = self._lookup(label)
        key = self._signing_key(ca)
        now = self._clock()
        with self._db.transaction():
            self._db.execute("UPDATE boot_cas SET crl_number = crl_number + 1 WHERE ca_id = ?",
                             (ca.ca_id,))
            row = self._db.query_one("SELECT crl_number FROM boot_cas WHERE ca_id = ?",
                                     (ca.ca_id,))
            revoked = self._db.query(
                "SELECT serial, revoked_at, revocation_reason FROM boot_certs"
                " WHERE ca_id = ? AND status = 'revoked'", (ca.ca_id,))
        number = int(row[0]) if row else 1
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
            .last_update(now - timedelta(minutes=1)).next_update(now + validity)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                key.public_key()), critical=False)
        )
        for serial, at, reason in revoked:
            entry = (
                x509.RevokedCertificateBuilder().serial_number(int(str(serial), 16))
                .revocation_date(datetime.fromisoformat(str(at)))
            )
            flag = REVOCATION_REASONS.get(str(reason), x509.ReasonFlags.unspecified)
            if flag is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        if isinstance(key, Pkcs11Key):
            return sign_crl(builder, key).public_bytes(serialization.Encoding.DER)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # -- OCSP ------------------------------------------------------------------

    def _ca_by_key_hash(self, key_hash: bytes, algorithm: hashes.HashAlgorithm) -> CaRecord | None:
        cache_key = algorithm.name.encode() + b":" + key_hash
        found = self._by_key_hash.get(cache_key)
        if found is None:
            rows = self._db.query("SELECT label FROM boot_cas WHERE mode IN ('hosted', 'pkcs11')")
            for (label,) in rows:
                ca = self._lookup(str(label))
                digest = hashes.Hash(algorithm)
                # issuerKeyHash is over the subjectPublicKey BIT STRING value (RFC 6960 §4.1.1).
                digest.update(ca.certificate.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
                if digest.finalize() == key_hash:
                    found = ca.est_label
                    with self._cache_lock:
                        self._by_key_hash[cache_key] = found
                    break
        return None if found is None else self._lookup(found)

    def ocsp_response(self, request_der: bytes) -> bytes:
        """An RFC 6960 response to a DER OCSPRequest (malformedRequest / unauthorized on error)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            key_hash = request.issuer_key_hash
            algorithm = request.hash_algorithm
            serial = request.serial_number
        except (ValueError, TypeError, NotImplementedError):
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER)
        ca = self._ca_by_key_hash(key_hash, algorithm)
        if ca is None or ca.tenant_id is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        row = self._db.query_one(
            "SELECT status, revoked_at, revocation_reason FROM boot_certs"
            " WHERE serial = ? AND ca_id = ?", (format(serial, "x"), ca.ca_id))
        now = self._clock()
        revocation_time = None
        reason = None
        if row is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif str(row[0]) == "revoked":
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = datetime.fromisoformat(str(row[1]))
            flag = REVOCATION_REASONS.get(str(row[2]))
            reason = None if flag in (None, x509.ReasonFlags.unspecified) else flag
        else:
            status = ocsp.OCSPCertStatus.GOOD
        nonce = next((e.value for e in request.extensions if isinstance(e.value, x509.OCSPNonce)),
                     None)
        # RFC 5019 §2.2 / §6: without a nonce a signed response may be reused while fresh.
        # The status is read from the store on every request, so a revocation made by
        # any process shows at once; only the signature is reused.
        cache_key = (request.issuer_name_hash, key_hash, serial, algorithm.name, status.name)
        if nonce is None:
            cached = self._ocsp_cache.get(cache_key)
            if cached is not None and now - cached[1] < OCSP_REUSE:
                return cached[0]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=key_hash,
            serial_number=serial, algorithm=algorithm, cert_status=status,
            this_update=now - timedelta(minutes=1), next_update=now + timedelta(minutes=10),
            revocation_time=revocation_time, revocation_reason=reason,
        )
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        key = self._signing_key(ca)
        if isinstance(key, Pkcs11Key):
            der = sign_ocsp(builder, key, ca.certificate.subject)
        else:
            der = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate).sign(
                key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        if nonce is None:
            with self._cache_lock:
                if len(self._ocsp_cache) >= OCSP_CACHE_MAX:
                    self._ocsp_cache.clear()
                self._ocsp_cache[cache_key] = (der, now)
        return der
