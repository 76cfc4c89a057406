"""The pcap meter: flows like softflowd (timeouts, TCP end, both directions), any link type,
and garbage that ends in PcapError, never a crash."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.domain import PROTO_TCP, PROTO_UDP
from simtrust.errors import DecodeError
from simtrust.flows import (
    ACTIVE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    FlowMeter,
    PcapError,
    decode_packet,
    iter_pcap,
    meter_packets,
    read_pcap,
)


def _ip(src: str, dst: str, l4: dpkt.Packet, proto: int) -> bytes:

    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, data=l4)
    ip.len = 20 + len(bytes(l4))
    return bytes(ip)


def _udp(src: str, dst: str, sport: int = 5000, dport: int = 53, data: bytes = b"x") -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    u.ulen = 8 + len(data)
    return _ip(src, dst, u, PROTO_UDP)


def _tcp(src: str, dst: str, sport: int, dport: int, flags: int) -> bytes:
    return _ip(src, dst, dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags), PROTO_TCP)


def _pcap(frames: list[tuple[float, bytes]], linktype: int) -> bytes:
    buf = io.BytesIO()
    w = dpkt.pcap.Writer(buf, linktype=linktype)
    for ts, f in frames:
        w.writepkt(f, ts=ts)
    return buf.getvalue()


def test_real_capture_meters_into_flows_and_dns_names(hue_capture: Path) -> None:
    cap = read_pcap([hue_capture])
    assert cap.packets > 100
    assert len(cap.records) == len(cap.exported_at)
    assert cap.dns, "the Hue bridge resolves its cloud names"
    assert all(r.end >= r.start for r in cap.records)
    assert sum(r.packets for r in cap.records) == cap.packets
    # Export never precedes the flow's last packet.
    assert all(x >= r.end for r, x in zip(cap.records, cap.exported_at, strict=True))


def test_both_directions_are_exported_as_unidirectional_records() -> None:
    frames = [
        (0.0, _tcp("192.0.2.1", "198.51.100.1", 4000, 80, dpkt.tcp.TH_SYN)),
        (0.1, _tcp("198.51.100.1", "192.0.2.1", 80, 4000, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)),
        (0.2, _tcp("192.0.2.1", "198.51.100.1", 4000, 80, dpkt.tcp.TH_ACK)),
        (0.3, _tcp("192.0.2.1", "198.51.100.1", 4000, 80, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)),
        (0.4, _tcp("198.51.100.1", "192.0.2.1", 80, 4000, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)),
    ]
    cap = meter_packets(decode_packet(t, 101, f) for t, f in frames)
    fwd, rev = cap.records
    assert (fwd.src_addr, fwd.dst_port, fwd.packets) == ("192.0.2.1", 80, 3)
    assert (rev.src_addr, rev.src_port, rev.packets) == ("198.51.100.1", 80, 2)
    assert fwd.tcp_flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK | dpkt.tcp.TH_FIN
    # Ended by FIN in both directions: exported at the last FIN, not after a timeout.
    assert cap.exported_at == [0.4, 0.4]


def test_idle_and_active_timeouts_split_flows() -> None:
    idle = [
        (0.0, _udp("192.0.2.1", "198.51.100.1")),
        (IDLE_TIMEOUT_S + 1.0, _udp("192.0.2.1", "198.51.100.1")),
    ]
    cap = meter_packets(decode_packet(t, 101, f) for t, f in idle)
    assert [r.packets for r in cap.records] == [1, 1]
    steady = [(i * 5.0, _udp("192.0.2.1", "198.51.100.1")) for i in range(30)]  # 145 s
    cap = meter_packets(decode_packet(t, 101, f) for t, f in steady)
    assert len(cap.records) == 3
    assert all(r.duration < ACTIVE_TIMEOUT_S for r in cap.records)
    assert sum(r.packets for r in cap.records) == 30


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (1, lambda ip: b"\x00" * 12 + b"\x08\x00" + ip),  # Ethernet
        (1, lambda ip: b"\x00" * 12 + b"\x81\x00\x00\x05\x08\x00" + ip),  # 802.1Q
        (101, lambda ip: ip),  # raw IP
        (113, lambda ip: b"\x00" * 14 + b"\x08\x00" + ip),  # Linux cooked
        (0, lambda ip: struct.pack("<I", 2) + ip),  # BSD loopback
        # 802.11 QoS data frame (to DS) with LLC/SNAP, bare and behind an 8-byte radiotap header
        (105, lambda ip: b"\x88\x01" + b"\x00" * 24 + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip),
        (
            127,
            lambda ip: (
                b"\x00\x00\x08\x00\x00\x00\x00\x00"
                + b"\x88\x01"
                + b"\x00" * 24
                + b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
                + ip
            ),
        ),
    ],
)
def test_link_types(linktype: int, wrap: object) -> None:
    frame = wrap(_udp("192.0.2.7", "198.51.100.9", 1234, 4321))  # type: ignore[operator]
    packets = list(iter_pcap(_pcap([(1.0, frame)], linktype)))
    assert packets[0] is not None
    assert (packets[0].src, packets[0].dst, packets[0].sport, packets[0].dport) == (
        "192.0.2.7",
        "198.51.100.9",
        1234,
        4321,
    )


def test_pcapng_is_read() -> None:
    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, linktype=101)
    w.writepkt(_udp("192.0.2.1", "198.51.100.2"), ts=5.0)
    packets = list(iter_pcap(buf.getvalue()))
    assert packets[0] is not None
    assert packets[0].ts == pytest.approx(5.0)


def test_unreadable_inputs_raise_pcap_error(tmp_path: Path) -> None:
    with pytest.raises(PcapError):
        read_pcap([tmp_path / "missing.pcap"])
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture")
    with pytest.raises(PcapError):
        read_pcap([bad])
    assert issubclass(PcapError, DecodeError)
    odd = _pcap([(0.0, b"\x00" * 20)], 147)  # a user DLT the meter cannot read
    with pytest.raises(PcapError, match="link type 147"):
        list(iter_pcap(odd))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_garbage_never_crashes(data: bytes) -> None:
    try:
        cap = meter_packets(iter_pcap(data))
    except PcapError:
        return
    assert cap.packets + cap.skipped >= 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(max_size=120), max_size=20),
    st.sampled_from([0, 1, 101, 105, 113, 127, 228, 276]),
)
def test_fuzz_valid_container_garbage_frames(frames: list[bytes], linktype: int) -> None:
    data = _pcap([(float(i), f) for i, f in enumerate(frames)], linktype)
    cap = meter_packets(iter_pcap(data))
    assert cap.packets + cap.skipped == len(frames)
    assert sum(r.packets for r in cap.records) == cap.packets


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_fuzz_truncated_real_capture(hue_bytes_cut: bytes) -> None:
    base = _pcap([(1.0, b"\x00" * 12 + b"\x08\x00" + _udp("192.0.2.1", "198.51.100.1"))], 1)
    data = base[: len(hue_bytes_cut) % (len(base) + 1)] + hue_bytes_cut
    with contextlib.suppress(PcapError):
        meter_packets(iter_pcap(data))


def test_flow_meter_table_is_bounded() -> None:
    meter = FlowMeter(max_flows=10)
    out = []
    for i in range(50):
        p = decode_packet(float(i) * 0.01, 101, _udp("192.0.2.1", "198.51.100.1", 1000 + i))
        assert p is not None
        out += meter.add(p)
    assert len(meter) == 10
    assert len(out) == 40


def test_ipv6_packets_are_metered() -> None:

    udp = dpkt.udp.UDP(sport=5353, dport=443, data=b"hello")
    udp.ulen = 13
    ip6 = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        dst=socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
        nxt=17,
        hlim=64,
        data=udp,
        plen=13,
    )
    p = decode_packet(1.0, 101, bytes(ip6))
    assert p is not None
    assert (p.src, p.dst, p.sport, p.dport, p.proto) == (
        "2001:db8::1",
        "2001:db8::2",
        5353,
        443,
        17,
    )
