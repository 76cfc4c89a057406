"""The attack generator follows Mirai's published behaviour and stays in documentation ranges;
injected captures meter to the same records as the parts metered apart."""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from simtrust.errors import InvalidInput
from simtrust.flows import decode_packet, iter_pcap, meter_packets, read_pcap
from simtrust.testing.detect import attacks

T0 = 1_700_000_000.0
DOC_NETS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
]


def _in_doc(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return any(ip in n for n in DOC_NETS)


def test_mirai_scan_ports_sequence_trick_and_rate() -> None:
    scan = attacks.mirai_scan("192.0.2.9", T0, duration=30, rate=100)
    syns = []
    for _, frame in scan.frames:
        eth = dpkt.ethernet.Ethernet(frame)
        ip, tcp = eth.data, eth.data.data
        if socket.inet_ntoa(ip.src) == "192.0.2.9" and tcp.flags == dpkt.tcp.TH_SYN:
            syns.append((ip, tcp))
    assert len(syns) == 3000
    ports = Counter(tcp.dport for _, tcp in syns)
    assert set(ports) == {23, 2323}
    assert ports[23] / ports[2323] == pytest.approx(9.0, rel=0.05)
    for ip, tcp in syns:
        assert tcp.seq == struct.unpack("!I", ip.dst)[0], "Mirai sets seq = target address"
        assert _in_doc(socket.inet_ntoa(ip.dst))
    assert len({ip.dst for ip, _ in syns}) > 2900, "random targets"
    # Every frame carries valid IP and TCP checksums (dpkt recomputes them on a copy).
    ip = syns[0][0]
    raw = bytes(ip)
    clean = dpkt.ip.IP(raw)
    clean.sum = 0
    clean.data.sum = 0
    assert bytes(clean) == raw


@pytest.mark.parametrize("kind", sorted(attacks.ATTACK_CLASSES))
def test_every_generated_address_is_a_documentation_address(kind: str) -> None:
    traffic = attacks.generate(kind, "192.0.2.9", T0, params={"duration": 5.0})
    assert traffic.attack_class == attacks.ATTACK_CLASSES[kind]
    assert traffic.frames
    for _, frame in traffic.frames:
        eth = dpkt.ethernet.Ethernet(frame)
        assert eth.src[:5] == eth.dst[:5] == bytes.fromhex("00005e0053")
        assert _in_doc(socket.inet_ntoa(eth.data.src))
        assert _in_doc(socket.inet_ntoa(eth.data.dst))


def test_flood_vectors_have_their_wire_signature() -> None:
    def first(kind: str) -> dpkt.ip.IP:
        t = attacks.generate(kind, "192.0.2.9", T0, params={"duration": 1.0})
        return dpkt.ethernet.Ethernet(t.frames[0][1]).data

    udp = first("udp")
    assert udp.p == 17
    assert len(udp.data.data) == 512
    syn = first("syn")
    assert syn.data.flags == dpkt.tcp.TH_SYN
    assert len(syn.data.opts) == 20
    ack = first("ack")
    assert ack.data.flags == dpkt.tcp.TH_ACK
    assert len(ack.data.data) == 512
    gre = first("gre")
    assert gre.p == 47
    assert struct.unpack("!H", bytes(gre.data)[2:4])[0] == 0x0800
    http = attacks.generate("http", "192.0.2.9", T0, params={"duration": 1.0})
    assert any(b"GET /" in f for _, f in http.frames)


def test_rates_and_periods_are_as_documented() -> None:
    udp = attacks.mirai_udp_flood("192.0.2.9", T0, duration=10)
    assert len(udp.frames) == 4000
    b = attacks.beacon("192.0.2.9", T0, duration=600, period=30, jitter=0.1)
    syn_times = [
        ts for ts, f in b.frames if dpkt.ethernet.Ethernet(f).data.data.flags == dpkt.tcp.TH_SYN
    ]
    gaps = [y - x for x, y in itertools.pairwise(syn_times)]
    assert all(27.0 <= g <= 33.0 for g in gaps)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        attacks.generate("teardrop", "192.0.2.9", T0)


def test_injected_capture_meters_like_its_parts(tmp_path: Path, hue_capture: Path) -> None:
    with hue_capture.open("rb") as fh:
        benign = [(float(ts), bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]
    scan = attacks.mirai_scan("10.10.10.6", benign[0][0] + 10, duration=20, rate=50)
    out = tmp_path / "mixed.pcap"
    attacks.write_pcap(out, attacks.inject(benign, scan))
    merged = read_pcap([out])
    apart = read_pcap([hue_capture])
    attack = meter_packets(decode_packet(t, 1, f) for t, f in scan.frames)
    key = lambda r: (r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.packets, r.octets)  # noqa: E731
    assert sorted(map(key, merged.records)) == sorted(map(key, apart.records + attack.records))
    assert (
        merged.packets
        == len(list(iter_pcap(hue_capture.read_bytes()))) + len(scan.frames) - apart.skipped
    )
