"""An author key that signs through libsodium, for high-rate publishers.

Ed25519 (RFC 8032) is deterministic, so a signature made here is the very one
``identity.Ed25519Signer`` (OpenSSL, through ``cryptography``) makes with the
same seed; libsodium signs about twice as fast on this machine, and it is the
library the project verifies with (docs/decisions/ledger-ed25519-libsodium.md).
Keys that must stay in a SIM keep using the secure element's signer.
"""

from __future__ import annotations

import os

from simtrust.identity import Signer, ed25519_multikey
from simtrust.ledger import Ed25519Signer as _SodiumKey

__all__ = ["SodiumSigner"]


class SodiumSigner(Signer):
    """An in-memory Ed25519 key (a ``did:key`` unless named otherwise) signing via libsodium."""

    __slots__ = ("_key", "_vm")

    def __init__(self, seed: bytes, verification_method: str | None = None) -> None:
        self._key = _SodiumKey(seed)
        if verification_method is None:
            fingerprint = ed25519_multikey(self._key.public_key)
            verification_method = f"did:key:{fingerprint}#{fingerprint}"
        self._vm = verification_method

    @classmethod
    def generate(cls, verification_method: str | None = None) -> SodiumSigner:
        return cls(os.urandom(32), verification_method)

    def __repr__(self) -> str:
        return f"SodiumSigner({self._vm.split('#', 1)[0][:40]}…)"

    @property
    def verification_method(self) -> str:
        return self._vm

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)
