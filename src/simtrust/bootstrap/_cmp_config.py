"""Settings of a CMP-delegated CA: the protection a registration asks for, and what
the store keeps of it (RFC 4210 §5.1.3 protection; the MAC secret or client key is
sealed by the caller, docs/decisions/bootstrap-cmp-delegation.md)."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from simtrust.bootstrap._cmp import CmpProtection
from simtrust.errors import InvalidInput

__all__ = ["loaded", "protection_from_pem", "stored"]


def protection_from_pem(kind: str, *, secret: str | None = None, reference: str = "",
                        client_cert_pem: bytes | None = None,
                        client_key_pem: bytes | None = None) -> CmpProtection:
    """The protection a registration asks for (InvalidInput/DecodeError if unusable)."""
    if kind in ("pbm", "pbmac1"):
        return CmpProtection(kind, secret=(secret or "").encode(),  # type: ignore[arg-type]
                             reference=reference.encode())
    if kind != "signature":
        raise InvalidInput("CMP protection is pbm, pbmac1 or signature", field="cmp_protection")
    if not client_cert_pem or not client_key_pem:
        raise InvalidInput("CMP signature protection needs a client certificate and key",
                           field="cmp_client_cert_pem")
    try:
        cert = x509.load_pem_x509_certificate(client_cert_pem)
        key = serialization.load_pem_private_key(client_key_pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInput("CMP client certificate or key PEM does not parse",
                           field="cmp_client_key_pem") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise InvalidInput("CMP client keys are EC or Ed25519", field="cmp_client_key_pem")
    return CmpProtection("signature", cert=cert, key=key)


def stored(protection: CmpProtection, recipient: x509.Name | None) -> tuple[dict[str, Any],
                                                                          bytes]:
    """(settings kept in clear, secret to seal) of a CMP delegate: the MAC secret or
    the client key (PKCS#8 DER); the certificate, reference and recipient in clear."""
    config: dict[str, Any] = {"protection": protection.kind,
                              "reference": protection.reference.hex(),
                              "iterations": protection.iterations}
    if recipient is not None:
        config["recipient"] = recipient.rfc4514_string()
    if protection.kind == "signature":
        assert protection.cert is not None
        assert protection.key is not None
        config["client_cert_pem"] = protection.cert.public_bytes(
            serialization.Encoding.PEM).decode()
        secret = protection.key.private_bytes(serialization.Encoding.DER,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    else:
        secret = protection.secret
    return config, secret


def loaded(config: dict[str, Any], secret: bytes) -> tuple[CmpProtection, x509.Name | None]:
    """The protection and recipient :func:`stored` kept."""
    recipient = (x509.Name.from_rfc4514_string(config["recipient"])
                 if config.get("recipient") else None)
    kind = config["protection"]
    if kind == "signature":
        key = serialization.load_der_private_key(secret, password=None)
        cert = x509.load_pem_x509_certificate(config["client_cert_pem"].encode())
        assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        return CmpProtection("signature", cert=cert, key=key), recipient
    return CmpProtection(kind, secret=secret, reference=bytes.fromhex(config["reference"]),
                         iterations=int(config.get("iterations", 10_000))), recipient
