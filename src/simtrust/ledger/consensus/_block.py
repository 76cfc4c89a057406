"""Validator blocks: the signed vertices of the consensus DAG, and their one encoding.

Byte layout, digest and signature as specified in ``docs/consensus.md`` §4.
Decoding is strict: every length, count, order and range is checked, and a
block has exactly one encoding (parents strictly sorted, no trailing bytes).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, PayloadTooLarge

__all__ = [
    "BLOCK_VERSION",
    "MAX_BLOCK_BYTES",
    "MAX_PARENTS",
    "MAX_PAYLOAD_IDS",
    "Block",
    "BlockRef",
    "block_signing_message",
]

BLOCK_VERSION = 1
MAX_PARENTS = 1024
MAX_PAYLOAD_IDS = 8192
_HEADER = struct.Struct(">BQQIQH")  # version, epoch, round, author, timestamp_ms, parents
_REF = struct.Struct(">QI")  # round, author (then 32-byte digest)
_REF_SIZE = _REF.size + 32
_COUNT = struct.Struct(">I")
_SIG_DOMAIN = b"simtrust/consensus/block/v1\x00"
MAX_BLOCK_BYTES = _HEADER.size + MAX_PARENTS * _REF_SIZE + _COUNT.size + MAX_PAYLOAD_IDS * 32 + 64
_U64 = 2**64
_U32 = 2**32


@dataclass(frozen=True, slots=True, order=True)
class BlockRef:
    """A reference to a block: ordered by round, then author, then digest."""

    round: int
    author: int
    digest: bytes

    def __repr__(self) -> str:
        return f"BlockRef(r{self.round}, a{self.author}, {self.digest[:4].hex()})"


def block_signing_message(digest: bytes) -> bytes:
    """What the author signs: a domain separator and the block digest."""
    return _SIG_DOMAIN + digest


def _encode_unsigned(
    epoch: int,
    round_: int,
    author: int,
    *,
    timestamp_ms: int,
    parents: Sequence[BlockRef],
    payload: Sequence[bytes],
) -> bytes:
    out = bytearray(_HEADER.pack(BLOCK_VERSION, epoch, round_, author, timestamp_ms, len(parents)))
    for ref in parents:
        out += _REF.pack(ref.round, ref.author)
        out += ref.digest
    out += _COUNT.pack(len(payload))
    for mid in payload:
        out += mid
    return bytes(out)


def _check_fields(
    epoch: int,
    round_: int,
    author: int,
    *,
    timestamp_ms: int,
    parents: Sequence[BlockRef],
    payload: Sequence[bytes],
) -> None:
    if not (0 <= epoch < _U64 and 0 <= round_ < _U64 and 0 <= timestamp_ms < _U64):
        raise InvalidInput("epoch, round and timestamp are unsigned 64-bit integers")
    if not 0 <= author < _U32:
        raise InvalidInput("author is an unsigned 32-bit integer")
    if len(parents) > MAX_PARENTS:
        raise PayloadTooLarge(f"a block has at most {MAX_PARENTS} parents")
    if len(payload) > MAX_PAYLOAD_IDS:
        raise PayloadTooLarge(f"a block carries at most {MAX_PAYLOAD_IDS} message ids")
    _check_parents(parents)
    for mid in payload:
        if len(mid) != 32:
            raise InvalidInput("payload message ids are 32 bytes")


def _check_parents(parents: Sequence[BlockRef]) -> None:
    previous: tuple[int, int] | None = None
    for ref in parents:
        if len(ref.digest) != 32 or not 0 <= ref.round < _U64 or not 0 <= ref.author < _U32:
            raise InvalidInput("malformed parent reference")
        key = (ref.round, ref.author)
        if previous is not None and key <= previous:
            raise InvalidInput("parents must be strictly sorted by (round, author)")
        previous = key


class Block:
    """A signed validator block. Immutable; ``digest`` is BLAKE2b-256 of the unsigned bytes."""

    __slots__ = (
        "_unsigned",
        "author",
        "digest",
        "epoch",
        "parents",
        "payload",
        "ref",
        "round",
        "signature",
        "timestamp_ms",
    )

    epoch: int
    round: int
    author: int
    timestamp_ms: int
    parents: tuple[BlockRef, ...]
    payload: tuple[bytes, ...]
    signature: bytes
    digest: bytes
    ref: BlockRef
    _unsigned: bytes

    def __init__(
        self,
        *,
        epoch: int,
        round: int,
        author: int,
        timestamp_ms: int,
        parents: Sequence[BlockRef],
        payload: Sequence[bytes],
        signature: bytes,
    ) -> None:
        parents = tuple(parents)
        payload = tuple(bytes(p) for p in payload)
        _check_fields(
            epoch, round, author, timestamp_ms=timestamp_ms, parents=parents, payload=payload
        )
        if len(signature) != 64:
            raise InvalidInput("signature must be 64 bytes")
        unsigned = _encode_unsigned(
            epoch, round, author, timestamp_ms=timestamp_ms, parents=parents, payload=payload
        )
        self._fill(epoch, round, author, timestamp_ms, parents, payload, bytes(signature),
                   unsigned, hashlib.blake2b(unsigned, digest_size=32).digest())

    def _fill(self, epoch: int, round_: int, author: int, timestamp_ms: int,
              parents: tuple[BlockRef, ...], payload: tuple[bytes, ...], signature: bytes,
              unsigned: bytes, digest: bytes) -> None:
        put = object.__setattr__
        put(self, "epoch", epoch)
        put(self, "round", round_)
        put(self, "author", author)
        put(self, "timestamp_ms", timestamp_ms)
        put(self, "parents", parents)
        put(self, "payload", payload)
        put(self, "signature", signature)
        put(self, "_unsigned", unsigned)
        put(self, "digest", digest)
        put(self, "ref", BlockRef(round_, author, digest))

    @classmethod
    def _checked(cls, epoch: int, round_: int, author: int, timestamp_ms: int,
                 parents: tuple[BlockRef, ...], payload: tuple[bytes, ...], signature: bytes,
                 unsigned: bytes, digest: bytes) -> Block:
        """A block from fields already checked and their encoding already built: the
        encoder and the decoder have the bytes at hand, so nothing is encoded or hashed
        twice (``__init__`` does both for callers that have only the fields)."""
        block = object.__new__(cls)
        block._fill(epoch, round_, author, timestamp_ms, parents, payload, signature,
                    unsigned, digest)
        return block

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Block is immutable")

    @classmethod
    def create(
        cls,
        *,
        epoch: int,
        round: int,
        author: int,
        timestamp_ms: int,
        parents: Sequence[BlockRef],
        payload: Sequence[bytes],
        key: Ed25519PrivateKey,
    ) -> Block:
        """Encode and sign a block with the author's key."""
        parents = tuple(parents)
        payload = tuple(payload)
        _check_fields(
            epoch, round, author, timestamp_ms=timestamp_ms, parents=parents, payload=payload
        )
        unsigned = _encode_unsigned(
            epoch, round, author, timestamp_ms=timestamp_ms, parents=parents, payload=payload
        )
        digest = hashlib.blake2b(unsigned, digest_size=32).digest()
        signature = key.sign(block_signing_message(digest))
        return cls._checked(epoch, round, author, timestamp_ms, parents,
                            tuple(bytes(p) for p in payload), signature, unsigned, digest)

    def encode(self) -> bytes:
        return self._unsigned + self.signature

    @classmethod
    def decode(cls, data: bytes) -> Block:
        """Strictly decode untrusted bytes; raises ``DecodeError`` / ``PayloadTooLarge``."""
        if len(data) > MAX_BLOCK_BYTES:
            raise PayloadTooLarge(f"block larger than {MAX_BLOCK_BYTES} bytes")
        view = memoryview(data)
        if len(view) < _HEADER.size:
            raise DecodeError("block shorter than its header")
        version, epoch, round_, author, timestamp_ms, n_parents = _HEADER.unpack_from(view, 0)
        if version != BLOCK_VERSION:
            raise DecodeError(f"unknown block version {version}")
        if n_parents > MAX_PARENTS:
            raise DecodeError("too many parents")
        offset = _HEADER.size
        need = offset + n_parents * _REF_SIZE + _COUNT.size
        if len(view) < need:
            raise DecodeError("block truncated in its parents")
        parents = []
        for _ in range(n_parents):
            p_round, p_author = _REF.unpack_from(view, offset)
            digest = bytes(view[offset + _REF.size : offset + _REF_SIZE])
            parents.append(BlockRef(p_round, p_author, digest))
            offset += _REF_SIZE
        (n_payload,) = _COUNT.unpack_from(view, offset)
        offset += _COUNT.size
        if n_payload > MAX_PAYLOAD_IDS:
            raise DecodeError("too many payload ids")
        if len(view) != offset + 32 * n_payload + 64:
            raise DecodeError("block length does not match its counts")
        payload = tuple([bytes(view[i : i + 32])
                         for i in range(offset, offset + 32 * n_payload, 32)])
        offset += 32 * n_payload
        signature = bytes(view[offset : offset + 64])
        try:
            # Ranges, counts and id lengths hold by construction above; the order of
            # the parents is the one rule left. The encoding is canonical, so the
            # unsigned bytes are the input's and need no re-encoding.
            _check_parents(parents)
        except InvalidInput as exc:
            raise DecodeError(f"invalid block: {exc.detail}") from None
        unsigned = bytes(view[:offset])
        return cls._checked(epoch, round_, author, timestamp_ms, tuple(parents), payload,
                            signature, unsigned, hashlib.blake2b(unsigned, digest_size=32).digest())

    def verify_signature(self, public_key: Ed25519PublicKey) -> None:
        """Raise ``InvalidSignature`` unless the author's key signed this block."""
        try:
            public_key.verify(self.signature, block_signing_message(self.digest))
        except _CryptoInvalidSignature:
            raise InvalidSignature(
                "block signature does not verify", round=self.round, author=self.author
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Block):
            return NotImplemented
        return self.digest == other.digest and self.signature == other.signature

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return (
            f"Block(e{self.epoch}, r{self.round}, a{self.author}, {self.digest[:4].hex()}, "
            f"parents={len(self.parents)}, payload={len(self.payload)})"
        )
