"""Real exporters against the collector: softflowd (NetFlow v9, IPFIX) and nfpcapd+nfreplay.

Each exporter meters a real capture from ``shared/data/pcaps/iot-sentinel``;
the collector's decoded flows must add up, per 5-tuple, to the packet and
byte totals computed independently from the capture with dpkt.
"""

from __future__ import annotations

import socket
import subprocess
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from simtrust.domain import FlowRecord
from simtrust.flows import FlowCollector
from tests.policy.conftest import require_binaries

pytestmark = pytest.mark.exporter

Key = tuple[str, str, int, int, int]
DEVICES = ["D-LinkCam", "EdimaxPlug1101W", "Aria"]


def _pcap(shared_dir: Path, device: str) -> Path:
    folder = shared_dir / "data" / "pcaps" / "iot-sentinel" / device
    return sorted(folder.glob("*.pcap"))[0]


def _key(src: str, dst: str, sport: int, dport: int, proto: int) -> Key:
    # ICMP "ports" carry type/code differently per exporter; compare TCP/UDP ports only
    if proto not in (6, 17):
        sport = dport = 0
    return src, dst, sport, dport, proto


def pcap_totals(path: Path) -> tuple[Counter[Key], Counter[Key]]:
    """Packets and IP-layer bytes per 5-tuple, computed with dpkt."""
    packets: Counter[Key] = Counter()
    octets: Counter[Key] = Counter()
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP):
                src, dst, length, proto = (socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst),
                                           ip.len, ip.p)
            elif isinstance(ip, dpkt.ip6.IP6):
                src = socket.inet_ntop(socket.AF_INET6, ip.src)
                dst = socket.inet_ntop(socket.AF_INET6, ip.dst)
                length, proto = ip.plen + 40, ip.nxt
            else:
                continue
            l4 = ip.data
            sport, dport = (l4.sport, l4.dport) if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP) \
                else (0, 0)
            k = _key(src, dst, sport, dport, proto)
            packets[k] += 1
            octets[k] += length
    return packets, octets


def flow_totals(flows: list[FlowRecord]) -> tuple[Counter[Key], Counter[Key]]:
    packets: Counter[Key] = Counter()
    octets: Counter[Key] = Counter()
    for f in flows:
        k = _key(f.src_addr, f.dst_addr, f.src_port, f.dst_port, f.protocol)
        packets[k] += f.packets
        octets[k] += f.octets
    return packets, octets


@pytest.mark.parametrize("version", ["9", "10"])
@pytest.mark.parametrize("device", DEVICES)
def test_softflowd_flows_match_the_capture(shared_dir: Path, tmp_path: Path, device: str,
                                           version: str) -> None:
    """softflowd -v 9 / -v 10 → collector: per-5-tuple packets and bytes equal the pcap's."""
    require_binaries("softflowd")
    pcap = _pcap(shared_dir, device)
    flows: list[FlowRecord] = []
    with FlowCollector(flows.extend) as collector:
        # -c (control socket path) makes softflowd 1.1.0 wait after EOF, so it is left default
        subprocess.run(
            ["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{collector.port}", "-v", version,
             "-d", "-p", str(tmp_path / "softflowd.pid")],
            check=True, capture_output=True, timeout=60)
        collector.wait_idle(quiet=0.3, timeout=10)
        stats = collector.decoder.stats()
    want_packets, want_octets = pcap_totals(pcap)
    got_packets, got_octets = flow_totals(flows)
    assert want_packets == got_packets
    assert want_octets == got_octets
    assert {} == stats["drops"]
    assert all(f.end >= f.start for f in flows)
    (stream,) = stats["sequence"].values()
    assert stream["messages"] >= 1
    if version == "9":
        assert 0 == stream["lost"]  # RFC 3954 §5.1: one per packet, none lost on loopback
    else:
        # softflowd's IPFIX sequence numbers count flow records only (not the options record),
        # so RFC 7011 accounting sees at most one "missing" record per message
        assert stream["lost"] <= stream["messages"]
        assert stats["sampling"], "softflowd's IPFIX options record (sampling) was kept"


def test_nfpcapd_nfreplay_flows_match_the_capture(shared_dir: Path, tmp_path: Path) -> None:
    """nfpcapd meters the pcap to nfcapd files; nfreplay exports them as NetFlow v9."""
    require_binaries("nfpcapd", "nfreplay")
    pcap = _pcap(shared_dir, "D-LinkCam")
    out = tmp_path / "nfcapd"
    out.mkdir()
    subprocess.run(["nfpcapd", "-r", str(pcap), "-w", str(out)], check=True,
                   capture_output=True, timeout=60)
    files = sorted(out.glob("nfcapd.*"))
    assert files, "nfpcapd wrote no flow files"
    flows: list[FlowRecord] = []
    with FlowCollector(flows.extend) as collector:
        for f in files:
            subprocess.run(["nfreplay", "-r", str(f), "-H", "127.0.0.1", "-p",
                            str(collector.port), "-v", "9", "-d", "100"],
                           check=True, capture_output=True, timeout=60)
        collector.wait_idle(quiet=0.3, timeout=10)
        stats = collector.decoder.stats()
    want_packets, want_octets = pcap_totals(pcap)
    got_packets, got_octets = flow_totals(flows)
    assert want_packets == got_packets
    assert want_octets == got_octets
    assert {} == stats["drops"]
