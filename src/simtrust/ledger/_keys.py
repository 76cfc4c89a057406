"""Ed25519 (RFC 8032 §5.1) signing and verification for ledger messages, via libsodium.

PyNaCl's libsodium binding verifies about twice as fast as OpenSSL's Ed25519
on the machines we measured, and verification bounds ledger ingest
(``docs/decisions/ledger-ed25519-libsodium.md``). libsodium also rejects
non-canonical ``S`` and small-order keys, which keeps ids non-malleable.
"""

from __future__ import annotations

import os

import nacl.bindings
import nacl.exceptions

from simtrust.errors import InvalidInput, InvalidSignature

__all__ = ["Ed25519Signer", "verify_ed25519", "verify_ed25519_ok"]


class Ed25519Signer:
    """An Ed25519 private key; the seed never appears in ``repr``."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise InvalidInput("an Ed25519 seed is 32 bytes")
        self.public_key, self._secret = nacl.bindings.crypto_sign_seed_keypair(seed)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(os.urandom(32))

    def seed(self) -> bytes:
        """The 32-byte seed, for sealing at rest; handle as a secret."""
        return bytes(self._secret[:32])

    def sign(self, data: bytes) -> bytes:
        return bytes(nacl.bindings.crypto_sign(data, self._secret)[:64])

    def __repr__(self) -> str:
        return f"Ed25519Signer(public_key={self.public_key.hex()[:16]}…)"


def verify_ed25519_ok(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Internal fast path for the verifier pool; callers outside it use :func:`verify_ed25519`."""
    try:
        nacl.bindings.crypto_sign_open(signature + data, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def verify_ed25519(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is valid for ``data``."""
    if len(public_key) != 32 or len(signature) != 64:
        raise InvalidSignature("Ed25519 keys are 32 bytes and signatures 64 bytes")
    if not verify_ed25519_ok(public_key, signature, data):
        raise InvalidSignature("Ed25519 signature does not verify")
