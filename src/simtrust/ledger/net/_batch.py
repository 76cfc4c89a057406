"""The batch encoding clients use to submit messages to a validator (``docs/network.md``).

Each message is prefixed by its length as a big-endian u32; the body of
``POST /v1/ledger/network/submit`` is such a batch. The decoder takes
untrusted bytes and raises ``DecodeError`` or ``PayloadTooLarge``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from simtrust.errors import DecodeError, PayloadTooLarge

__all__ = ["MAX_BATCH", "decode_batch", "encode_batch"]

MAX_BATCH = 4096
_U32 = struct.Struct(">I")


def encode_batch(raws: Sequence[bytes]) -> bytes:
    return b"".join(_U32.pack(len(r)) + r for r in raws)


def decode_batch(body: bytes) -> list[bytes]:
    """Split a length-prefixed batch of untrusted bytes (at most ``MAX_BATCH`` messages)."""
    out: list[bytes] = []
    pos, n = 0, len(body)
    while pos < n:
        if pos + 4 > n:
            raise DecodeError("batch truncated in a length prefix")
        (size,) = _U32.unpack_from(body, pos)
        pos += 4
        if pos + size > n:
            raise DecodeError("batch truncated in a message")
        out.append(body[pos : pos + size])
        pos += size
        if len(out) > MAX_BATCH:
            raise PayloadTooLarge(f"at most {MAX_BATCH} messages per batch")
    return out
