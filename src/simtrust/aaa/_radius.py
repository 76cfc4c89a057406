"""RADIUS packets: decoding, encoding and the shared-secret cryptography.

RFC 2865 §3 (packet format, Response Authenticator), §5 (attributes, §5.2
User-Password hiding, §5.3 CHAP-Password, §5.26 Vendor-Specific), RFC 2866
§3 (Accounting-Request Authenticator), RFC 3579 §3.2 (Message-Authenticator,
HMAC-MD5), RFC 5176 §2.3 and §3.3 (CoA/Disconnect authenticators), RFC 2548
§2.4.2/§2.4.3 (MS-MPPE-Send/Recv-Key salt-encryption), TS 29.061 §16.4.7
(3GPP vendor-specific attributes, vendor 10415).

Hand-written because a server needs what no maintained Python library offers
together: strict bounds on untrusted datagrams (every length checked, no
attribute-length loop, a size limit), constant-time comparison of
authenticators and a decode path cheap enough for tens of thousands of
packets a second. pyrad (PyPI) is the independent peer in the tests. MD5 is
what the RFCs prescribe for these fields; it is used only there.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from simtrust.errors import DecodeError

__all__ = [
    "MAX_PACKET",
    "Attr",
    "Code",
    "MalformedPacket",
    "Packet",
    "Vendor",
    "accounting_authenticator",
    "carries",
    "chap_response",
    "decode",
    "empty_reply",
    "hide_password",
    "message_authenticator",
    "mppe_decrypt",
    "mppe_encrypt",
    "response_authenticator",
    "unhide_password",
    "vsa",
]

#: RFC 2865 §3: the maximum length of a RADIUS packet (and of a datagram we read).
MAX_PACKET = 4096
_HEADER = struct.Struct("!BBH16s")
_ZERO16 = bytes(16)


class Code:
    """Packet type codes (RFC 2865 §4, RFC 2866 §4, RFC 5176 §2)."""

    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    DISCONNECT_REQUEST = 40
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45


class Attr:
    """Attribute type numbers used here (RFC 2865 §5, RFC 2866 §5, RFC 2869, RFC 3579, RFC 5176)."""

    USER_NAME = 1
    USER_PASSWORD = 2
    CHAP_PASSWORD = 3
    NAS_IP_ADDRESS = 4
    NAS_PORT = 5
    SERVICE_TYPE = 6
    FRAMED_PROTOCOL = 7
    FRAMED_IP_ADDRESS = 8
    REPLY_MESSAGE = 18
    STATE = 24
    CLASS = 25
    VENDOR_SPECIFIC = 26
    SESSION_TIMEOUT = 27
    CALLED_STATION_ID = 30
    CALLING_STATION_ID = 31
    NAS_IDENTIFIER = 32
    ACCT_STATUS_TYPE = 40
    ACCT_DELAY_TIME = 41
    ACCT_INPUT_OCTETS = 42
    ACCT_OUTPUT_OCTETS = 43
    ACCT_SESSION_ID = 44
    ACCT_SESSION_TIME = 46
    ACCT_INPUT_PACKETS = 47
    ACCT_OUTPUT_PACKETS = 48
    ACCT_TERMINATE_CAUSE = 49
    ACCT_INPUT_GIGAWORDS = 52
    ACCT_OUTPUT_GIGAWORDS = 53
    EVENT_TIMESTAMP = 55
    CHAP_CHALLENGE = 60
    NAS_PORT_TYPE = 61
    EAP_MESSAGE = 79
    MESSAGE_AUTHENTICATOR = 80
    ERROR_CAUSE = 101


class Vendor:
    """Vendor ids and the vendor attributes used here."""

    TGPP = 10415  # TS 29.061 §16.4.7
    TGPP_IMSI = 1
    TGPP_SGSN_MCC_MNC = 18
    TGPP_IMEISV = 20
    TGPP_USER_LOCATION_INFO = 22
    MICROSOFT = 311  # RFC 2548
    MS_MPPE_SEND_KEY = 16
    MS_MPPE_RECV_KEY = 17


class MalformedPacket(DecodeError):
    """A datagram that is not a well-formed RADIUS packet (dropped, counted)."""

    code = "malformed-radius"


@dataclass(slots=True)
class Packet:
    """One RADIUS packet: code, identifier, authenticator, attributes in wire order."""

    code: int
    identifier: int
    authenticator: bytes = _ZERO16
    attributes: list[tuple[int, bytes]] = field(default_factory=list)
    _vendor_index: dict[tuple[int, int], bytes] | None = field(default=None, repr=False,
                                                                compare=False)

    def get(self, attr: int) -> bytes | None:
        """The first value of ``attr`` or None."""
        for kind, value in self.attributes:
            if kind == attr:
                return value
        return None

    def get_all(self, attr: int) -> list[bytes]:
        return [value for kind, value in self.attributes if kind == attr]

    def text(self, attr: int) -> str | None:
        value = self.get(attr)
        return None if value is None else value.decode("utf-8", "replace")

    def integer(self, attr: int) -> int | None:
        value = self.get(attr)
        if value is None or len(value) != 4:
            return None
        return int.from_bytes(value, "big")

    def vendor(self, vendor_id: int, vendor_type: int) -> bytes | None:
        """The first value of a vendor attribute (RFC 2865 §5.26 layout: type, length, value)."""
        found = self._vendor_index
        if found is None:
            found = {}
            for kind, value in self.attributes:
                if kind != 26 or len(value) < 6:  # Vendor-Specific
                    continue
                vendor = int.from_bytes(value[:4], "big")
                # sub-attributes from offset 4; stop at the first malformed one
                offset, size = 4, len(value)
                while offset + 2 <= size:
                    sub_type, length = value[offset], value[offset + 1]
                    end = offset + length
                    if length < 2 or end > size:
                        break
                    key = (vendor, sub_type)
                    if key not in found:
                        found[key] = value[offset + 2 : end]
                    offset = end
            self._vendor_index = found
        return found.get((vendor_id, vendor_type))

    def first(self) -> dict[int, bytes]:
        """Every attribute's first value, by type (one pass, for readers of many)."""
        found: dict[int, bytes] = {}
        for kind, value in self.attributes:
            found.setdefault(kind, value)
        return found

    def add(self, attr: int, value: bytes) -> None:
        if not 0 < len(value) <= 253:
            raise ValueError(f"attribute {attr} value must be 1..253 octets")
        self.attributes.append((attr, value))
        self._vendor_index = None

    def add_int(self, attr: int, value: int) -> None:
        self.add(attr, value.to_bytes(4, "big"))

    def add_vendor(self, vendor_id: int, vendor_type: int, value: bytes) -> None:
        self.add(Attr.VENDOR_SPECIFIC, vsa(vendor_id, vendor_type, value))

    def encode_attributes(self) -> bytes:
        return b"".join(bytes((kind, len(value) + 2)) + value for kind, value in self.attributes)

    def encode(self, authenticator: bytes | None = None) -> bytes:
        """The wire form with ``authenticator`` (default: the packet's own)."""
        body = self.encode_attributes()
        length = 20 + len(body)
        if length > MAX_PACKET:
            raise ValueError(f"RADIUS packet of {length} octets exceeds {MAX_PACKET}")
        auth = self.authenticator if authenticator is None else authenticator
        return _HEADER.pack(self.code, self.identifier, length, auth) + body

    def sign_response(self, request_authenticator: bytes, secret: bytes) -> bytes:
        """Encode a reply: Message-Authenticator (if present) then the Response Authenticator."""
        wire = (self._fill_message_authenticator(request_authenticator, secret)
                or self.encode(request_authenticator))
        auth = response_authenticator(wire, request_authenticator, secret)
        self.authenticator = auth
        return wire[:4] + auth + wire[20:]

    def sign_access_request(self, secret: bytes) -> bytes:
        """Encode an Access-Request: its Message-Authenticator (if present) over the
        packet with its own Request Authenticator (RFC 3579 §3.2)."""
        return self._fill_message_authenticator(self.authenticator, secret) or self.encode()

    def sign_request(self, secret: bytes) -> bytes:
        """Encode an Accounting/CoA/Disconnect request (RFC 2866 §3, RFC 5176 §2.3)."""
        wire = self._fill_message_authenticator(_ZERO16, secret) or self.encode(_ZERO16)
        auth = accounting_authenticator(wire, secret)
        self.authenticator = auth
        return wire[:4] + auth + wire[20:]

    def _fill_message_authenticator(self, authenticator: bytes, secret: bytes) -> bytes | None:
        """Set the Message-Authenticator (if the packet has one) and return the wire form
        with ``authenticator`` in its header, encoded once (the HMAC is spliced into the
        encoding it was computed over); None without a Message-Authenticator."""
        offset = 20
        for index, (kind, value) in enumerate(self.attributes):
            if kind == Attr.MESSAGE_AUTHENTICATOR:
                self.attributes[index] = (kind, _ZERO16)
                wire = self.encode(authenticator)
                mac = message_authenticator(wire, secret)
                self.attributes[index] = (kind, mac)
                return wire[: offset + 2] + mac + wire[offset + 18 :]
            offset += len(value) + 2
        return None


def vsa(vendor_id: int, vendor_type: int, value: bytes) -> bytes:
    """The value of a Vendor-Specific attribute holding one sub-attribute."""
    if len(value) > 247:
        raise ValueError("vendor attribute value must be at most 247 octets")
    return vendor_id.to_bytes(4, "big") + bytes((vendor_type, len(value) + 2)) + value


def decode(data: bytes) -> Packet:
    """Parse one datagram; :class:`MalformedPacket` on any inconsistency.

    Octets beyond the header's Length are padding and ignored (RFC 2865 §3);
    a datagram shorter than its Length, or an attribute running past it or
    shorter than 2 octets (which would loop), is malformed.
    """
    size = len(data)
    if size < 20:
        raise MalformedPacket("datagram shorter than a RADIUS header", reason="short")
    if size > MAX_PACKET:
        raise MalformedPacket("datagram larger than 4096 octets", reason="oversized")
    code, identifier, length, authenticator = _HEADER.unpack_from(data)
    if length < 20 or length > MAX_PACKET:
        raise MalformedPacket("RADIUS length out of range", reason="length")
    if length > size:
        raise MalformedPacket("datagram shorter than its RADIUS length", reason="truncated")
    attributes: list[tuple[int, bytes]] = []
    offset = 20
    while offset < length:
        if offset + 2 > length:
            raise MalformedPacket("attribute header truncated", reason="attribute")
        kind = data[offset]
        alen = data[offset + 1]
        if alen < 2:
            raise MalformedPacket("attribute length below 2", reason="attribute-length")
        end = offset + alen
        if end > length:
            raise MalformedPacket("attribute runs past the packet", reason="attribute")
        attributes.append((kind, data[offset + 2 : end]))
        offset = end
    return Packet(code, identifier, authenticator, attributes)


def carries(data: bytes, kind: int) -> bool:
    """Whether a datagram has an attribute of type ``kind`` (a quick scan that stops at
    the first inconsistency; :func:`decode` still validates the packet)."""
    end = min(len(data), int.from_bytes(data[2:4], "big"))
    offset = 20
    while offset + 2 <= end:
        if data[offset] == kind:
            return True
        alen = data[offset + 1]
        if alen < 2:
            return False
        offset += alen
    return False


def raw_packet(data: bytes) -> bytes:
    """``data`` cut to its RADIUS Length (call after :func:`decode` succeeded)."""
    return data[: int.from_bytes(data[2:4], "big")]


def response_authenticator(wire: bytes, request_authenticator: bytes, secret: bytes) -> bytes:
    """MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3)."""
    return hashlib.md5(  # noqa: S324 - RFC 2865 §3 prescribes MD5 here
        wire[:4] + request_authenticator + wire[20:] + secret
    ).digest()


def empty_reply(code: int, identifier: int, request_authenticator: bytes, secret: bytes
                ) -> bytes:
    """A signed reply without attributes (an Accounting-Response, RFC 2866 §4.2): the
    same octets as ``Packet(code, identifier).sign_response(...)``, built directly."""
    header = bytes((code, identifier, 0, 20))
    return header + hashlib.md5(  # noqa: S324 - RFC 2865 §3 prescribes MD5 here
        header + request_authenticator + secret).digest()


def accounting_authenticator(wire: bytes, secret: bytes) -> bytes:
    """MD5(Code+ID+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3, RFC 5176 §2.3)."""
    return hashlib.md5(wire[:4] + _ZERO16 + wire[20:] + secret).digest()  # noqa: S324 - RFC 2866 §3


def message_authenticator(wire: bytes, secret: bytes) -> bytes:
    """HMAC-MD5 over the packet as given (its Message-Authenticator zeroed) (RFC 3579 §3.2)."""
    return hmac.new(secret, wire, hashlib.md5).digest()


def verify_message_authenticator(wire: bytes, secret: bytes, authenticator: bytes) -> bool:
    """Check the Message-Authenticator of ``wire`` with the header authenticator replaced.

    ``authenticator`` is what the HMAC covers in the header: the Request
    Authenticator for Access-Request, sixteen zeros for Accounting, CoA and
    Disconnect requests, the request's authenticator for replies.
    """
    offset = 20
    found = -1
    while offset + 2 <= len(wire):
        kind, alen = wire[offset], wire[offset + 1]
        if kind == Attr.MESSAGE_AUTHENTICATOR:
            if alen != 18:
                return False
            found = offset
            break
        offset += alen
    if found < 0:
        return False
    given = wire[found + 2 : found + 18]
    zeroed = wire[:4] + authenticator + wire[20 : found + 2] + _ZERO16 + wire[found + 18 :]
    return hmac.compare_digest(given, message_authenticator(zeroed, secret))


def verify_request_authenticator(wire: bytes, secret: bytes) -> bool:
    """Accounting / CoA / Disconnect request authenticator check, constant time."""
    return hmac.compare_digest(wire[4:20], accounting_authenticator(wire, secret))


def verify_response(wire: bytes, request_authenticator: bytes, secret: bytes) -> bool:
    """Check a reply's Response Authenticator against the request it answers."""
    return hmac.compare_digest(
        wire[4:20], response_authenticator(wire, request_authenticator, secret)
    )


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ValueError("xor of blocks of different lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """User-Password hiding (RFC 2865 §5.2)."""
    if len(password) > 128:
        raise ValueError("User-Password must be at most 128 octets")
    padded = password + bytes(-len(password) % 16 or (16 if not password else 0))
    out = b""
    last = authenticator
    for i in range(0, len(padded), 16):
        block = _xor(padded[i : i + 16], hashlib.md5(secret + last).digest())  # noqa: S324 - RFC 2865 §5.2
        out += block
        last = block
    return out


def unhide_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Recover a User-Password; :class:`MalformedPacket` on a bad length."""
    if not hidden or len(hidden) % 16 or len(hidden) > 128:
        raise MalformedPacket("User-Password length must be a multiple of 16", reason="password")
    out = b""
    last = authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i : i + 16]
        out += _xor(block, hashlib.md5(secret + last).digest())  # noqa: S324 - RFC 2865 §5.2
        last = block
    return out.rstrip(b"\x00")


def chap_response(ident: int, password: bytes, challenge: bytes) -> bytes:
    """MD5(CHAP ident + secret + challenge) (RFC 1994 §4.1, RFC 2865 §5.3)."""
    return hashlib.md5(bytes((ident,)) + password + challenge).digest()  # noqa: S324 - RFC 1994


def mppe_encrypt(key: bytes, secret: bytes, request_authenticator: bytes, salt: bytes) -> bytes:
    """MS-MPPE-Send/Recv-Key value: salt + encrypted (length + key + padding) (RFC 2548 §2.4.2)."""
    if len(salt) != 2 or not salt[0] & 0x80:
        raise ValueError("MPPE salt must be 2 octets with the high bit set")
    plain = bytes((len(key),)) + key
    plain += bytes(-len(plain) % 16)
    out = b""
    last = request_authenticator + salt
    for i in range(0, len(plain), 16):
        block = _xor(plain[i : i + 16], hashlib.md5(secret + last).digest())  # noqa: S324 - RFC 2548
        out += block
        last = block
    return salt + out


def mppe_decrypt(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """Inverse of :func:`mppe_encrypt` (for tests and peers)."""
    salt, body = value[:2], value[2:]
    if len(body) % 16 or not body:
        raise MalformedPacket("MPPE key length must be a multiple of 16", reason="mppe")
    out = b""
    last = request_authenticator + salt
    for i in range(0, len(body), 16):
        block = body[i : i + 16]
        out += _xor(block, hashlib.md5(secret + last).digest())  # noqa: S324 - RFC 2548
        last = block
    return out[1 : 1 + out[0]]


def attributes_of(packet: Packet, kinds: Iterable[int]) -> dict[int, bytes]:
    wanted = set(kinds)
    return {kind: value for kind, value in packet.attributes if kind in wanted}
