"""Input checks shared by the AuC modules: byte strings of the lengths the 3GPP specs fix.

Values are validated once, at the edge of each public function, and raise
:class:`simtrust.errors.InvalidInput` naming the field (never its value, which
may be a secret).
"""

from __future__ import annotations

from simtrust.errors import InvalidInput

__all__ = ["HMAC_IPAD", "HMAC_OPAD", "IPAD_FILL32", "OPAD_FILL32", "check_len", "parse_hex", "xor"]

# RFC 2104 pads as bytes.translate tables (key ⊕ 0x36 / key ⊕ 0x5c octet by octet), and
# the pad over the 32 zero octets that extend a 256-bit key (CK ‖ IK) to the SHA-256 block.
HMAC_IPAD = bytes(b ^ 0x36 for b in range(256))
HMAC_OPAD = bytes(b ^ 0x5C for b in range(256))
IPAD_FILL32 = b"\x36" * 32
OPAD_FILL32 = b"\x5c" * 32


def check_len(name: str, value: bytes, *sizes: int) -> bytes:
    """Return ``value`` if it is ``bytes`` of one of ``sizes`` octets, else raise."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInput(f"{name} must be bytes", field=name)
    value = bytes(value)
    if len(value) not in sizes:
        want = " or ".join(str(s * 8) for s in sizes)
        raise InvalidInput(
            f"{name} must be {want} bits, got {len(value) * 8}", field=name, bits=len(value) * 8
        )
    return value


def parse_hex(name: str, text: str, *sizes: int) -> bytes:
    """Decode hex text (optional ``0x``, spaces ignored) of one of ``sizes`` octets."""
    cleaned = text.strip().replace(" ", "").replace(":", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidInput(f"{name} is not valid hex", field=name) from None
    return check_len(name, raw, *sizes)


def xor(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two strings of equal length."""
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")
