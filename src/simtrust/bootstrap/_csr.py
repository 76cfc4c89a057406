"""PKCS#10 requests signed inside a secure element (RFC 2986 §4), and EST's CsrAttrs.

``cryptography`` builds a CSR only from a private-key object it holds; a SIM
applet signs through a call and never hands the key out, so the
CertificationRequestInfo is DER-encoded here (the Name, SubjectPublicKeyInfo and
extension values still come from ``cryptography``) and the signature is
appended. The result is checked by ``cryptography`` and ``openssl req -verify``
in the tests. :func:`csr_attrs` encodes the CsrAttrs of RFC 7030 §4.5.2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

__all__ = [
    "OID_CHALLENGE_PASSWORD",
    "OID_EXTENSION_REQUEST",
    "build_csr",
    "csr_attrs",
    "der",
    "der_oid",
]

OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"  # noqa: S105 - an OID, not a password
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_ED25519 = "1.3.101.112"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_P256 = "1.2.840.10045.3.1.7"

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray((40 * arcs[0] + arcs[1],))
    for value in arcs[2:]:
        chunk = [value & 0x7F]
        rest = value >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return der(0x06, bytes(body))


def _set_of(items: Sequence[bytes], tag: int = 0x31) -> bytes:
    return der(tag, b"".join(sorted(items)))


def build_csr(
    public_key: PublicKey,
    subject: x509.Name,
    sign: Callable[[bytes], bytes],
    *,
    sans: Sequence[x509.GeneralName] = (),
    challenge_password: str | None = None,
) -> x509.CertificateSigningRequest:
    """A CSR for ``public_key`` whose signature ``sign`` makes (ECDSA-SHA256 or Ed25519)."""
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    attributes: list[bytes] = []
    if challenge_password is not None:
        value = der(0x0C, challenge_password.encode("utf-8"))
        attributes.append(der(0x30, der_oid(OID_CHALLENGE_PASSWORD) + _set_of([value])))
    if sans:
        ext = der(0x30, der_oid("2.5.29.17")
                  + der(0x04, x509.SubjectAlternativeName(list(sans)).public_bytes()))
        attributes.append(der(0x30, der_oid(OID_EXTENSION_REQUEST) + _set_of([der(0x30, ext)])))
    info = der(0x30, der(0x02, b"\x00") + subject.public_bytes() + spki
               + _set_of(attributes, tag=0xA0))
    alg = _ED25519 if isinstance(public_key, ed25519.Ed25519PublicKey) else _ECDSA_SHA256
    signature = sign(info)
    request = der(0x30, info + der(0x30, der_oid(alg)) + der(0x03, b"\x00" + signature))
    return x509.load_der_x509_csr(request)


def csr_attrs() -> bytes:
    """CsrAttrs (RFC 7030 §4.5.2): challengePassword, P-256 EC keys or Ed25519,
    ECDSA with SHA-256, and an extensionRequest (for the SAN)."""
    p256 = der(0x30, der_oid(_EC_PUBLIC_KEY) + der(0x31, der_oid(_P256)))
    return der(0x30, der_oid(OID_CHALLENGE_PASSWORD) + p256 + der_oid(_ED25519)
               + der_oid(_ECDSA_SHA256) + der_oid(OID_EXTENSION_REQUEST))
