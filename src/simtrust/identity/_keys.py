"""Ed25519 signers and verification, and Multikey encodings (W3C CID 1.0 §2.2.2).

A :class:`Signer` is what issues proofs: a verification method id plus a
``sign`` operation. Private keys stay inside the signer (or inside a secure
element behind it) and never appear in reprs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import DecodeError
from simtrust.identity._multibase import (
    ED25519_PRIV,
    ED25519_PUB,
    X25519_PUB,
    multibase_decode,
    multibase_encode,
    multicodec_unwrap,
    multicodec_wrap,
)
from simtrust.ledger import verify_ed25519 as _ledger_verify

__all__ = [
    "Ed25519Signer",
    "Signer",
    "decode_multikey",
    "ed25519_multikey",
    "ed25519_public_bytes",
    "ed25519_to_x25519_public",
    "verify_ed25519",
    "x25519_multikey",
]

_P = 2**255 - 19


class Signer(ABC):
    """Signs with one Ed25519 key named by ``verification_method``."""

    __slots__ = ()

    @property
    @abstractmethod
    def verification_method(self) -> str:
        """Absolute DID URL of the verification method (``did:...#key``)."""

    @property
    @abstractmethod
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""

    @property
    def controller(self) -> str:
        return self.verification_method.split("#", 1)[0]


class Ed25519Signer(Signer):
    """A signer holding its private key in process memory (tests, did:key issuers)."""

    __slots__ = ("_key", "_public", "_vm")

    def __init__(self, key: Ed25519PrivateKey, verification_method: str | None = None) -> None:
        self._key = key
        self._public = ed25519_public_bytes(key.public_key())
        if verification_method is None:
            fingerprint = ed25519_multikey(self._public)
            verification_method = f"did:key:{fingerprint}#{fingerprint}"
        self._vm = verification_method

    @classmethod
    def generate(cls, verification_method: str | None = None) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate(), verification_method)

    @classmethod
    def from_seed(cls, seed: bytes, verification_method: str | None = None) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(seed), verification_method)

    @classmethod
    def from_multibase(
        cls, private_multibase: str, verification_method: str | None = None
    ) -> Ed25519Signer:
        """Load a Multikey ``ed25519-priv`` secret (as the W3C vectors' keyPair.json holds)."""
        codec, seed = multicodec_unwrap(multibase_decode(private_multibase))
        if codec != ED25519_PRIV or len(seed) != 32:
            raise DecodeError("not an ed25519-priv multikey")
        return cls.from_seed(seed, verification_method)

    @property
    def verification_method(self) -> str:
        return self._vm

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Signer({self._vm!r})"


def ed25519_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_multikey(public: bytes) -> str:
    """``z6Mk...``: base58btc multibase of the ``ed25519-pub`` multicodec key."""
    return multibase_encode(multicodec_wrap(ED25519_PUB, public))


def x25519_multikey(public: bytes) -> str:
    """``z6LS...``: base58btc multibase of the ``x25519-pub`` multicodec key."""
    return multibase_encode(multicodec_wrap(X25519_PUB, public))


@lru_cache(maxsize=4096)
def decode_multikey(value: str) -> tuple[int, bytes]:
    """(codec, 32 raw key bytes) of a Multikey ``publicKeyMultibase``."""
    codec, key = multicodec_unwrap(multibase_decode(value))
    if codec not in (ED25519_PUB, X25519_PUB):
        raise DecodeError(f"unsupported multikey codec 0x{codec:x}")
    if len(key) != 32:
        raise DecodeError("a 25519 public key has 32 bytes")
    return codec, key


def ed25519_to_x25519_public(public: bytes) -> bytes:
    """Montgomery u = (1 + y) / (1 − y) of an Edwards point (RFC 7748 §4.1 map).

    did:key derives its keyAgreement key from the Ed25519 key this way.
    """
    if len(public) != 32:
        raise DecodeError("an Ed25519 public key has 32 bytes")
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:
        raise DecodeError("Ed25519 point has no Montgomery form")
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def verify_ed25519(public: bytes, signature: bytes, data: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is valid over ``data``.

    The project's one Ed25519 verifier (libsodium, strict: canonical ``S``, no
    small-order keys) lives with the ledger, where verification bounds ingest.
    """
    _ledger_verify(bytes(public), bytes(signature), data)
