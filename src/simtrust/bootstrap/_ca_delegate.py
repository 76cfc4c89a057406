"""Delegated CAs: a CSR forwarded to the enterprise's own EST server (RFC 7030 §4.2).

The enterprise keeps its CA key; simtrust checks the device's claims, forwards
the request as ``simpleenroll`` (§4.2.1, base64 PKCS#10) and returns the
certificate from the ``application/pkcs7-mime`` answer (§4.2.3) only if the
registered CA certificate issued it.
"""

from __future__ import annotations

import base64

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from simtrust.bootstrap._ca_model import CaRecord
from simtrust.errors import Conflict, DecodeError, InvalidSignature, PermissionDenied, StoreError

__all__ = ["enroll_at_delegate"]


def enroll_at_delegate(ca: CaRecord, csr: x509.CertificateSigningRequest,
                       transport: httpx.BaseTransport | None = None) -> x509.Certificate:
    """RFC 7030 §4.2.1 simpleenroll of ``csr`` at the EST server of the delegated ``ca``.

    The answer must hold a certificate for the CSR's key issued by the registered
    CA certificate (InvalidSignature otherwise); an unreachable server is a
    StoreError, a refusal PermissionDenied.
    """
    if ca.delegate_url is None:
        raise Conflict(f"CA {ca.label!r} has no EST endpoint", reason="no-delegate")
    body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
    try:
        with httpx.Client(transport=transport, timeout=15.0) as client:
            response = client.post(
                f"{ca.delegate_url}/simpleenroll", content=body,
                headers={"Content-Type": "application/pkcs10",
                         "Content-Transfer-Encoding": "base64"})
    except httpx.HTTPError as exc:
        raise StoreError(f"enterprise EST server unreachable ({type(exc).__name__})",
                         reason="delegate-unreachable") from None
    if response.status_code != 200:
        raise PermissionDenied(f"enterprise EST server answered {response.status_code}",
                               reason="delegate-refused")
    try:
        certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))
    except ValueError:
        raise DecodeError("enterprise EST answer is not base64 PKCS#7") from None
    for cert in certs:
        if cert.public_key() == csr.public_key():
            try:
                cert.verify_directly_issued_by(ca.certificate)
            except (ValueError, TypeError, CryptoInvalidSignature):
                raise InvalidSignature("delegated certificate is not issued by the "
                                       "registered CA") from None
            return cert
    raise DecodeError("enterprise EST answer holds no certificate for the CSR key")
