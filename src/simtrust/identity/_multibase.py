"""Multibase (base58btc ``z``, base64url ``u``) and multicodec key prefixes.

Follows the Multibase draft (draft-multiformats-multibase, §2 and Appendix D.1)
and the multicodec table (``ed25519-pub`` 0xed, ``x25519-pub`` 0xec,
``ed25519-priv`` 0x1300) with unsigned-varint prefixes. Written by hand: the
encodings are a few lines and no maintained Python package covers them all.
"""

from __future__ import annotations

import base64
import binascii
import operator

from simtrust.errors import DecodeError

__all__ = [
    "ED25519_PRIV",
    "ED25519_PUB",
    "X25519_PUB",
    "b58decode",
    "b58encode",
    "b64url_decode",
    "b64url_encode",
    "multibase_decode",
    "multibase_encode",
    "multicodec_unwrap",
    "multicodec_wrap",
]

ED25519_PUB = 0xED
X25519_PUB = 0xEC
ED25519_PRIV = 0x1300

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B58_POWERS = [58**i for i in range(11)]
# bytes.translate table: a base58 character to its digit value, anything else to 0xFF.
_B58_TABLE = bytes(_B58_INDEX.get(chr(i), 0xFF) for i in range(256))
# Weights of the ten digits of a chunk, most significant first.
_B58_WEIGHTS = [58**i for i in range(9, -1, -1)]
#: Longest base58 text decoded: keys, signatures and ids are far shorter; this
#: keeps a hostile input from costing quadratic big-integer work.
_B58_MAX = 1024


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (leading zero bytes become ``1``)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58[rem])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    if len(text) > _B58_MAX:
        raise DecodeError("base58 text too long")
    if not text.isascii():
        raise DecodeError("invalid base58 character")
    digits = text.encode("ascii").translate(_B58_TABLE)
    if 0xFF in digits:
        raise DecodeError("invalid base58 character")
    # Ten digits at a time: a weighted sum of small integers evaluated in C,
    # then one big-integer step per chunk.
    head = len(digits) % 10 or 10
    number = sum(map(operator.mul, digits[:head], _B58_WEIGHTS[10 - head :]))
    for start in range(head, len(digits), 10):
        chunk = sum(map(operator.mul, digits[start : start + 10], _B58_WEIGHTS))
        number = number * _B58_POWERS[10] + chunk
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5, as JOSE and multibase ``u`` use)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise DecodeError("base64url text must be a string without padding")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise DecodeError("base64url text is not ASCII") from exc
    if len(raw) % 4 == 1:
        raise DecodeError("base64url text has an impossible length")
    if raw.strip(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise DecodeError("invalid base64url character")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("invalid base64url text") from exc


def multibase_encode(data: bytes, base: str = "z") -> str:
    if base == "z":
        return "z" + b58encode(data)
    if base == "u":
        return "u" + b64url_encode(data)
    raise DecodeError(f"unsupported multibase prefix {base!r}")


def multibase_decode(text: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise DecodeError("multibase value must be a non-empty string")
    if text[0] == "z":
        return b58decode(text[1:])
    if text[0] == "u":
        return b64url_decode(text[1:])
    raise DecodeError(f"unsupported multibase prefix {text[0]!r}")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def multicodec_wrap(codec: int, data: bytes) -> bytes:
    return _varint(codec) + data


def multicodec_unwrap(data: bytes) -> tuple[int, bytes]:
    """Split an unsigned-varint codec prefix (at most 3 bytes here) from ``data``."""
    value = 0
    for i, byte in enumerate(data[:3]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, data[i + 1 :]
    raise DecodeError("truncated or oversized multicodec prefix")
