"""IPFIX and NetFlow v9 templates: information elements, field specifiers, record layouts.

A template (RFC 7011 §3.4.1, options templates §3.4.2.2; RFC 3954 §5.2, §6.1)
lists field specifiers (§3.2: element id, length, enterprise number); it is
compiled here into the layout its data records are read with: one
:class:`struct.Struct` for a fixed-length template, a walk field by field for
variable-length fields (RFC 7011 §7). Element ids are those of the IANA IPFIX
registry, which NetFlow v9 field types share for 1..79. Per-stream sequence
accounting (RFC 7011 §3.1, RFC 3954 §5.1) is :class:`SequenceState`. The
message and set decoder is :mod:`._ipfix`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["SequenceState", "Template", "TemplateField"]

VARLEN = 65535
NTP_EPOCH = 2208988800  # seconds between 1900-01-01 and 1970-01-01 (RFC 7011 §6.1.10)

# IE numbers (IANA IPFIX registry; NetFlow v9 field types share 1..79).
IE_OCTETS, IE_PACKETS, IE_PROTO, IE_TCPFLAGS = 1, 2, 4, 6
IE_SRCPORT, IE_SRC4, IE_DSTPORT, IE_DST4 = 7, 8, 11, 12
IE_LAST_SW, IE_FIRST_SW, IE_SRC6, IE_DST6 = 21, 22, 27, 28
IE_SAMPLING_INTERVAL, IE_SAMPLING_ALGO = 34, 35
IE_OCTETS_TOTAL, IE_PACKETS_TOTAL = 85, 86
IE_START_S, IE_END_S, IE_START_MS, IE_END_MS = 150, 151, 152, 153
IE_START_US, IE_END_US, IE_START_NS, IE_END_NS = 154, 155, 156, 157
IE_SYSINIT_MS = 160
IE_SAMPLING_PKT_INTERVAL, IE_SAMPLING_PKT_SPACE = 305, 306

#: The elements a flow record is built from; others are skipped.
WANTED = frozenset({
    IE_OCTETS, IE_PACKETS, IE_PROTO, IE_TCPFLAGS, IE_SRCPORT, IE_SRC4, IE_DSTPORT, IE_DST4,
    IE_LAST_SW, IE_FIRST_SW, IE_SRC6, IE_DST6, IE_OCTETS_TOTAL, IE_PACKETS_TOTAL,
    IE_START_S, IE_END_S, IE_START_MS, IE_END_MS, IE_START_US, IE_END_US, IE_START_NS,
    IE_END_NS, IE_SYSINIT_MS,
})
NATIVE_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}
ADDR_LEN = {IE_SRC4: 4, IE_DST4: 4, IE_SRC6: 16, IE_DST6: 16}
NTP_IES = frozenset({IE_START_US, IE_END_US, IE_START_NS, IE_END_NS})


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One template field: element id, length (65535 = variable), enterprise number."""

    ie: int
    length: int
    enterprise: int = 0
    scope: bool = False


def wanted(f: TemplateField) -> bool:
    """Whether a flow record is built from this field (a known element of a usable length)."""
    if f.enterprise or f.scope or f.ie not in WANTED:
        return False
    want_len = ADDR_LEN.get(f.ie)
    if want_len is not None:
        return f.length == want_len
    if f.ie in NTP_IES:
        return f.length == 8
    return f.length != VARLEN and 1 <= f.length <= 8


class Template:
    """A (data or options) template, compiled for decoding.

    A fixed-length template becomes one :class:`struct.Struct` whose pad bytes
    (``x``) skip the fields no flow needs; a template with variable-length
    fields is walked field by field (RFC 7011 §7).
    """

    __slots__ = ("fast", "fields", "index", "is_options", "learned_at", "min_len", "native",
                 "odd", "offsets", "record_len", "struct", "template_id", "used")

    def __init__(self, template_id: int, fields: tuple[TemplateField, ...], *,
                 is_options: bool, learned_at: float) -> None:
        self.template_id = template_id
        self.fields = fields
        self.is_options = is_options
        self.learned_at = learned_at
        self.used = tuple(f for f in fields if wanted(f)) if not is_options else tuple(
            f for f in fields if not f.enterprise and f.length != VARLEN and f.length <= 8)
        self.index = {f.ie: i for i, f in enumerate(self.used) if not f.scope}
        # lengths that struct can't read natively as ints are read as bytes then converted
        self.odd = tuple(i for i, f in enumerate(self.used)
                         if f.length not in NATIVE_FMT and f.ie not in ADDR_LEN)
        variable = any(f.length == VARLEN for f in fields)
        #: (offset, length) of each used field inside a record (fixed-length templates)
        self.offsets: tuple[tuple[int, int], ...] = ()
        #: the C decoder's offsets per (start, end) time field pair; None: not the IPv4 shape
        self.native: dict[tuple[int, int], tuple[int, ...]] | None = {}
        self.min_len = sum(1 if f.length == VARLEN else f.length for f in fields)
        if variable:
            self.record_len = 0
            self.struct: struct.Struct | None = None
        else:
            self.record_len = self.min_len
            parts = []
            used_ids = {id(f) for f in self.used}
            offsets = []
            pos = 0
            for f in fields:
                if id(f) in used_ids:
                    offsets.append((pos, f.length))
                pos += f.length
            self.offsets = tuple(offsets)
            for f in fields:
                if id(f) in used_ids:
                    parts.append(NATIVE_FMT.get(f.length, f"{f.length}s")
                                 if f.ie not in ADDR_LEN else f"{f.length}s")
                else:
                    parts.append(f"{f.length}x")
            self.struct = struct.Struct("!" + "".join(parts))
        #: the batch decoder's layout (``simtrust.flows._rx``); None: not the IPv4 shape
        self.fast: tuple[Any, ...] | None = None if is_options else self._fast_layout()

    def _fast_layout(self) -> tuple[Any, ...] | None:
        """``(record_len, time kind, learned_at, 10 x (offset, length))`` or None.

        The fields the C decoders read (IPv4 addresses, start and end times, ports,
        protocol, packets, octets, TCP flags), chosen exactly as the decoder's
        ``_linear_times`` chooses the times: absolute milliseconds first (kind 0);
        none when seconds, micro- or nanoseconds are given instead; else times
        since system start (kind 1, or 2 when records carry their own
        systemInitTimeMilliseconds, which only NetFlow v9 ignores).
        """
        if not self.record_len:
            return None
        ix = self.index
        ia, ib, kind = ix.get(IE_START_MS), ix.get(IE_END_MS), 0
        if ia is None or ib is None:
            for a, b in ((IE_START_S, IE_END_S), (IE_START_US, IE_END_US),
                         (IE_START_NS, IE_END_NS)):
                if ix.get(a) is not None and ix.get(b) is not None:
                    return None
            ia, ib = ix.get(IE_FIRST_SW), ix.get(IE_LAST_SW)
            kind = 2 if ix.get(IE_SYSINIT_MS) is not None else 1
        slots = (ix.get(IE_SRC4), ix.get(IE_DST4), ia, ib, ix.get(IE_SRCPORT),
                 ix.get(IE_DSTPORT), ix.get(IE_PROTO),
                 ix.get(IE_PACKETS, ix.get(IE_PACKETS_TOTAL)),
                 ix.get(IE_OCTETS, ix.get(IE_OCTETS_TOTAL)), ix.get(IE_TCPFLAGS))
        flat: list[Any] = [self.record_len, kind, float(self.learned_at)]
        for i in slots:
            if i is None:
                return None
            flat.extend(self.offsets[i])
        return tuple(flat)

    def records(self, data: bytes, start: int, end: int) -> tuple[list[tuple[Any, ...]], bool]:
        """Decode records in ``data[start:end]``; (records, ok). Trailing padding is ignored."""
        st = self.struct
        if st is not None:
            n = (end - start) // self.record_len
            if n <= 0:
                return [], True
            view = memoryview(data)[start:start + n * self.record_len]
            rows = list(st.iter_unpack(view))
        else:
            rows = []
            pos = start
            while end - pos >= self.min_len:
                row, pos = self._varlen(data, pos, end)
                if row is None:
                    return rows, False
                rows.append(row)
        if self.odd:
            odd = self.odd
            fixed = []
            for row in rows:
                lst = list(row)
                for i in odd:
                    lst[i] = int.from_bytes(lst[i], "big")
                fixed.append(tuple(lst))
            rows = fixed
        return rows, True

    def _varlen(self, data: bytes, pos: int, end: int) -> tuple[tuple[Any, ...] | None, int]:
        out: list[Any] = []
        used_ids = {id(f) for f in self.used}
        for f in self.fields:
            length = f.length
            if length == VARLEN:
                if pos >= end:
                    return None, pos
                length = data[pos]
                pos += 1
                if length == 255:
                    if pos + 2 > end:
                        return None, pos
                    length = int.from_bytes(data[pos:pos + 2], "big")
                    pos += 2
            if pos + length > end:
                return None, pos
            if id(f) in used_ids:
                raw = data[pos:pos + length]
                out.append(raw if f.ie in ADDR_LEN or length not in NATIVE_FMT
                           else int.from_bytes(raw, "big"))
            pos += length
        return tuple(out), pos


@dataclass(slots=True)
class SequenceState:
    """Sequence accounting of one stream (exporter, observation domain)."""

    expected: int | None = None
    messages: int = 0
    gaps: int = 0
    lost: int = 0
    out_of_order: int = 0

    def observe(self, seq: int, advance: int | None) -> None:
        """``advance``: how far this message moves the counter (None: unknown)."""
        self.messages += 1
        if self.expected is not None and seq != self.expected:
            delta = (seq - self.expected) % (1 << 32)
            if delta < (1 << 31):
                self.gaps += 1
                self.lost += delta
            else:
                self.out_of_order += 1
        self.expected = None if advance is None else (seq + advance) % (1 << 32)

    def to_dict(self) -> dict[str, int]:
        return {"messages": self.messages, "gaps": self.gaps, "lost": self.lost,
                "out_of_order": self.out_of_order}
