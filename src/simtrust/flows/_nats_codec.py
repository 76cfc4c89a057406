"""Binary encoding of a batch of SIM-mapped flow records, one JetStream message per batch.

Format version 1 (``docs/decisions/policy-nats-batch-encoding.md``), all integers
big-endian; field meanings are the IPFIX information elements of RFC 7012 that
:class:`~simtrust.domain.FlowRecord` carries::

    header   "STFB" | version u8 = 1 | flags u8 = 0 | partitions u16 | partition u16
             | records u16 | strings u16
    strings  strings x (length u8 | UTF-8 bytes)      exporter names and IMSIs, each once
    records  records x (start f64 | end f64 | src_port u16 | dst_port u16 | protocol u8
             | tcp_flags u8 | kind u8 | reserved u8 = 0 | packets u64 | octets u64
             | exporter u16 | imsi u16 | src 4/16 bytes | dst 4/16 bytes)

``kind`` bit 0: source is IPv6, bit 1: destination is IPv6, bit 2: the SIM holds
the source address (uplink), bit 3: ``imsi`` names a string (else the flow is
unmapped and ``imsi`` is 0); other bits are reserved and must be zero. The
decoder is strict: any deviation (unknown version, reserved bits, an index out
of range, a non-digit IMSI, non-finite time, trailing bytes) raises
:class:`BatchDecodeError` with a reason, so a corrupt or hostile message is
terminated instead of half-applied. Written by hand over :mod:`struct`: no
serialisation library gives a fixed, versioned layout this small and fast.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Sequence
from typing import NamedTuple

from simtrust.domain import FlowRecord, ImsiDigits
from simtrust.errors import DecodeError, InvalidInput

__all__ = [
    "BATCH_MAGIC",
    "BATCH_VERSION",
    "MAX_BATCH_RECORDS",
    "BatchDecodeError",
    "FlowBatch",
    "MappedFlow",
    "decode_batch",
    "encode_batch",
]

BATCH_MAGIC = b"STFB"
BATCH_VERSION = 1
MAX_BATCH_RECORDS = 8192

_HEADER = struct.Struct("!4sBBHHHH")
_RECORD = struct.Struct("!ddHHBBBBQQHH")
_SRC6, _DST6, _UPLINK, _MAPPED = 1, 2, 4, 8
_KNOWN_KIND = _SRC6 | _DST6 | _UPLINK | _MAPPED


class BatchDecodeError(DecodeError):
    """A flow batch message that is not valid version-1 encoding; ``reason`` says why."""

    code = "flow-batch-malformed"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class MappedFlow(NamedTuple):
    """A flow record and whether its SIM (``record.imsi``) holds the source address."""

    record: FlowRecord
    uplink: bool


class FlowBatch(NamedTuple):
    """A decoded message: the partition it was published for and its flows."""

    partitions: int
    partition: int
    flows: list[MappedFlow]


def _pack_addr(text: str) -> tuple[bytes, bool]:
    try:
        if ":" in text:
            return socket.inet_pton(socket.AF_INET6, text), True
        return socket.inet_pton(socket.AF_INET, text), False
    except OSError as exc:
        raise InvalidInput(f"flow address {text!r} is not an IP address",
                           field="address") from exc


def encode_batch(flows: Sequence[MappedFlow], *, partition: int, partitions: int) -> bytes:
    """One message for ``flows`` (1..MAX_BATCH_RECORDS) of ``partition`` of ``partitions``."""
    if not 1 <= partitions <= 0xFFFF or not 0 <= partition < partitions:
        raise InvalidInput(f"partition {partition} of {partitions} is out of range",
                           field="partition")
    if not 1 <= len(flows) <= MAX_BATCH_RECORDS:
        raise InvalidInput(f"a batch holds 1..{MAX_BATCH_RECORDS} records, not {len(flows)}",
                           field="flows")
    index: dict[str, int] = {}
    strings: list[bytes] = []

    def intern(text: str) -> int:
        at = index.get(text)
        if at is None:
            raw = text.encode()
            if len(raw) > 255:
                raise InvalidInput("exporter name or IMSI longer than 255 bytes",
                                   field="exporter")
            at = index[text] = len(strings)
            strings.append(bytes((len(raw),)) + raw)
        return at

    body: list[bytes] = []
    pack = _RECORD.pack
    for record, uplink in flows:
        src, src6 = _pack_addr(record.src_addr)
        dst, dst6 = _pack_addr(record.dst_addr)
        kind = (_SRC6 if src6 else 0) | (_DST6 if dst6 else 0)
        imsi_at = 0
        if record.imsi is not None:
            if not (record.imsi.isascii() and record.imsi.isdigit()
                    and 5 <= len(record.imsi) <= 15):
                raise InvalidInput(f"IMSI {record.imsi!r} is not 5-15 digits", field="imsi")
            imsi_at = intern(record.imsi)
            kind |= _MAPPED | (_UPLINK if uplink else 0)
        if not (math.isfinite(record.start) and math.isfinite(record.end)):
            raise InvalidInput("flow times must be finite", field="start")
        try:
            body.append(pack(record.start, record.end, record.src_port, record.dst_port,
                             record.protocol, record.tcp_flags, kind, 0, record.packets,
                             record.octets, intern(record.exporter), imsi_at) + src + dst)
        except struct.error as exc:
            raise InvalidInput(f"flow field out of range: {exc}", field="flow") from exc
    if len(strings) > 0xFFFF:
        raise InvalidInput("too many distinct strings in one batch", field="flows")
    head = _HEADER.pack(BATCH_MAGIC, BATCH_VERSION, 0, partitions, partition, len(flows),
                        len(strings))
    return head + b"".join(strings) + b"".join(body)


def decode_batch(data: bytes) -> FlowBatch:
    """Parse one message; raise :class:`BatchDecodeError` for anything but valid v1."""
    view = memoryview(data)
    size = len(view)
    if size < _HEADER.size:
        raise BatchDecodeError("short_header", f"{size} bytes, header needs {_HEADER.size}")
    magic, version, flags, partitions, partition, count, n_strings = _HEADER.unpack_from(view)
    if magic != BATCH_MAGIC:
        raise BatchDecodeError("bad_magic", "not a simtrust flow batch")
    if version != BATCH_VERSION:
        raise BatchDecodeError("bad_version", f"version {version}, this decoder reads 1")
    if flags:
        raise BatchDecodeError("reserved_flags", f"reserved header flags {flags:#x} set")
    if partitions == 0 or partition >= partitions:
        raise BatchDecodeError("bad_partition", f"partition {partition} of {partitions}")
    if not 1 <= count <= MAX_BATCH_RECORDS:
        raise BatchDecodeError("bad_count", f"{count} records")
    at = _HEADER.size
    strings: list[str] = []
    for _ in range(n_strings):
        if at >= size:
            raise BatchDecodeError("string_truncated", "string table runs past the message")
        length = view[at]
        end = at + 1 + length
        if end > size:
            raise BatchDecodeError("string_truncated", "string table runs past the message")
        try:
            strings.append(bytes(view[at + 1:end]).decode())
        except UnicodeDecodeError as exc:
            raise BatchDecodeError("bad_string", "string is not UTF-8") from exc
        at = end
    if len(set(strings)) != len(strings):
        raise BatchDecodeError("duplicate_string", "a string appears twice in the table")
    flows: list[MappedFlow] = []
    unpack = _RECORD.unpack_from
    rsize = _RECORD.size
    ntop = socket.inet_ntop
    for _ in range(count):
        if at + rsize > size:
            raise BatchDecodeError("record_truncated", "record runs past the message")
        (start, end_t, sport, dport, proto, tflags, kind, reserved, packets, octets,
         exporter_at, imsi_at) = unpack(view, at)
        at += rsize
        if kind & ~_KNOWN_KIND or reserved:
            raise BatchDecodeError("reserved_bits", f"record kind {kind:#x}/{reserved:#x}")
        if not (math.isfinite(start) and math.isfinite(end_t)):
            raise BatchDecodeError("bad_time", "flow time is not finite")
        if exporter_at >= n_strings:
            raise BatchDecodeError("bad_index", f"exporter string {exporter_at}")
        imsi: ImsiDigits | None = None
        if kind & _MAPPED:
            if imsi_at >= n_strings:
                raise BatchDecodeError("bad_index", f"IMSI string {imsi_at}")
            text: str = strings[imsi_at]
            if not (text.isascii() and text.isdigit() and 5 <= len(text) <= 15):
                raise BatchDecodeError("bad_imsi", "IMSI is not 5-15 digits")
            imsi = ImsiDigits(text)  # validated here, the edge of the partitioned path
        elif imsi_at or kind & _UPLINK:
            raise BatchDecodeError("reserved_bits", "unmapped record names an IMSI")
        slen = 16 if kind & _SRC6 else 4
        dlen = 16 if kind & _DST6 else 4
        if at + slen + dlen > size:
            raise BatchDecodeError("record_truncated", "addresses run past the message")
        src = ntop(socket.AF_INET6 if slen == 16 else socket.AF_INET, view[at:at + slen])
        at += slen
        dst = ntop(socket.AF_INET6 if dlen == 16 else socket.AF_INET, view[at:at + dlen])
        at += dlen
        flows.append(MappedFlow(FlowRecord(start, end_t, src, dst, sport, dport, proto,
                                           packets, octets, tflags, strings[exporter_at],
                                           imsi), bool(kind & _UPLINK)))
    if at != size:
        raise BatchDecodeError("trailing_bytes", f"{size - at} bytes after the last record")
    return FlowBatch(partitions, partition, flows)
