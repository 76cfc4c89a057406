"""CoAP messages (RFC 7252 §3, §5.10, §12) with Observe (RFC 7641) and Block (RFC 7959) options.

Written by hand because the server runs CoAP over its own DTLS sessions
(python-mbedtls buffers, see docs/decisions/devices-dtls.md) and needs only the
message layer: encoding, strict decoding of untrusted datagrams and the option
accessors LwM2M uses. Decoding refuses everything §3 calls a message format error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from simtrust.errors import DecodeError

__all__ = [
    "CON",
    "MAX_MESSAGE",
    "Code",
    "Message",
    "MsgType",
    "Opt",
    "decode_message",
    "encode_message",
    "uint_option",
]

#: Largest datagram accepted or produced (RFC 7252 §4.6: fit one IP packet; 1152 + headers).
MAX_MESSAGE = 1280


class MsgType(IntEnum):
    """RFC 7252 §3: the 2-bit message type."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


CON = MsgType.CON


class Code(IntEnum):
    """Method and response codes (RFC 7252 §12.1, RFC 7959 §2.9, RFC 8132)."""

    EMPTY = 0x00
    GET = 0x01
    POST = 0x02
    PUT = 0x03
    DELETE = 0x04
    FETCH = 0x05
    IPATCH = 0x07
    CREATED = 0x41
    DELETED = 0x42
    VALID = 0x43
    CHANGED = 0x44
    CONTENT = 0x45
    CONTINUE = 0x5F
    BAD_REQUEST = 0x80
    UNAUTHORIZED = 0x81
    BAD_OPTION = 0x82
    FORBIDDEN = 0x83
    NOT_FOUND = 0x84
    METHOD_NOT_ALLOWED = 0x85
    NOT_ACCEPTABLE = 0x86
    REQUEST_ENTITY_INCOMPLETE = 0x88
    PRECONDITION_FAILED = 0x8C
    REQUEST_ENTITY_TOO_LARGE = 0x8D
    UNSUPPORTED_CONTENT_FORMAT = 0x8F
    TOO_MANY_REQUESTS = 0x9D
    INTERNAL_SERVER_ERROR = 0xA0
    NOT_IMPLEMENTED = 0xA1
    SERVICE_UNAVAILABLE = 0xA3

    @property
    def dotted(self) -> str:
        return f"{self >> 5}.{self & 0x1F:02d}"


class Opt(IntEnum):
    """Option numbers used here (RFC 7252 §12.2, RFC 7641 §7, RFC 7959 §7)."""

    IF_MATCH = 1
    URI_HOST = 3
    ETAG = 4
    IF_NONE_MATCH = 5
    OBSERVE = 6
    URI_PORT = 7
    LOCATION_PATH = 8
    URI_PATH = 11
    CONTENT_FORMAT = 12
    MAX_AGE = 14
    URI_QUERY = 15
    ACCEPT = 17
    LOCATION_QUERY = 20
    BLOCK2 = 23
    BLOCK1 = 27
    SIZE2 = 28
    PROXY_URI = 35
    PROXY_SCHEME = 39
    SIZE1 = 60


#: Options this endpoint understands; an unknown critical (odd) option is refused (§5.4.1).
KNOWN_OPTIONS = frozenset(int(o) for o in Opt)
_REPEATABLE = frozenset({Opt.IF_MATCH, Opt.ETAG, Opt.LOCATION_PATH, Opt.URI_PATH,
                         Opt.URI_QUERY, Opt.LOCATION_QUERY})


def uint_option(value: int) -> bytes:
    """A uint option value in the fewest bytes (§3.2: zero is the empty string)."""
    if value < 0:
        raise ValueError("uint options are non-negative")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True, slots=True)
class Message:
    """One CoAP message; ``options`` are (number, value) pairs in the order they apply."""

    mtype: MsgType
    code: int
    mid: int
    token: bytes = b""
    options: tuple[tuple[int, bytes], ...] = ()
    payload: bytes = field(default=b"", repr=False)

    # -- accessors --------------------------------------------------------------------

    def values(self, number: int) -> list[bytes]:
        return [v for n, v in self.options if n == number]

    def first(self, number: int) -> bytes | None:
        for n, v in self.options:
            if n == number:
                return v
        return None

    def uint(self, number: int) -> int | None:
        raw = self.first(number)
        if raw is None:
            return None
        if len(raw) > 4:
            raise DecodeError("uint option longer than four bytes", reason="coap-option")
        return int.from_bytes(raw, "big")

    @property
    def path(self) -> list[str]:
        return [_text(v) for v in self.values(Opt.URI_PATH)]

    @property
    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for raw in self.values(Opt.URI_QUERY):
            key, _, value = _text(raw).partition("=")
            out[key] = value
        return out

    @property
    def location(self) -> list[str]:
        return [_text(v) for v in self.values(Opt.LOCATION_PATH)]

    @property
    def content_format(self) -> int | None:
        return self.uint(Opt.CONTENT_FORMAT)

    @property
    def observe(self) -> int | None:
        return self.uint(Opt.OBSERVE)

    @property
    def is_request(self) -> bool:
        return 1 <= self.code <= 31

    @property
    def is_response(self) -> bool:
        return self.code >= 64

    def reply(self, code: int, payload: bytes = b"",
              options: Iterable[tuple[int, bytes]] = ()) -> Message:
        """The piggybacked response to a CON (ACK, same MID) or a NON response to a NON."""
        mtype = MsgType.ACK if self.mtype == MsgType.CON else MsgType.NON
        return Message(mtype, code, self.mid, self.token, tuple(options), payload)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("string option is not UTF-8", reason="coap-option") from exc


def _ext(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, (value - 269).to_bytes(2, "big")


def encode_message(msg: Message) -> bytes:
    """The wire form (§3); options are sorted by number, stable for repeated ones."""
    if len(msg.token) > 8:
        raise ValueError("token longer than eight bytes")
    out = bytearray((0x40 | (msg.mtype << 4) | len(msg.token), msg.code))
    out += msg.mid.to_bytes(2, "big")
    out += msg.token
    last = 0
    for number, value in sorted(msg.options, key=lambda o: o[0]):
        dn, dext = _ext(number - last)
        ln, lext = _ext(len(value))
        out.append((dn << 4) | ln)
        out += dext + lext + value
        last = number
    if msg.payload:
        out.append(0xFF)
        out += msg.payload
    return bytes(out)


def _read_ext(nibble: int, data: bytes, pos: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos >= len(data):
            raise DecodeError("truncated option", reason="coap-format")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise DecodeError("truncated option", reason="coap-format")
        return int.from_bytes(data[pos:pos + 2], "big") + 269, pos + 2
    raise DecodeError("reserved option nibble 15", reason="coap-format")


_MTYPES = tuple(MsgType(i) for i in range(4))


def decode_message(data: bytes) -> Message:
    """Parse one datagram; :class:`DecodeError` for any message format error (§3, §4.2)."""
    size = len(data)
    if size < 4:
        raise DecodeError("CoAP message shorter than its header", reason="coap-format")
    if size > MAX_MESSAGE:
        raise DecodeError("CoAP message over the size limit", reason="coap-size")
    first = data[0]
    if first >> 6 != 1:
        raise DecodeError("unknown CoAP version", reason="coap-version")
    mtype = _MTYPES[(first >> 4) & 0x3]
    tkl = first & 0x0F
    if tkl > 8:
        raise DecodeError("token length 9-15 is reserved", reason="coap-format")
    code = data[1]
    mid = (data[2] << 8) | data[3]
    pos = 4 + tkl
    if pos > size:
        raise DecodeError("truncated token", reason="coap-format")
    token = bytes(data[4:pos])
    if code == 0 and (tkl or size > 4):  # Code.EMPTY
        raise DecodeError("an empty message has no token, options or payload",
                          reason="coap-format")
    if 0x20 <= code < 0x40 or 0xC0 <= code:
        raise DecodeError("reserved code class", reason="coap-format")
    options: list[tuple[int, bytes]] = []
    number = 0
    payload = b""
    while pos < size:
        byte = data[pos]
        pos += 1
        if byte == 0xFF:
            payload = bytes(data[pos:])
            if not payload:
                raise DecodeError("payload marker with no payload", reason="coap-format")
            break
        delta = byte >> 4
        length = byte & 0x0F
        if delta >= 13:
            delta, pos = _read_ext(delta, data, pos)
        if length >= 13:
            length, pos = _read_ext(length, data, pos)
        number += delta
        end = pos + length
        if end > size:
            raise DecodeError("option runs past the message", reason="coap-format")
        options.append((number, bytes(data[pos:end])))
        pos = end
    return Message(mtype, code, mid, token, tuple(options), payload)


def critical_unknown(msg: Message) -> int | None:
    """The first unrecognised critical option (odd number, §5.4.1), if any."""
    for number, _ in msg.options:
        if number & 1 and number not in KNOWN_OPTIONS:
            return number
    return None


def repeated_single(msg: Message) -> int | None:
    """A non-repeatable option that occurs twice (treated as unrecognised, §5.4.5)."""
    seen: set[int] = set()
    for number, _ in msg.options:
        if number in seen and number not in _REPEATABLE and number in KNOWN_OPTIONS:
            return number
        seen.add(number)
    return None
