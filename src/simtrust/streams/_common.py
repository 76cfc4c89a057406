"""Small helpers the streams service's parts share: identifiers and list limits."""

from __future__ import annotations

import base64

from simtrust.errors import InvalidInput

__all__ = ["MAX_LIST", "b64", "cid", "hex_id"]

#: At most this many rows in one listing.
MAX_LIST = 1000


def b64(data: bytes) -> str:
    """``data`` in standard base64 (RFC 4648 §4)."""
    return base64.b64encode(data).decode()


def hex_id(value: str, what: str) -> bytes:
    """A 32-byte identifier given as 64 hex digits (InvalidInput naming ``what`` otherwise)."""
    if len(value) != 64:
        raise InvalidInput(f"{what} is 64 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} is 64 hex digits") from exc


def cid(channel_id: str) -> str:
    """A channel id as stored: 64 lower-case hex digits (InvalidInput otherwise)."""
    return hex_id(channel_id, "a channel id").hex()
