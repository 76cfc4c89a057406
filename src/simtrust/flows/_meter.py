"""Pcap metering: packets in, unidirectional :class:`FlowRecord` out, like softflowd.

A flow is keyed by its bidirectional 5-tuple (the first packet's sender is the
initiator) and exported as one record per direction that carried packets, as
NetFlow v9 / IPFIX meters do (RFC 7011 §2 "Flow"; RFC 5102 flowEndReason
idle/active/end-of-flow). Timeouts: idle 15 s (the Cisco NetFlow inactive
default), active 60 s (the value recommended for security monitoring), and a
TCP connection ends when both sides sent FIN or either sent RST.

Capture files are read with dpkt (pcap and pcapng); link layers: Ethernet (802.1Q),
raw IP, Linux cooked v1/v2, BSD loopback, and unprotected 802.11 data frames (with
or without radiotap). Link, network and transport
headers are sliced by hand with :mod:`struct` because dpkt's full decode of every
layer costs ten times as much per packet and the meter needs only the headers.
DNS answers seen in the capture are kept as name→address facts, as a gateway's
resolver would report them.
"""

from __future__ import annotations

import io
import socket
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import dpkt

from simtrust.domain import PROTO_TCP, PROTO_UDP, FlowRecord
from simtrust.errors import DecodeError

__all__ = [
    "ACTIVE_TIMEOUT_S",
    "IDLE_TIMEOUT_S",
    "Capture",
    "DnsAnswer",
    "FlowMeter",
    "Packet",
    "PcapError",
    "decode_packet",
    "iter_pcap",
    "meter_packets",
    "read_pcap",
]

IDLE_TIMEOUT_S = 15.0
ACTIVE_TIMEOUT_S = 60.0
_EXPIRY_TICK_S = 1.0
_MAX_FLOWS = 262_144

_TCP_FIN = 0x01
_TCP_RST = 0x04

# LINKTYPE_* values (https://www.tcpdump.org/linktypes.html)
_LT_NULL = 0
_LT_ETHERNET = 1
_LT_RAW_BSD = 12
_LT_RAW_OPENBSD = 14
_LT_RAW = 101
_LT_LOOP = 108
_LT_LINUX_SLL = 113
_LT_IPV4 = 228
_LT_IPV6 = 229
_LT_LINUX_SLL2 = 276
_LT_IEEE802_11 = 105
_LT_RADIOTAP = 127

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = {0x8100, 0x88A8, 0x9100}


class PcapError(DecodeError):
    """A capture file that cannot be read (bad magic, truncated header, unknown link type)."""

    code = "pcap-unreadable"
    title = "Unreadable capture"


@dataclass(frozen=True, slots=True)
class Packet:
    """The header facts of one IP packet the meter needs."""

    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    length: int
    flags: int
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """A DNS answer seen on the wire: ``client`` learnt that ``name`` is at ``address``."""

    ts: float
    client: str
    name: str
    address: str


@dataclass(slots=True)
class Capture:
    """The result of metering one or more capture files."""

    records: list[FlowRecord] = field(default_factory=list)
    exported_at: list[float] = field(default_factory=list)
    dns: list[DnsAnswer] = field(default_factory=list)
    packets: int = 0
    skipped: int = 0
    first_ts: float | None = None
    last_ts: float | None = None

    @property
    def duration(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts


def _ip4(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def _transport(ts: float, src: str, dst: str, proto: int, length: int, l4: bytes) -> Packet:
    sport = dport = flags = 0
    payload = b""
    if proto == PROTO_TCP and len(l4) >= 20:
        sport, dport = struct.unpack_from("!HH", l4)
        off = (l4[12] >> 4) * 4
        flags = l4[13]
        payload = l4[off:] if off >= 20 else b""
    elif proto == PROTO_UDP and len(l4) >= 8:
        sport, dport = struct.unpack_from("!HH", l4)
        payload = l4[8:]
    elif proto in (1, 58) and len(l4) >= 2:
        # ICMP type/code travel in the destination port, as NetFlow does.
        dport = l4[0] << 8 | l4[1]
    return Packet(ts, src, dst, sport, dport, proto, length, flags, payload)


def _decode_ip(ts: float, buf: bytes) -> Packet | None:
    if not buf:
        return None
    version = buf[0] >> 4
    if version == 4:
        if len(buf) < 20:
            return None
        ihl = (buf[0] & 0x0F) * 4
        total = struct.unpack_from("!H", buf, 2)[0]
        if ihl < 20 or len(buf) < ihl:
            return None
        frag = struct.unpack_from("!H", buf, 6)[0]
        proto = buf[9]
        length = total if total >= ihl else len(buf)
        src, dst = _ip4(buf[12:16]), _ip4(buf[16:20])
        if frag & 0x1FFF:
            # Non-first fragments carry no transport header.
            return Packet(ts, src, dst, 0, 0, proto, length, 0)
        return _transport(ts, src, dst, proto, length, buf[ihl:length] if total else buf[ihl:])
    if version == 6:
        if len(buf) < 40:
            return None
        plen = struct.unpack_from("!H", buf, 4)[0]
        nxt = buf[6]
        src, dst = _ip6(buf[8:24]), _ip6(buf[24:40])
        off = 40
        # Hop-by-hop, routing, destination options: skip to the transport header.
        while nxt in (0, 43, 60) and len(buf) >= off + 2:
            nxt, off = buf[off], off + (buf[off + 1] + 1) * 8
        return _transport(ts, src, dst, nxt, plen + 40, buf[off:])
    return None


def _decode_80211(ts: float, frame: bytes) -> Packet | None:
    """An unprotected IEEE 802.11 data frame carrying LLC/SNAP (IEEE 802.11-2020 §9.2-9.3)."""
    if len(frame) < 24:
        return None
    fc0, fc1 = frame[0], frame[1]
    if (fc0 >> 2) & 0x3 != 2 or fc1 & 0x40:  # not a data frame, or protected
        return None
    subtype = fc0 >> 4
    if subtype & 0x4:  # null-function frames carry no payload
        return None
    off = 24
    if fc1 & 0x03 == 0x03:  # ToDS and FromDS: a fourth address
        off += 6
    if subtype & 0x8:  # QoS data
        off += 2
        if fc1 & 0x80:  # +HTC
            off += 4
    if frame[off : off + 6] != b"\xaa\xaa\x03\x00\x00\x00" or len(frame) < off + 8:
        return None
    etype = struct.unpack_from("!H", frame, off + 6)[0]
    if etype not in (_ETH_IPV4, _ETH_IPV6):
        return None
    return _decode_ip(ts, frame[off + 8 :])


def decode_packet(ts: float, linktype: int, frame: bytes) -> Packet | None:
    """Header facts of one captured frame, or ``None`` when it is not an IP packet."""
    if linktype == _LT_ETHERNET:
        if len(frame) < 14:
            return None
        etype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        while etype in _ETH_VLAN and len(frame) >= off + 4:
            etype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        if etype not in (_ETH_IPV4, _ETH_IPV6):
            return None
        return _decode_ip(ts, frame[off:])
    if linktype in (_LT_RAW, _LT_RAW_BSD, _LT_RAW_OPENBSD, _LT_IPV4, _LT_IPV6):
        return _decode_ip(ts, frame)
    if linktype in (_LT_NULL, _LT_LOOP):
        return _decode_ip(ts, frame[4:])
    if linktype == _LT_LINUX_SLL:
        return _decode_ip(ts, frame[16:])
    if linktype == _LT_LINUX_SLL2:
        return _decode_ip(ts, frame[20:])
    if linktype == _LT_IEEE802_11:
        return _decode_80211(ts, frame)
    if linktype == _LT_RADIOTAP and len(frame) >= 4:
        return _decode_80211(ts, frame[struct.unpack_from("<H", frame, 2)[0] :])
    return None


_SUPPORTED_LINKTYPES = {
    _LT_NULL,
    _LT_ETHERNET,
    _LT_RAW_BSD,
    _LT_RAW_OPENBSD,
    _LT_RAW,
    _LT_LOOP,
    _LT_LINUX_SLL,
    _LT_IPV4,
    _LT_IPV6,
    _LT_LINUX_SLL2,
    _LT_IEEE802_11,
    _LT_RADIOTAP,
}


def iter_pcap(source: bytes | BinaryIO, name: str = "<capture>") -> Iterator[Packet | None]:
    """Decode a pcap or pcapng stream; yields ``None`` for frames that carry no IP.

    Raises :class:`PcapError` when the container itself is unreadable.
    """
    fh: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        head = fh.read(4)
        fh.seek(0)
        reader: dpkt.pcap.Reader | dpkt.pcapng.Reader
        reader = dpkt.pcapng.Reader(fh) if head == b"\n\r\r\n" else dpkt.pcap.Reader(fh)
        linktype = int(reader.datalink())
    except (ValueError, dpkt.UnpackError, struct.error, EOFError, OSError) as exc:
        raise PcapError(f"{name}: not a pcap/pcapng capture ({exc})", file=name) from exc
    if linktype not in _SUPPORTED_LINKTYPES:
        raise PcapError(f"{name}: unsupported link type {linktype}", file=name)
    try:
        for ts, frame in reader:
            try:
                yield decode_packet(float(ts), linktype, bytes(frame))
            except (struct.error, ValueError, IndexError, OSError):
                yield None
    except (ValueError, dpkt.UnpackError, struct.error, EOFError) as exc:
        raise PcapError(f"{name}: truncated or corrupt capture ({exc})", file=name) from exc


class _Conv:
    """One bidirectional conversation in the flow table."""

    __slots__ = (
        "a",
        "ap",
        "b",
        "bp",
        "fin_a",
        "fin_b",
        "fwd_first",
        "fwd_fl",
        "fwd_last",
        "fwd_oct",
        "fwd_pk",
        "last",
        "proto",
        "rev_first",
        "rev_fl",
        "rev_last",
        "rev_oct",
        "rev_pk",
        "start",
    )

    def __init__(self, p: Packet) -> None:
        self.a, self.b, self.ap, self.bp, self.proto = p.src, p.dst, p.sport, p.dport, p.proto
        self.start = self.last = p.ts
        self.fwd_first = self.fwd_last = p.ts
        self.fwd_pk = self.fwd_oct = self.fwd_fl = 0
        self.rev_first = self.rev_last = 0.0
        self.rev_pk = self.rev_oct = self.rev_fl = 0
        self.fin_a = self.fin_b = False


class FlowMeter:
    """Streaming flow table. ``add`` returns the records that expired by then."""

    def __init__(
        self,
        idle_timeout: float = IDLE_TIMEOUT_S,
        active_timeout: float = ACTIVE_TIMEOUT_S,
        max_flows: int = _MAX_FLOWS,
        exporter: str = "pcap",
    ) -> None:
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self.max_flows = max_flows
        self.exporter = exporter
        self._table: OrderedDict[tuple[str, int, str, int, int], _Conv] = OrderedDict()
        self._next_tick = 0.0

    def __len__(self) -> int:
        return len(self._table)

    def _records(self, c: _Conv) -> list[FlowRecord]:
        out = []
        if c.fwd_pk:
            out.append(
                FlowRecord(
                    c.fwd_first,
                    c.fwd_last,
                    c.a,
                    c.b,
                    c.ap,
                    c.bp,
                    c.proto,
                    c.fwd_pk,
                    c.fwd_oct,
                    c.fwd_fl,
                    self.exporter,
                )
            )
        if c.rev_pk:
            out.append(
                FlowRecord(
                    c.rev_first,
                    c.rev_last,
                    c.b,
                    c.a,
                    c.bp,
                    c.ap,
                    c.proto,
                    c.rev_pk,
                    c.rev_oct,
                    c.rev_fl,
                    self.exporter,
                )
            )
        return out

    def add(self, p: Packet) -> list[FlowRecord]:
        out: list[FlowRecord] = []
        if p.ts >= self._next_tick:
            out.extend(self.expire(p.ts))
            self._next_tick = p.ts + _EXPIRY_TICK_S
        key = (p.src, p.sport, p.dst, p.dport, p.proto)
        table = self._table
        c = table.get(key)
        forward = True
        if c is None:
            rkey = (p.dst, p.dport, p.src, p.sport, p.proto)
            c = table.get(rkey)
            if c is not None:
                key, forward = rkey, False
        if c is not None and p.ts - c.start >= self.active_timeout:
            del table[key]
            out.extend(self._records(c))
            c = None
        if c is None:
            if len(table) >= self.max_flows:
                _, oldest = table.popitem(last=False)
                out.extend(self._records(oldest))
            c = _Conv(p)
            key, forward = (p.src, p.sport, p.dst, p.dport, p.proto), True
            table[key] = c
        else:
            table.move_to_end(key)
        c.last = p.ts
        if forward:
            c.fwd_last = p.ts
            c.fwd_pk += 1
            c.fwd_oct += p.length
            c.fwd_fl |= p.flags
        else:
            if not c.rev_pk:
                c.rev_first = p.ts
            c.rev_last = p.ts
            c.rev_pk += 1
            c.rev_oct += p.length
            c.rev_fl |= p.flags
        if p.proto == PROTO_TCP and p.flags & (_TCP_FIN | _TCP_RST):
            if p.flags & _TCP_RST:
                c.fin_a = c.fin_b = True
            elif forward:
                c.fin_a = True
            else:
                c.fin_b = True
            if c.fin_a and c.fin_b:
                del table[key]
                out.extend(self._records(c))
        return out

    def expire(self, now: float) -> list[FlowRecord]:
        """Export every conversation idle for ``idle_timeout`` by ``now``.

        The table is ordered by last activity, so this pops from the front only;
        the active timeout is applied when the conversation's next packet arrives.
        """
        out: list[FlowRecord] = []
        table = self._table
        while table:
            key, c = next(iter(table.items()))
            if now - c.last < self.idle_timeout:
                break
            del table[key]
            out.extend(self._records(c))
        return out

    def flush(self) -> list[FlowRecord]:
        """Export everything still in the table (end of capture)."""
        out: list[FlowRecord] = []
        for c in self._table.values():
            out.extend(self._records(c))
        self._table.clear()
        return out


def _dns_answers(p: Packet) -> list[DnsAnswer]:
    try:
        msg = dpkt.dns.DNS(p.payload)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        return []
    if not msg.qd or msg.qr != dpkt.dns.DNS_R:
        return []
    # The question name is what the device asked for; CNAME targets are the CDN's.
    name = str(msg.qd[0].name).lower().rstrip(".")
    out = []
    for rr in msg.an:
        if rr.type == dpkt.dns.DNS_A and len(rr.rdata) == 4:
            out.append(DnsAnswer(p.ts, p.dst, name, _ip4(rr.rdata)))
        elif rr.type == dpkt.dns.DNS_AAAA and len(rr.rdata) == 16:
            out.append(DnsAnswer(p.ts, p.dst, name, _ip6(rr.rdata)))
    return out


def meter_packets(
    packets: Iterable[Packet | None],
    meter: FlowMeter | None = None,
    capture: Capture | None = None,
) -> Capture:
    """Meter a packet stream to the end (flushing the table) into a :class:`Capture`."""
    meter = meter or FlowMeter()
    cap = capture or Capture()
    recs, exported, dns = cap.records, cap.exported_at, cap.dns
    for p in packets:
        if p is None:
            cap.skipped += 1
            continue
        cap.packets += 1
        if cap.first_ts is None or p.ts < cap.first_ts:
            cap.first_ts = p.ts
        if cap.last_ts is None or p.ts > cap.last_ts:
            cap.last_ts = p.ts
        if p.proto == PROTO_UDP and p.sport == 53 and p.payload:
            dns.extend(_dns_answers(p))
        done = meter.add(p)
        if done:
            recs.extend(done)
            exported.extend([p.ts] * len(done))
    tail = meter.flush()
    recs.extend(tail)
    # A live meter would export these once idle: the last packet plus the idle timeout.
    exported.extend([r.end + meter.idle_timeout for r in tail])
    return cap


def read_pcap(
    paths: Iterable[str | Path],
    idle_timeout: float = IDLE_TIMEOUT_S,
    active_timeout: float = ACTIVE_TIMEOUT_S,
) -> Capture:
    """Meter capture files, in time order, into flow records.

    Files are read one after the other through one flow table (captures of one
    link are usually split by time). Raises :class:`PcapError` if any file is
    unreadable.
    """
    streams: list[list[Packet | None]] = []
    for path in paths:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise PcapError(f"{p}: cannot read ({exc.strerror})", file=str(p)) from exc
        streams.append(list(iter_pcap(data, str(p))))
    merged = sorted((pk for s in streams for pk in s if pk is not None), key=lambda pk: pk.ts)
    skipped = sum(1 for s in streams for pk in s if pk is None)
    cap = meter_packets(merged, FlowMeter(idle_timeout, active_timeout))
    cap.skipped += skipped
    return cap
