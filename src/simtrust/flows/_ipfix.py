"""IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) message decoding.

Templates are kept per (exporter, observation domain / source id) (RFC 7011
§8, RFC 3954 §5.2), withdrawn by a field count of zero (RFC 7011 §8.1) and
expired after a template timeout (RFC 7011 §8.4, RFC 3954 §5.2). Options
templates (RFC 7011 §3.4.2.2, RFC 3954 §6.1) are decoded and their records
kept (sampling information in particular). Variable-length fields follow
RFC 7011 §7; enterprise-specific elements (§3.2) are skipped by length.
Templates, their compiled record layouts and sequence accounting are in
:mod:`._templates`.
Sequence numbers are checked per stream (RFC 7011 §3.1 counts data records,
RFC 3954 §5.1 counts packets). Anything malformed is counted by reason and
dropped; decoding never raises on untrusted bytes. Written by hand because
no maintained Python library decodes both with these guarantees.

Data sets of a fixed-length template in the common IPv4 shape (addresses,
ports, protocol, counters, TCP flags and millisecond times all present) are
decoded in bulk by the optional C extension ``simtrust.flows._native``, which
builds the same :class:`FlowRecord` tuples straight from the set's bytes; the
pure-Python path below stays the reference (and the fallback without the
extension, or for variable-length fields, IPv6 and other time elements).
"""

from __future__ import annotations

import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from simtrust.domain import FlowRecord
from simtrust.flows._columns import FlowColumns
from simtrust.flows._templates import (
    IE_DST4,
    IE_DST6,
    IE_DSTPORT,
    IE_END_MS,
    IE_END_NS,
    IE_END_S,
    IE_END_US,
    IE_FIRST_SW,
    IE_LAST_SW,
    IE_OCTETS,
    IE_OCTETS_TOTAL,
    IE_PACKETS,
    IE_PACKETS_TOTAL,
    IE_PROTO,
    IE_SAMPLING_INTERVAL,
    IE_SAMPLING_PKT_INTERVAL,
    IE_SAMPLING_PKT_SPACE,
    IE_SRC4,
    IE_SRC6,
    IE_SRCPORT,
    IE_START_MS,
    IE_START_NS,
    IE_START_S,
    IE_START_US,
    IE_SYSINIT_MS,
    IE_TCPFLAGS,
    NTP_EPOCH,
    VARLEN,
    SequenceState,
    Template,
    TemplateField,
)

_native: ModuleType | None
try:
    from simtrust.flows import _native
except ImportError:  # built optionally (setup.py); the Python path below is the reference
    _native = None
_rx: ModuleType | None
try:
    from simtrust.flows import _rx
except ImportError:  # built optionally (setup.py), like _native
    _rx = None

#: "c" when fixed-length IPv4 data sets are decoded by the C extension, else "python"
BACKEND = "c" if _native is not None else "python"

__all__ = [
    "FlowDecoder",
    "SequenceState",
    "Template",
    "TemplateField",
]

StreamKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where one message came from and its header times."""

    exporter: str
    domain: int
    now: float
    export_secs: int
    uptime_ms: int
    version: int


@dataclass(slots=True)
class _Stats:
    messages: int = 0
    records: int = 0
    templates: int = 0
    withdrawals: int = 0
    drops: Counter[str] = field(default_factory=Counter)


class FlowDecoder:
    """Stateful decoder of IPFIX and NetFlow v9 messages from many exporters.

    :meth:`decode` takes one datagram and returns the flow records in it.
    State: templates per stream, options records per stream (``options``),
    sampling intervals (``sampling``), sequence accounting (``sequence``), and
    drop counters by reason (``drops``).
    """

    def __init__(self, *, template_timeout: float = 1800.0, max_templates: int = 65536,
                 scale_sampled: bool = True) -> None:
        self.template_timeout = template_timeout
        #: multiply packet and octet counts by the stream's sampling interval (1-in-N)
        self.scale_sampled = scale_sampled
        self.max_templates = max_templates
        self._templates: dict[tuple[str, int, int], Template] = {}
        self.options: dict[StreamKey, dict[int, dict[str, int | bytes]]] = {}
        self.sampling: dict[StreamKey, int] = {}
        self.sequence: dict[tuple[str, int, int], SequenceState] = {}
        self._sysinit: dict[StreamKey, int] = {}
        self._stats = _Stats()
        self._ntoa4: Callable[[bytes], str] = socket.inet_ntoa
        self._addr_names: dict[bytes, str] = {}

    # -- public counters -------------------------------------------------
    @property
    def drops(self) -> Counter[str]:
        return self._stats.drops

    def stats(self) -> dict[str, Any]:
        s = self._stats
        return {
            "messages": s.messages,
            "records": s.records,
            "templates": s.templates,
            "withdrawals": s.withdrawals,
            "active_templates": len(self._templates),
            "drops": dict(s.drops),
            "sequence": {f"{e}/v{v}/{d}": st.to_dict() for (e, v, d), st in self.sequence.items()},
            "sampling": {f"{e}/{d}": n for (e, d), n in self.sampling.items()},
        }

    def template(self, exporter: str, domain: int, template_id: int) -> Template | None:
        return self._templates.get((exporter, domain, template_id))

    # -- decoding ----------------------------------------------------------
    def decode(self, data: bytes, exporter: str, now: float) -> list[FlowRecord]:
        """Decode one message; malformed input is counted in :attr:`drops`, never raised."""
        if len(data) < 2:
            self._stats.drops["short_header"] += 1
            return []
        version = (data[0] << 8) | data[1]
        if version == 10:
            return self._ipfix(data, exporter, now)
        if version == 9:
            return self._v9(data, exporter, now)
        self._stats.drops["bad_version"] += 1
        return []

    def decode_received(self, buffer: bytearray, lengths: list[int], senders: list[str],
                        now: float) -> list[FlowColumns | list[FlowRecord]]:
        """Decode a batch taken by ``_rx.recv_batch`` (datagram i at ``i * SLOT``).

        Runs of datagrams the C batch decoder takes whole become
        :class:`FlowColumns`; any other datagram goes through :meth:`decode` (the
        reference), in order, so state and statistics are those of decoding
        every datagram with :meth:`decode`. Returns the segments in order.
        """
        out: list[FlowColumns | list[FlowRecord]] = []
        slot = 65536
        i, n = 0, len(lengths)
        state = (self._templates, self.sampling if self.scale_sampled else None, self._sysinit,
                 self.sequence, SequenceState, float(self.template_timeout))
        while i < n:
            if _rx is not None:
                i, cols, messages, records = _rx.decode_datagrams(buffer, lengths, senders, i,
                                                                  now, state)
                self._stats.messages += messages
                self._stats.records += records
                if cols is not None:
                    out.append(FlowColumns(cols, senders))
                if i >= n:
                    break
            flows = self.decode(bytes(buffer[i * slot:i * slot + lengths[i]]), senders[i], now)
            if flows:
                out.append(flows)
            i += 1
        return out

    def _frame(self, data: bytes, start: int, end: int,
               min_id: int) -> list[tuple[int, int, int]] | None:
        """Walk set headers; None (and a counted drop) when the framing is broken."""
        sets = []
        pos = start
        while pos < end:
            if end - pos < 4:
                self._stats.drops["set_truncated"] += 1
                return None
            set_id, length = struct.unpack_from("!HH", data, pos)
            if length < 4:
                self._stats.drops["set_too_short"] += 1
                return None
            if pos + length > end:
                self._stats.drops["set_overrun"] += 1
                return None
            if set_id not in (0, 1, 2, 3) and set_id < min_id:
                self._stats.drops["bad_set_id"] += 1
                return None
            sets.append((set_id, pos + 4, pos + length))
            pos += length
        return sets

    def _ipfix(self, data: bytes, exporter: str, now: float) -> list[FlowRecord]:
        if len(data) < 16:
            self._stats.drops["short_header"] += 1
            return []
        _, length, export_time, seq, domain = struct.unpack_from("!HHIII", data, 0)
        if length != len(data):
            self._stats.drops["length_mismatch"] += 1
            return []
        sets = self._frame(data, 16, length, 256)
        if sets is None:
            return []
        for set_id, _s, _e in sets:
            if set_id in (0, 1):  # NetFlow v9 set ids are not IPFIX (RFC 7011 §3.3.2)
                self._stats.drops["bad_set_id"] += 1
                return []
        self._stats.messages += 1
        out: list[FlowRecord] = []
        n_data = 0
        unknown = False
        ctx = _Ctx(exporter, domain, now, export_time, 0, 10)
        for set_id, s, e in sets:
            if set_id in {2, 3}:
                self._ipfix_templates(data, s, e, ctx, options=set_id == 3)
            else:
                n = self._data_set(data, s, e, ctx, set_id, out=out)
                if n is None:
                    unknown = True
                else:
                    n_data += n
        self.sequence.setdefault((exporter, 10, domain), SequenceState()).observe(
            seq, None if unknown else n_data)
        return out

    def _v9(self, data: bytes, exporter: str, now: float) -> list[FlowRecord]:
        if len(data) < 20:
            self._stats.drops["short_header"] += 1
            return []
        _, _count, uptime, unix_secs, seq, source_id = struct.unpack_from("!HHIIII", data, 0)
        sets = self._frame(data, 20, len(data), 256)
        if sets is None:
            return []
        for set_id, _s, _e in sets:
            if set_id in (2, 3):
                self._stats.drops["bad_set_id"] += 1
                return []
        self._stats.messages += 1
        out: list[FlowRecord] = []
        ctx = _Ctx(exporter, source_id, now, unix_secs, uptime, 9)
        for set_id, s, e in sets:
            if set_id == 0:
                self._v9_templates(data, s, e, ctx)
            elif set_id == 1:
                self._v9_options_templates(data, s, e, ctx)
            else:
                self._data_set(data, s, e, ctx, set_id, out=out)
        self.sequence.setdefault((exporter, 9, source_id), SequenceState()).observe(seq, 1)
        return out

    def _learn(self, ctx: _Ctx, tid: int, fields: tuple[TemplateField, ...], *,
               options: bool) -> None:
        exporter, domain, now = ctx.exporter, ctx.domain, ctx.now
        key = (exporter, domain, tid)
        if key not in self._templates and len(self._templates) >= self.max_templates:
            self._stats.drops["template_limit"] += 1
            return
        self._templates[key] = Template(tid, fields, is_options=options, learned_at=now)
        self._stats.templates += 1

    def _withdraw(self, exporter: str, domain: int, tid: int) -> None:
        self._stats.withdrawals += 1
        if tid in (2, 3):  # all (options) templates of the stream, RFC 7011 §8.1
            want_options = tid == 3
            for key in [k for k, t in self._templates.items()
                        if k[0] == exporter and k[1] == domain and t.is_options == want_options]:
                del self._templates[key]
            return
        if self._templates.pop((exporter, domain, tid), None) is None:
            self._stats.drops["withdraw_unknown"] += 1

    def _read_fields(self, data: bytes, pos: int, end: int, count: int, *, ipfix: bool,
                     scope_count: int = 0) -> tuple[tuple[TemplateField, ...], int] | None:
        fields = []
        for i in range(count):
            if pos + 4 > end:
                self._stats.drops["template_malformed"] += 1
                return None
            ie, length = struct.unpack_from("!HH", data, pos)
            pos += 4
            pen = 0
            if ipfix and ie & 0x8000:
                if pos + 4 > end:
                    self._stats.drops["template_malformed"] += 1
                    return None
                pen = struct.unpack_from("!I", data, pos)[0]
                ie &= 0x7FFF
                pos += 4
            if length == 0 or (not ipfix and length == VARLEN):
                self._stats.drops["zero_length_field" if length == 0 else "template_malformed"] += 1
                return None
            fields.append(TemplateField(ie, length, pen, scope=i < scope_count))
        return tuple(fields), pos

    def _ipfix_templates(self, data: bytes, pos: int, end: int, ctx: _Ctx, *,
                         options: bool) -> None:
        head = 6 if options else 4
        while end - pos >= 4:  # shorter remainder is padding (RFC 7011 §3.3.1)
            tid, count = struct.unpack_from("!HH", data, pos)
            if count == 0:
                self._withdraw(ctx.exporter, ctx.domain, tid)
                pos += 4
                continue
            if tid < 256 or end - pos < head:
                self._stats.drops["template_malformed"] += 1
                return
            scope = struct.unpack_from("!H", data, pos + 4)[0] if options else 0
            if options and not 0 < scope <= count:
                self._stats.drops["template_malformed"] += 1
                return
            parsed = self._read_fields(data, pos + head, end, count, ipfix=True,
                                       scope_count=scope)
            if parsed is None:
                return
            fields, pos = parsed
            self._learn(ctx, tid, fields, options=options)

    def _v9_templates(self, data: bytes, pos: int, end: int, ctx: _Ctx) -> None:
        while end - pos >= 4:
            tid, count = struct.unpack_from("!HH", data, pos)
            if tid < 256 or count == 0:
                self._stats.drops["template_malformed"] += 1
                return
            parsed = self._read_fields(data, pos + 4, end, count, ipfix=False)
            if parsed is None:
                return
            fields, pos = parsed
            self._learn(ctx, tid, fields, options=False)

    def _v9_options_templates(self, data: bytes, pos: int, end: int, ctx: _Ctx) -> None:
        while end - pos >= 6:
            tid, scope_len, opt_len = struct.unpack_from("!HHH", data, pos)
            if tid < 256 or scope_len % 4 or opt_len % 4 or scope_len + opt_len == 0:
                if tid == 0 and scope_len == 0:
                    return  # padding
                self._stats.drops["template_malformed"] += 1
                return
            n_scope, n_opt = scope_len // 4, opt_len // 4
            parsed = self._read_fields(data, pos + 6, end, n_scope + n_opt, ipfix=False,
                                       scope_count=n_scope)
            if parsed is None:
                return
            fields, pos = parsed
            self._learn(ctx, tid, fields, options=True)

    def _data_set(self, data: bytes, s: int, e: int, ctx: _Ctx, tid: int, *,
                  out: list[FlowRecord]) -> int | None:
        key = (ctx.exporter, ctx.domain, tid)
        tpl = self._templates.get(key)
        if tpl is None:
            self._stats.drops["unknown_template"] += 1
            return None
        if ctx.now - tpl.learned_at > self.template_timeout:
            del self._templates[key]
            self._stats.drops["template_expired"] += 1
            return None
        if _native is not None and not tpl.is_options and tpl.record_len:
            n = self._native_flows(data, s, e, ctx, tpl, out)
            if n is not None:
                self._stats.records += n
                return n
        rows, ok = tpl.records(data, s, e)
        if not ok:
            self._stats.drops["record_truncated"] += 1
        if tpl.is_options:
            self._keep_options(ctx.exporter, ctx.domain, tpl, rows)
            return len(rows)
        self._stats.records += len(rows)
        self._flows(tpl, rows, ctx, out)
        return len(rows)

    def _keep_options(self, exporter: str, domain: int, tpl: Template,
                      rows: list[tuple[Any, ...]]) -> None:
        stream = (exporter, domain)
        store = self.options.setdefault(stream, {})
        for row in rows:
            rec: dict[str, int | bytes] = {}
            for f, v in zip(tpl.used, row, strict=True):
                rec[("scope:" if f.scope else "") + str(f.ie)] = v
            store[tpl.template_id] = rec
            interval = rec.get(str(IE_SAMPLING_INTERVAL))
            pkt_int, pkt_space = rec.get(str(IE_SAMPLING_PKT_INTERVAL)), rec.get(
                str(IE_SAMPLING_PKT_SPACE))
            if isinstance(interval, int) and interval > 0:
                self.sampling[stream] = interval
            elif isinstance(pkt_int, int) and isinstance(pkt_space, int) and pkt_int > 0:
                self.sampling[stream] = (pkt_int + pkt_space) // pkt_int
            sysinit = rec.get(str(IE_SYSINIT_MS))
            if isinstance(sysinit, int):
                self._sysinit[stream] = sysinit

    def _native_flows(self, data: bytes, s: int, e: int, ctx: _Ctx, tpl: Template,
                      out: list[FlowRecord]) -> int | None:
        """Bulk-decode a fixed-length IPv4 data set in C; None when its shape is another.

        Takes exactly the records :meth:`_flows` would build on its common-shape
        path (same conditions, same values), so the two are interchangeable.
        """
        assert _native is not None
        cache = tpl.native
        if cache is None:
            return None
        linear = self._linear_times(tpl, ctx)
        if linear is None:
            return None
        i_a, i_b, base = linear
        offsets = cache.get((i_a, i_b))
        if offsets is None:
            ix = tpl.index
            slots = (ix.get(IE_SRC4), ix.get(IE_DST4), i_a, i_b, ix.get(IE_SRCPORT),
                     ix.get(IE_DSTPORT), ix.get(IE_PROTO),
                     ix.get(IE_PACKETS, ix.get(IE_PACKETS_TOTAL)),
                     ix.get(IE_OCTETS, ix.get(IE_OCTETS_TOTAL)), ix.get(IE_TCPFLAGS))
            if any(i is None for i in slots):
                tpl.native = None
                return None
            flat: list[int] = []
            for i in slots:
                assert i is not None
                flat.extend(tpl.offsets[i])
            offsets = cache[(i_a, i_b)] = tuple(flat)
        scale = self.sampling.get((ctx.exporter, ctx.domain), 1) if self.scale_sampled else 1
        names = self._addr_names
        if len(names) > 65536:
            names.clear()
        n: int = _native.ipv4_flows(data, s, e, tpl.record_len, offsets, base, ctx.exporter,
                                    names, FlowRecord, scale, out)
        return n

    def _flows(self, tpl: Template, rows: list[tuple[Any, ...]], ctx: _Ctx,
               out: list[FlowRecord]) -> None:
        ix = tpl.index
        i_src = ix.get(IE_SRC4)
        i_dst = ix.get(IE_DST4)
        ntoa: Callable[[bytes], str] = self._ntoa4
        if i_src is None or i_dst is None:
            i_src, i_dst = ix.get(IE_SRC6), ix.get(IE_DST6)
            if i_src is None or i_dst is None:
                self._stats.drops["record_without_addresses"] += len(rows)
                return
            def ntoa(b: bytes) -> str:
                return socket.inet_ntop(socket.AF_INET6, b)
        i_sp, i_dp, i_pr = ix.get(IE_SRCPORT), ix.get(IE_DSTPORT), ix.get(IE_PROTO)
        i_oct = ix.get(IE_OCTETS, ix.get(IE_OCTETS_TOTAL))
        i_pkt = ix.get(IE_PACKETS, ix.get(IE_PACKETS_TOTAL))
        i_fl = ix.get(IE_TCPFLAGS)
        exporter = ctx.exporter
        append = out.append
        scale = self.sampling.get((ctx.exporter, ctx.domain), 1) if self.scale_sampled else 1
        if scale > 1 and (i_pkt is not None or i_oct is not None):
            rows = [_scaled(r, i_pkt, i_oct, scale) for r in rows]
        linear = self._linear_times(tpl, ctx)
        if (linear is not None and ntoa is socket.inet_ntoa and i_sp is not None
                and i_dp is not None and i_pr is not None and i_pkt is not None
                and i_oct is not None and i_fl is not None):
            # The common shape (IPv4, every field present, millisecond times): one tuple
            # per record, addresses through a small cache so equal addresses share one
            # string (whose hash is then computed once for every later dict lookup).
            i_a, i_b, base = linear
            new = tuple.__new__
            names = self._addr_names
            if len(names) > 65536:
                names.clear()
            for r in rows:
                sb, db = r[i_src], r[i_dst]
                src = names.get(sb)
                if src is None:
                    src = names[sb] = ntoa(sb)
                dst = names.get(db)
                if dst is None:
                    dst = names[db] = ntoa(db)
                append(new(FlowRecord, (
                    base + r[i_a] / 1000.0, base + r[i_b] / 1000.0, src, dst, r[i_sp], r[i_dp],
                    r[i_pr], r[i_pkt], r[i_oct], r[i_fl], exporter, None)))
            return
        start_of, end_of = self._time_getters(tpl, ctx)
        make = FlowRecord._make  # tuple.__new__: no per-field keyword handling
        for r in rows:
            append(make((
                start_of(r), end_of(r), ntoa(r[i_src]), ntoa(r[i_dst]),
                r[i_sp] if i_sp is not None else 0, r[i_dp] if i_dp is not None else 0,
                r[i_pr] if i_pr is not None else 0, r[i_pkt] if i_pkt is not None else 0,
                r[i_oct] if i_oct is not None else 0, r[i_fl] if i_fl is not None else 0,
                exporter, None)))

    def _linear_times(self, tpl: Template, ctx: _Ctx) -> tuple[int, int, float] | None:
        """``(start index, end index, base)`` when times are ``base + value / 1000.0``.

        Mirrors :meth:`_time_getters` for its millisecond cases (absolute
        milliseconds, and system-uptime milliseconds without a per-record
        sysinit); None for every other case, which then takes the getters.
        """
        ix = tpl.index
        ia, ib = ix.get(IE_START_MS), ix.get(IE_END_MS)
        if ia is not None and ib is not None:
            return ia, ib, 0.0
        for a, b in ((IE_START_S, IE_END_S), (IE_START_US, IE_END_US),
                     (IE_START_NS, IE_END_NS)):
            if ix.get(a) is not None and ix.get(b) is not None:
                return None
        ia, ib = ix.get(IE_FIRST_SW), ix.get(IE_LAST_SW)
        if ia is None or ib is None:
            return None
        if ctx.version == 9:
            return ia, ib, ctx.export_secs - ctx.uptime_ms / 1000.0
        if ix.get(IE_SYSINIT_MS) is not None:
            return None
        sysinit = self._sysinit.get((ctx.exporter, ctx.domain))
        return ia, ib, sysinit / 1000.0 if sysinit is not None else float(ctx.export_secs)

    def _time_getters(self, tpl: Template, ctx: _Ctx) -> tuple[Callable[[tuple[Any, ...]], float],
                                 Callable[[tuple[Any, ...]], float]]:
        ix = tpl.index
        export_secs = ctx.export_secs
        pairs: list[tuple[int, int, Callable[[int], float]]] = [
            (IE_START_MS, IE_END_MS, lambda v: v / 1000.0),
            (IE_START_S, IE_END_S, float),
            (IE_START_US, IE_END_US, _ntp),
            (IE_START_NS, IE_END_NS, _ntp),
        ]
        for a, b, conv in pairs:
            ia, ib = ix.get(a), ix.get(b)
            if ia is not None and ib is not None:
                return (lambda r, ia=ia, conv=conv: conv(r[ia])), (
                    lambda r, ib=ib, conv=conv: conv(r[ib]))
        ia, ib = ix.get(IE_FIRST_SW), ix.get(IE_LAST_SW)
        if ia is not None and ib is not None:
            if ctx.version == 9:
                base = export_secs - ctx.uptime_ms / 1000.0  # boot time (RFC 3954 §5.1)
            else:
                i_init = ix.get(IE_SYSINIT_MS)
                sysinit = self._sysinit.get((ctx.exporter, ctx.domain))
                if i_init is not None:
                    return ((lambda r, ia=ia, ii=i_init: (r[ii] + r[ia]) / 1000.0),
                            (lambda r, ib=ib, ii=i_init: (r[ii] + r[ib]) / 1000.0))
                base = sysinit / 1000.0 if sysinit is not None else float(export_secs)
            return ((lambda r, ia=ia, base=base: base + r[ia] / 1000.0),
                    (lambda r, ib=ib, base=base: base + r[ib] / 1000.0))
        t = float(export_secs)
        return (lambda r: t), (lambda r: t)


def _scaled(row: tuple[Any, ...], i_pkt: int | None, i_oct: int | None,
            scale: int) -> tuple[Any, ...]:
    """Estimate totals from a 1-in-``scale`` sampled record (RFC 7011 §5, RFC 3954 §8)."""
    values = list(row)
    if i_pkt is not None:
        values[i_pkt] *= scale
    if i_oct is not None:
        values[i_oct] *= scale
    return tuple(values)


def _ntp(value: int) -> float:
    return (value >> 32) - NTP_EPOCH + (value & 0xFFFFFFFF) / 4294967296.0
