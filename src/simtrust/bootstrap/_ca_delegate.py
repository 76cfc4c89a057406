"""Delegated CAs: a CSR forwarded to the enterprise's own EST (RFC 7030 §4.2) or CMP server.

The enterprise keeps its CA key; simtrust checks the device's claims, forwards
the request as ``simpleenroll`` (§4.2.1, base64 PKCS#10) and returns the
certificate from the ``application/pkcs7-mime`` answer (§4.2.3) only if the
registered CA certificate issued it. A CMP delegate gets the CSR as ``p10cr``
(RFC 9483 §4.1.4) from :class:`simtrust.bootstrap._cmp.CmpClient`; here its
registration is checked and its client built from what the store keeps.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from simtrust.bootstrap._ca_model import CaRecord
from simtrust.bootstrap._cmp import CmpClient, CmpProtection
from simtrust.bootstrap._cmp_config import loaded, stored
from simtrust.errors import (
    Conflict,
    DecodeError,
    InvalidInput,
    InvalidSignature,
    PermissionDenied,
    StoreError,
)

__all__ = ["cmp_client", "delegate_settings", "enroll_at_delegate"]


def delegate_settings(kind: str, est_url: str | None, cmp_url: str | None,
                      cmp: CmpProtection | None, recipient: str | None,
                      ) -> tuple[str, tuple[str, dict[str, Any] | None, bytes | None]]:
    """(URL, (kind, settings kept in clear, secret to seal)) of a delegated CA, checked:
    an EST server over https, or a CMP server with its message protection."""
    if kind == "cmp":
        url, config, secret = _cmp_registration(cmp_url, cmp, recipient)
        return url, ("cmp", config, secret)
    if kind != "est":
        raise InvalidInput("delegated CAs speak est or cmp", field="delegate_kind")
    if not est_url or not est_url.startswith("https://"):
        raise InvalidInput("the delegated EST URL must be https", field="est_url")
    return est_url.rstrip("/"), ("est", None, None)


def _cmp_registration(url: str | None, protection: CmpProtection | None,
                      recipient: str | None) -> tuple[str, dict[str, Any], bytes]:
    """(URL, settings kept in clear, secret to seal) of a CMP delegate, checked.

    Message protection authenticates CMP (RFC 6712 §3, RFC 9483 §6), so plain HTTP
    is allowed (docs/decisions/bootstrap-cmp-delegation.md).
    """
    if not url or not url.startswith(("https://", "http://")) or len(url) > 512:
        raise InvalidInput("the delegated CMP URL must be http(s)://...", field="cmp_url")
    if protection is None:
        raise InvalidInput("a CMP delegate needs its message protection",
                           field="cmp_protection")
    try:
        name = None if not recipient else x509.Name.from_rfc4514_string(recipient)
    except ValueError:
        raise InvalidInput("cmp_recipient is not an RFC 4514 name",
                           field="cmp_recipient") from None
    config, secret = stored(protection, name)
    return url, config, secret


def cmp_client(ca: CaRecord, config: dict[str, Any], secret: bytes,
               transport: httpx.BaseTransport | None,
               clock: Callable[[], datetime]) -> CmpClient:
    """The CMP client of ``ca`` from its stored settings and unsealed secret."""
    if ca.delegate_url is None:
        raise Conflict(f"CA {ca.label!r} has no CMP endpoint", reason="no-delegate")
    protection, recipient = loaded(config, secret)
    return CmpClient(ca.delegate_url, protection, trust=ca.certificate, recipient=recipient,
                     transport=transport, clock=clock)


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
