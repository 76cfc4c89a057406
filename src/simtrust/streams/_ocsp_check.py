"""The revocation half of the ``tls`` annotation: an OCSP response (RFC 6960 §4.2) about
the client certificate, signed by the certificate's own CA (§4.2.2.2), judged here.

The composition root asks simtrust's tier-2 OCSP responder about each certificate a
frame arrived under and passes the signed response with the CA's certificate; the
annotation holds only when the response is successful, signed by that CA, names the
presented certificate (issuer key hash and serial of its CertID) and says ``good``
for a window containing the arrival. The response is kept beside the datum, so a
verifier holding the CA certificate can check the status claim without the store.
Parsing and signature checks are pyca/cryptography's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp

__all__ = ["ocsp_status"]

#: Clock difference tolerated between the responder and the checker.
_SKEW = timedelta(minutes=5)


def _signature_ok(issuer: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = issuer.public_key()
    data, signature = response.tbs_response_bytes, response.signature
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _key_hash(cert: x509.Certificate, issuer: x509.Certificate,
              algorithm: hashes.HashAlgorithm) -> bytes:
    """The CertID issuerKeyHash of ``cert`` (RFC 6960 §4.1.1), as the library computes it."""
    return ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build() \
        .issuer_key_hash


def ocsp_status(certificate: bytes, issuer: bytes, response: bytes,
                at: datetime | None) -> tuple[str, str]:
    """``(status, why)``: ``good``, ``revoked``, ``unknown``, or ``invalid`` when the
    response proves nothing about this certificate at ``at`` (None: when it was made)."""
    try:
        cert = x509.load_der_x509_certificate(certificate)
        ca = x509.load_der_x509_certificate(issuer)
        parsed = ocsp.load_der_ocsp_response(response)
    except ValueError:
        return "invalid", "the OCSP response or a certificate is malformed"
    if parsed.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return "invalid", f"the OCSP responder answered {parsed.response_status.name}"
    if cert.issuer != ca.subject:
        return "invalid", "the certificate was not issued by the CA the response is from"
    if not _signature_ok(ca, parsed):
        return "invalid", "the OCSP response is not signed by the certificate's CA"
    if (parsed.serial_number != cert.serial_number
            or parsed.issuer_key_hash != _key_hash(cert, ca, parsed.hash_algorithm)):
        return "invalid", "the OCSP response is about another certificate"
    this_update = parsed.this_update_utc
    next_update = parsed.next_update_utc
    if at is None:
        at = parsed.produced_at_utc
    if this_update - _SKEW > at or (next_update is not None and next_update + _SKEW < at):
        return "invalid", (f"the OCSP response is for {this_update.isoformat()} .."
                           f" {next_update.isoformat() if next_update else 'open'},"
                           f" not {at.isoformat()}")
    produced = parsed.produced_at_utc.isoformat()
    if parsed.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return "good", f"OCSP good, produced {produced} by its CA"
    if parsed.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        revoked = parsed.revocation_time_utc
        return "revoked", (f"OCSP revoked at {revoked.isoformat() if revoked else '?'},"
                           f" produced {produced} by its CA")
    return "unknown", f"OCSP unknown, produced {produced} by its CA"
