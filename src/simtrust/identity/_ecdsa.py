"""ECDSA P-256 keys for ``ecdsa-rdfc-2019`` / ``ecdsa-jcs-2019`` (W3C VC-DI-ECDSA 1.0).

§3.3.5 / §3.4.5: the proof's ``hashData`` (SHA-256 of the canonical proof
configuration ‖ SHA-256 of the canonical document) is signed with ECDSA over
P-256 and SHA-256, and the signature is the 64-byte IEEE P1363 ``r ‖ s``
form, base58btc multibase in ``proofValue``. Keys are Multikeys
(``p256-pub`` 0x1200, 33-byte compressed point, ``zDn...``; ``p256-priv``
0x1306). The curve arithmetic is the ``cryptography`` package's (OpenSSL).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from simtrust.errors import DecodeError, InvalidSignature
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import (
    multibase_decode,
    multibase_encode,
    multicodec_unwrap,
    multicodec_wrap,
)

__all__ = [
    "P256_PRIV",
    "P256_PUB",
    "EcdsaP256Signer",
    "decode_p256_multikey",
    "p256_compressed",
    "p256_multikey",
    "p256_point",
    "verify_p256",
]

P256_PUB = 0x1200
P256_PRIV = 0x1306


def p256_multikey(compressed: bytes) -> str:
    """``zDn...``: base58btc multibase of the ``p256-pub`` multicodec compressed point."""
    return multibase_encode(multicodec_wrap(P256_PUB, compressed))


def decode_p256_multikey(value: str) -> bytes:
    """The 33-byte compressed P-256 point of a ``zDn...`` Multikey (checked on the curve)."""
    codec, key = multicodec_unwrap(multibase_decode(value))
    if codec != P256_PUB or len(key) != 33:
        raise DecodeError("not a P-256 Multikey (p256-pub, 33-byte compressed point)")
    _public(key)
    return key


def _public(compressed: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), compressed)
    except ValueError as exc:
        raise DecodeError("not a point on P-256") from exc


def p256_point(compressed: bytes) -> tuple[bytes, bytes]:
    """The (x, y) coordinates, 32 bytes each, of a compressed P-256 point."""
    numbers = _public(compressed).public_numbers()
    return numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")


def p256_compressed(x: bytes, y: bytes) -> bytes:
    """The compressed form of the P-256 point (x, y); DecodeError if it is not on the curve."""
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise DecodeError("not a point on P-256") from exc
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def verify_p256(compressed: bytes, signature: bytes, data: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` (r ‖ s) is valid over ``data``."""
    if len(signature) != 64:
        raise InvalidSignature("a P-256 signature has 64 bytes (r ‖ s)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        _public(compressed).verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (_BadSignature, DecodeError) as exc:
        raise InvalidSignature("P-256 signature does not verify") from exc


class EcdsaP256Signer(Signer):
    """An in-memory P-256 key for tests, tools and did:key issuers."""

    __slots__ = ("_key", "_vm")

    def __init__(self, key: ec.EllipticCurvePrivateKey, verification_method: str | None = None):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("EcdsaP256Signer needs a P-256 key")
        self._key = key
        if verification_method is None:
            multikey = p256_multikey(self.public_key)
            verification_method = f"did:key:{multikey}#{multikey}"
        self._vm = verification_method

    @classmethod
    def generate(cls, verification_method: str | None = None) -> EcdsaP256Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()), verification_method)

    @classmethod
    def from_multibase(
        cls, private_multibase: str, verification_method: str | None = None
    ) -> EcdsaP256Signer:
        """From a ``p256-priv`` Multikey ``secretKeyMultibase`` (the VC-DI-ECDSA vectors' form)."""
        codec, secret = multicodec_unwrap(multibase_decode(private_multibase))
        if codec != P256_PRIV or len(secret) != 32:
            raise DecodeError("not a P-256 secret Multikey")
        key = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
        return cls(key, verification_method)

    @property
    def verification_method(self) -> str:
        return self._vm

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"EcdsaP256Signer({self._vm!r})"
