"""Primitives and encodings: envelope encryption of secrets, Merkle trees."""

from simtrust.crypto.envelope import Keyring, SealedInfo

__all__ = ["Keyring", "SealedInfo"]
