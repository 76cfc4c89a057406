"""The channel message frame, byte by byte (docs/streams.md "Frame").

Every message of a channel travels as one frame: a fixed 160-byte header, the
payload, and an Ed25519 signature (RFC 8032) by the author over everything
before it. Integers are big-endian::

    offset size field
    0      4    magic "STF1"
    4      1    kind: 1 announce, 2 data, 3 keyload
    5      1    flags: bit 0 = payload encrypted under the channel key of key_epoch
    6      2    branch (0 is the main branch)
    8      8    seq: 0 for the announce, then 1, 2, ... per branch
    16     32   channel id (BLAKE2b-256 of the announce frame's signed bytes;
                all zero in the announce itself)
    48     32   prev: id of the previous message on the branch (the announce's id
                for seq 1 of a branch; zero in the announce)
    80     32   author: Ed25519 public key
    112    8    time: milliseconds since the Unix epoch, the author's clock
    120    4    key_epoch: which keyload's key encrypts the payload (0: none)
    124    4    payload length L (at most MAX_PAYLOAD)
    128    32   reserved, zero
    160    L    payload
    160+L  64   signature over bytes [0, 160+L)

A message's id is BLAKE2b-256 of the whole frame, signature included. The
format is hand-written because it must be fixed to the byte for anchoring and
proofs; a generic serializer would leave that to a library's version.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from simtrust.errors import DecodeError

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAME",
    "MAX_PAYLOAD",
    "Frame",
    "FrameKind",
    "decode_frame",
    "frame_id",
]

MAGIC = b"STF1"
HEADER_SIZE = 160
SIGNATURE_SIZE = 64
MAX_PAYLOAD = 64 * 1024
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + SIGNATURE_SIZE
ZERO = bytes(32)
_HEADER = struct.Struct(">4sBBHQ32s32s32sQII32s")
assert _HEADER.size == HEADER_SIZE


class FrameKind(IntEnum):
    ANNOUNCE = 1
    DATA = 2
    KEYLOAD = 3


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded (or about to be signed) channel message."""

    kind: FrameKind
    branch: int
    seq: int
    channel: bytes
    prev: bytes
    author: bytes
    time_ms: int
    key_epoch: int
    payload: bytes
    encrypted: bool = False
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """Header and payload: what the signature covers."""
        if len(self.payload) > MAX_PAYLOAD:
            raise DecodeError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        header = _HEADER.pack(
            MAGIC, int(self.kind), 1 if self.encrypted else 0, self.branch, self.seq,
            self.channel, self.prev, self.author, self.time_ms, self.key_epoch,
            len(self.payload), ZERO,
        )
        return header + self.payload

    def to_bytes(self) -> bytes:
        if len(self.signature) != SIGNATURE_SIZE:
            raise DecodeError("frame is not signed")
        return self.signed_bytes() + self.signature

    @property
    def message_id(self) -> bytes:
        return frame_id(self.to_bytes())


def frame_id(frame: bytes) -> bytes:
    """BLAKE2b-256 of a whole frame (signature included)."""
    return hashlib.blake2b(frame, digest_size=32).digest()


def decode_frame(data: bytes) -> Frame:
    """Parse one frame; :class:`DecodeError` names what is wrong (signature not checked)."""
    if len(data) < HEADER_SIZE + SIGNATURE_SIZE:
        raise DecodeError(f"frame of {len(data)} bytes is shorter than header and signature")
    if len(data) > MAX_FRAME:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    (magic, kind, flags, branch, seq, channel, prev, author, time_ms, key_epoch, length,
     reserved) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("not a simtrust stream frame (magic)")
    try:
        frame_kind = FrameKind(kind)
    except ValueError as exc:
        raise DecodeError(f"unknown frame kind {kind}") from exc
    if flags & ~1:
        raise DecodeError(f"unknown frame flags 0x{flags:02x}")
    if reserved != ZERO:
        raise DecodeError("reserved header bytes are not zero")
    if length > MAX_PAYLOAD:
        raise DecodeError(f"payload length {length} exceeds {MAX_PAYLOAD}")
    if len(data) != HEADER_SIZE + length + SIGNATURE_SIZE:
        raise DecodeError(
            f"frame holds {len(data)} bytes, header says {HEADER_SIZE + length + SIGNATURE_SIZE}"
        )
    if frame_kind is FrameKind.ANNOUNCE and (seq != 0 or channel != ZERO or prev != ZERO):
        raise DecodeError("an announce has seq 0 and zero channel and prev")
    if frame_kind is not FrameKind.ANNOUNCE and seq == 0:
        raise DecodeError("only the announce has seq 0")
    if bool(flags & 1) and key_epoch == 0:
        raise DecodeError("an encrypted payload names no key epoch")
    return Frame(
        kind=frame_kind, branch=branch, seq=seq, channel=channel, prev=prev, author=author,
        time_ms=time_ms, key_epoch=key_epoch, payload=bytes(data[HEADER_SIZE:HEADER_SIZE + length]),
        encrypted=bool(flags & 1), signature=bytes(data[HEADER_SIZE + length:]),
    )
