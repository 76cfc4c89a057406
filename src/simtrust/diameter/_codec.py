"""Diameter messages and AVPs on the wire (RFC 6733 §3 header, §4 AVPs, §4.4 grouped).

Hand-written: the maintained PyPI codecs (``python-diameter``, ``pydiameter``)
build rich per-command objects that are fine for a client but cost several
times more per message than a server answering thousands of AIRs a second can
spend, and they raise generic exceptions on bad input where a server must know
*which* RFC 6733 §7.1 result code to answer (5014 invalid AVP length, 5015
invalid message length, 5001 unsupported mandatory AVP, 5004 invalid value,
3008/3009 bad bits) and which AVP to put in Failed-AVP (§7.5). The tests use
``python-diameter`` as the independent peer.

Decoding validates every length at every nesting level before anything reads
a value; grouped AVPs nest at most :data:`MAX_DEPTH` levels and a message
holds at most :data:`MAX_AVPS` AVPs, so hostile input costs bounded work.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from simtrust.diameter._dictionary import AVPS, AvpType

__all__ = [
    "FLAG_ERROR",
    "FLAG_PROXIABLE",
    "FLAG_REQUEST",
    "FLAG_RETRANSMIT",
    "HEADER_LEN",
    "MAX_AVPS",
    "MAX_DEPTH",
    "MAX_MESSAGE",
    "Avp",
    "DiameterError",
    "Message",
    "decode_avps",
    "decode_message",
    "encode_avp",
    "parse_header",
]

HEADER_LEN = 20
#: Largest message accepted (the 24-bit length field allows 16 MiB; S6a needs a few KiB).
MAX_MESSAGE = 65_536
MAX_DEPTH = 8
MAX_AVPS = 1_024

FLAG_REQUEST = 0x80
FLAG_PROXIABLE = 0x40
FLAG_ERROR = 0x20
FLAG_RETRANSMIT = 0x10
_CMD_RESERVED = 0x0F

AVP_VENDOR = 0x80
AVP_MANDATORY = 0x40
AVP_PROTECTED = 0x20
_AVP_RESERVED = 0x1F

_HDR = struct.Struct(">I I I I I")
_new_avp = tuple.__new__
_AVP = struct.Struct(">I I")
_VAVP = struct.Struct(">I I I")
#: Padding after a value of n octets, by n mod 4 (RFC 6733 §4.1).
_PADS = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I32 = struct.Struct(">i")


class DiameterError(Exception):
    """A message that cannot be served: the result code to answer and the offending AVP.

    ``failed_avp`` is the wire form of the AVP to quote in Failed-AVP (RFC 6733
    §7.5), or None; ``fatal`` means the byte stream cannot be trusted any more
    (the connection is closed after the answer).
    """

    def __init__(
        self, result_code: int, detail: str, *, failed_avp: bytes | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(detail)
        self.result_code = result_code
        self.detail = detail
        self.failed_avp = failed_avp
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"DiameterError({self.result_code}, {self.detail!r})"


class Avp(NamedTuple):
    """One AVP: code, vendor (0 for IETF), M-bit, and its raw value octets.

    A named tuple rather than a frozen dataclass: the decoder builds one per AVP
    received (``tuple.__new__`` in C) and answers build one per AVP sent, so
    construction is on the hot path of every message.
    """

    code: int
    data: bytes
    vendor: int = 0
    mandatory: bool = True

    # -- construction ------------------------------------------------------

    @classmethod
    def u32(cls, code: int, value: int, vendor: int = 0, mandatory: bool = True) -> Avp:
        return cls(code, _U32.pack(value), vendor, mandatory)

    @classmethod
    def u64(cls, code: int, value: int, vendor: int = 0, mandatory: bool = True) -> Avp:
        return cls(code, _U64.pack(value), vendor, mandatory)

    @classmethod
    def text(cls, code: int, value: str, vendor: int = 0, mandatory: bool = True) -> Avp:
        return cls(code, value.encode("utf-8"), vendor, mandatory)

    @classmethod
    def address(cls, code: int, value: str, vendor: int = 0, mandatory: bool = True) -> Avp:
        """An Address AVP (RFC 6733 §4.3.1): family 1 (IPv4) or 2 (IPv6), then the octets."""
        ip = ipaddress.ip_address(value)
        family = 1 if ip.version == 4 else 2
        return cls(code, struct.pack(">H", family) + ip.packed, vendor, mandatory)

    @classmethod
    def grouped(
        cls, code: int, avps: Iterable[Avp], vendor: int = 0, mandatory: bool = True
    ) -> Avp:
        return cls(code, b"".join(a.encode() for a in avps), vendor, mandatory)

    # -- reading -----------------------------------------------------------

    def as_u32(self) -> int:
        if len(self.data) != 4:
            raise DiameterError(5014, f"AVP {self.code} must be 4 octets",
                                failed_avp=self.encode())
        return int(_U32.unpack(self.data)[0])

    def as_i32(self) -> int:
        if len(self.data) != 4:
            raise DiameterError(5014, f"AVP {self.code} must be 4 octets",
                                failed_avp=self.encode())
        return int(_I32.unpack(self.data)[0])

    def as_u64(self) -> int:
        if len(self.data) != 8:
            raise DiameterError(5014, f"AVP {self.code} must be 8 octets",
                                failed_avp=self.encode())
        return int(_U64.unpack(self.data)[0])

    def as_text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise DiameterError(5004, f"AVP {self.code} is not UTF-8",
                                failed_avp=self.encode()) from None

    def as_address(self) -> str:
        if len(self.data) == 6 and self.data[:2] == b"\x00\x01":
            return str(ipaddress.IPv4Address(self.data[2:]))
        if len(self.data) == 18 and self.data[:2] == b"\x00\x02":
            return str(ipaddress.IPv6Address(self.data[2:]))
        raise DiameterError(5004, f"AVP {self.code} is not an IPv4/IPv6 address",
                            failed_avp=self.encode())

    def children(self) -> list[Avp]:
        """The AVPs of a grouped AVP (already validated when the message was decoded)."""
        return decode_avps(self.data, 1)

    def encode(self) -> bytes:
        return encode_avp(*self)


def encode_avp(code: int, data: bytes, vendor: int = 0, mandatory: bool = True) -> bytes:
    """The wire form of one AVP (RFC 6733 §4.1) without building an :class:`Avp`."""
    size = len(data)
    pad = _PADS[size & 3]  # the header is a multiple of 4 octets
    if vendor:
        word = (0xC0000000 if mandatory else 0x80000000) | (12 + size)
        return _VAVP.pack(code, word, vendor) + data + pad
    return _AVP.pack(code, (0x40000000 if mandatory else 0) | (8 + size)) + data + pad


def find(avps: Iterable[Avp], code: int, vendor: int = 0) -> Avp | None:
    for avp in avps:
        if avp.code == code and avp.vendor == vendor:
            return avp
    return None


@dataclass(slots=True)
class Message:
    """A Diameter message: command, flags, application, hop-by-hop and end-to-end ids, AVPs."""

    code: int
    flags: int
    app_id: int
    hop_by_hop: int
    end_to_end: int
    avps: list[Avp] = field(default_factory=list)

    @property
    def is_request(self) -> bool:
        return bool(self.flags & FLAG_REQUEST)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)

    def find(self, code: int, vendor: int = 0) -> Avp | None:
        return find(self.avps, code, vendor)

    def find_all(self, code: int, vendor: int = 0) -> Iterator[Avp]:
        return (a for a in self.avps if a.code == code and a.vendor == vendor)

    def text(self, code: int, vendor: int = 0) -> str | None:
        avp = self.find(code, vendor)
        return None if avp is None else avp.as_text()

    def u32(self, code: int, vendor: int = 0) -> int | None:
        avp = self.find(code, vendor)
        return None if avp is None else avp.as_u32()

    def encode(self) -> bytes:
        body = b"".join(a.encode() for a in self.avps)
        length = HEADER_LEN + len(body)
        return _HDR.pack(
            (1 << 24) | length, (self.flags << 24) | self.code, self.app_id,
            self.hop_by_hop, self.end_to_end,
        ) + body


def parse_header(header: bytes) -> tuple[int, int, int, int, int, int]:
    """(length, flags, code, app_id, hop_by_hop, end_to_end) of a 20-octet header.

    Raises :class:`DiameterError` 5011 for another version, 5015 for a length
    that cannot frame a message, 3008 for reserved command bits (all fatal
    except 3008: the stream is still in step).
    """
    if len(header) != HEADER_LEN:
        raise DiameterError(5015, "truncated header", fatal=True)
    word0, word1, app_id, hbh, e2e = _HDR.unpack(header)
    version, length = word0 >> 24, word0 & 0xFFFFFF
    flags, code = word1 >> 24, word1 & 0xFFFFFF
    if version != 1:
        raise DiameterError(5011, f"unsupported Diameter version {version}", fatal=True)
    if length < HEADER_LEN or length % 4 or length > MAX_MESSAGE:
        raise DiameterError(5015, f"message length {length} is invalid", fatal=True)
    return length, flags, code, app_id, hbh, e2e


def decode_message(data: bytes) -> Message:
    """Decode one whole message (header and AVPs), validating every length."""
    length, flags, code, app_id, hbh, e2e = parse_header(data[:HEADER_LEN])
    if length != len(data):
        raise DiameterError(5015, f"message length {length} does not match {len(data)} octets",
                            fatal=True)
    message = Message(code, flags, app_id, hbh, e2e)
    if flags & _CMD_RESERVED or (flags & FLAG_REQUEST and flags & FLAG_ERROR):
        raise DiameterError(3008, "reserved or contradictory command flags set")
    message.avps = decode_avps(data[HEADER_LEN:], 0)
    return message


def decode_avps(data: bytes, depth: int) -> list[Avp]:
    """Decode a run of AVPs; grouped AVPs known to the dictionary are checked recursively.

    The walk runs in C (:mod:`simtrust.diameter._native`) where it is built; when it
    finds anything wrong it returns None and the Python walk below, the reference,
    decodes the octets again and raises the RFC 6733 error.
    """
    if _native_walk is not None:
        avps = _native_walk(data, depth)
        if avps is not None:
            return avps
    return decode_avps_py(data, depth)


def decode_avps_py(data: bytes, depth: int) -> list[Avp]:
    """The Python walk of :func:`decode_avps` (every check and error of RFC 6733 §7)."""
    if depth > MAX_DEPTH:
        raise DiameterError(5004, f"grouped AVPs nested deeper than {MAX_DEPTH}")
    if type(data) is not bytes:
        data = bytes(data)
    out: list[Avp] = []
    append = out.append
    checks = _CHECKS
    unpack, unpack_vendor = _AVP.unpack_from, _U32.unpack_from
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 8:
            raise DiameterError(5014, "truncated AVP header", failed_avp=data[pos:])
        code, word = unpack(data, pos)
        flags, length = word >> 24, word & 0xFFFFFF
        if flags & AVP_VENDOR:
            head = 12
            if length < 12 or pos + length > end:
                # Quote the header only: the stated length cannot be trusted (§7.5).
                raise DiameterError(5014, f"AVP {code} has an invalid length {length}",
                                    failed_avp=data[pos:pos + min(12, end - pos)])
            vendor = unpack_vendor(data, pos + 8)[0]
        else:
            head, vendor = 8, 0
            if length < 8 or pos + length > end:
                raise DiameterError(5014, f"AVP {code} has an invalid length {length}",
                                    failed_avp=data[pos:pos + 8])
        if flags & _AVP_RESERVED:
            raise DiameterError(3009, f"AVP {code} has reserved flag bits set",
                                failed_avp=data[pos:pos + length])
        value = data[pos + head:pos + length]
        avp = _new_avp(Avp, (code, value, vendor, flags & AVP_MANDATORY != 0))
        check = checks.get((code, vendor))
        if check is None:
            if flags & AVP_MANDATORY:
                raise DiameterError(5001, f"AVP {code} (vendor {vendor}) is not supported",
                                    failed_avp=data[pos:pos + length])
        elif check == _UTF8:  # the commonest kind, checked inline
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise DiameterError(5004, f"AVP {code} is not UTF-8",
                                    failed_avp=avp.encode()) from None
        elif check > 0:
            if length - head != check:
                raise DiameterError(5014, f"AVP {code} must be {check} octets",
                                    failed_avp=avp.encode())
        elif check:
            _check_value(avp, check, depth)
        append(avp)
        if len(out) > MAX_AVPS:
            raise DiameterError(5009, f"more than {MAX_AVPS} AVPs")
        start, pos = pos, pos + ((length + 3) & ~3)
        if pos > end:
            raise DiameterError(5014, f"AVP {code} padding runs past the message",
                                failed_avp=data[start:start + length])
    return out


_FIXED = {AvpType.U32: 4, AvpType.I32: 4, AvpType.ENUM: 4, AvpType.U64: 8}
# Value checks by kind, resolved once per dictionary AVP (no enum work per AVP decoded):
# the fixed size, else grouped / address / UTF-8 text; 0 for octets (nothing to check).
_GROUPED, _ADDRESS, _UTF8 = -1, -2, -3
_CHECK_OF = {**_FIXED, AvpType.GROUPED: _GROUPED, AvpType.ADDRESS: _ADDRESS,
             AvpType.TEXT: _UTF8, AvpType.IDENTITY: _UTF8, AvpType.OCTETS: 0}
_CHECKS: dict[tuple[int, int], int] = {key: _CHECK_OF[entry[1]] for key, entry in AVPS.items()}


_native_walk: Callable[[bytes, int], list[Avp] | None] | None
try:
    from simtrust.diameter import _native
except ImportError:  # the extension is optional (setup.py); the Python walk serves
    _native_walk = None
else:
    _native.configure(_CHECKS, Avp, MAX_DEPTH, MAX_AVPS)
    _native_walk = _native.decode_avps


def _check_value(avp: Avp, check: int, depth: int) -> None:
    if check > 0:
        if len(avp.data) != check:
            raise DiameterError(5014, f"AVP {avp.code} must be {check} octets",
                                failed_avp=avp.encode())
    elif check == _GROUPED:
        decode_avps_py(avp.data, depth + 1)
    elif check == _ADDRESS:
        avp.as_address()
    elif check == _UTF8:
        avp.as_text()
