"""Primitives and encodings: envelope encryption of secrets, Merkle trees, random octets
drawn in blocks."""

from simtrust.crypto.envelope import Keyring, SealedInfo
from simtrust.crypto.pool import RandomPool, pooled_random

__all__ = ["Keyring", "RandomPool", "SealedInfo", "pooled_random"]
