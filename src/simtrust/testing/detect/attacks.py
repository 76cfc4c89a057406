"""Synthetic attack traffic for evaluating detection: Mirai scanning and attacks, floods, C2.

Behaviour follows the published descriptions of Mirai (Antonakakis et al.,
"Understanding the Mirai Botnet", USENIX Security 2017, §3; the public bot
source's ``scanner.c`` and ``attack_*.c`` as described there and in its
write-ups): the scanner sends raw TCP SYNs to pseudo-random IPv4 addresses,
port 23 nine times in ten and 2323 otherwise, with the sequence number set to
the target address so replies are recognised without state; the attack vectors
flood one target with UDP (random ports, 512-byte payload), SYN (random ports,
TCP options), ACK (random sequence, 512-byte payload), GRE (encapsulated
IP/UDP), HTTP requests or random-subdomain DNS queries ("water torture") through
the device's resolver. A generic volumetric flood and a periodic C2
check-in (period ± uniform jitter) complete the set.

Rates (per device, sized for a cellular IoT uplink of a few Mbit/s):
scan 160 SYN/s (the scanner's per-iteration burst), UDP 400 pps, SYN 1,000 pps,
ACK 400 pps, GRE 300 pps, HTTP 10 connections × 20 requests/s, DNS 200 queries/s,
generic flood
250 pps of 1,000-byte UDP, beacon every 30 s ± 10 %. Every synthetic address is
in a documentation or benchmarking range (RFC 5737 TEST-NET-1/2/3, RFC 2544
198.18.0.0/15, RFC 3849 2001:db8::/32, RFC 7042 00:00:5e:00:53:xx), so nothing
generated here names a real host; frames are only ever written to files. The
packets themselves are built by :mod:`._packets`.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dpkt

from simtrust.errors import InvalidInput
from simtrust.testing.detect._packets import (
    DOC_MAC_DEVICE,
    DOC_MAC_GATEWAY,
    addr_bytes,
    eth,
    ip4,
    tcp,
    udp,
)

__all__ = [
    "ATTACK_CLASSES",
    "C2_ADDRESS",
    "DOC_MAC_DEVICE",
    "DOC_MAC_GATEWAY",
    "VICTIM_ADDRESS",
    "AttackTraffic",
    "beacon",
    "flood",
    "generate",
    "inject",
    "mirai_ack_flood",
    "mirai_dns_flood",
    "mirai_gre_flood",
    "mirai_http_flood",
    "mirai_scan",
    "mirai_syn_flood",
    "mirai_udp_flood",
    "write_pcap",
]

VICTIM_ADDRESS = "198.51.100.77"
C2_ADDRESS = "203.0.113.10"
_SCAN_NET = (0xC6120000, 1 << 17)  # 198.18.0.0/15 (RFC 2544)

Frame = tuple[float, bytes]


@dataclass(frozen=True, slots=True)
class AttackTraffic:
    """Generated frames (Ethernet, time-ordered) with the ground truth they carry."""

    kind: str
    attack_class: str
    device: str
    start: float
    end: float
    frames: list[Frame]
    target: str
    rate: float


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def _times(start: float, duration: float, rate: float, rng: random.Random) -> list[float]:
    n = max(1, int(duration * rate))
    step = 1.0 / rate
    return [start + i * step + rng.uniform(0, step * 0.5) for i in range(n)]


def _random_target(rng: random.Random) -> str:
    return socket.inet_ntoa(struct.pack("!I", _SCAN_NET[0] + rng.randrange(_SCAN_NET[1])))


def _paced_frames(
    start: float,
    duration: float,
    rate: float,
    rng: random.Random,
    device_mac: bytes,
    packet: Callable[[], bytes],
) -> list[Frame]:
    """One Ethernet frame per paced instant, ``packet()`` drawn after all the instants."""
    return [(t, eth(packet(), device_mac)) for t in _times(start, duration, rate, rng)]


def mirai_scan(
    device: str,
    start: float,
    *,
    duration: float = 60.0,
    rate: float = 160.0,
    seed: int = 1,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """Mirai telnet scanner: SYN to random hosts, 23:2323 ≈ 9:1, seq = target address.

    About 3 % of targets answer with RST and 1 % with SYN-ACK (which the device's
    kernel resets, the raw-socket scanner having no connection for it).
    """
    rng = _rng(seed)
    sport = rng.randrange(1024, 65535)
    frames: list[Frame] = []
    for i, t in enumerate(_times(start, duration, rate, rng)):
        dst = _random_target(rng)
        dport = 2323 if i % 10 == 0 else 23
        seq = struct.unpack("!I", addr_bytes(dst))[0]
        frames.append(
            (
                t,
                eth(
                    tcp(device, dst, sport, dport, dpkt.tcp.TH_SYN, seq=seq, rng=rng), device_mac
                ),
            )
        )
        roll = rng.random()
        if roll < 0.03:
            ip = tcp(dst, device, dport, sport, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK, ack=seq + 1)
            frames.append((t + 0.05, eth(ip, DOC_MAC_GATEWAY, device_mac)))
        elif roll < 0.04:
            ip = tcp(
                dst,
                device,
                dport,
                sport,
                dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK,
                seq=rng.getrandbits(32),
                ack=seq + 1,
            )
            frames.append((t + 0.05, eth(ip, DOC_MAC_GATEWAY, device_mac)))
            rst = tcp(device, dst, sport, dport, dpkt.tcp.TH_RST, seq=seq + 1)
            frames.append((t + 0.0501, eth(rst, device_mac)))
    frames.sort(key=lambda f: f[0])
    return AttackTraffic(
        "scan", "scan", device, start, start + duration, frames, "198.18.0.0/15", rate
    )


def mirai_udp_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 400.0,
    seed: int = 2,
    target: str = VICTIM_ADDRESS,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_udp_generic``: random source and destination port per packet, 512 bytes."""
    rng = _rng(seed)
    frames = _paced_frames(start, duration, rate, rng, device_mac, lambda: udp(
        device, target, rng.getrandbits(16), rng.getrandbits(16), rng.randbytes(512),
        rng.getrandbits(16),
    ))
    return AttackTraffic("udp", "ddos", device, start, start + duration, frames, target, rate)


_SYN_OPTS = (
    b"\x02\x04\x05\xb4"  # MSS 1460
    b"\x04\x02"  # SACK permitted
    b"\x08\x0a"
    + b"\x00"
    * 8  # timestamps
    + b"\x01"  # NOP
    b"\x03\x03\x06"  # window scale 6
)


def mirai_syn_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 1000.0,
    seed: int = 3,
    target: str = VICTIM_ADDRESS,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_tcp_syn``: SYN with MSS/SACK/TS/WS options, random ports and sequence."""
    rng = _rng(seed)
    frames = _paced_frames(start, duration, rate, rng, device_mac, lambda: tcp(
        device, target, rng.getrandbits(16), rng.getrandbits(16) or 80, dpkt.tcp.TH_SYN,
        seq=rng.getrandbits(32), opts=_SYN_OPTS, rng=rng,
    ))
    return AttackTraffic("syn", "ddos", device, start, start + duration, frames, target, rate)


def mirai_ack_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 400.0,
    seed: int = 4,
    target: str = VICTIM_ADDRESS,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_tcp_ack``: ACK with random sequence numbers and ports, 512 random bytes."""
    rng = _rng(seed)
    frames = _paced_frames(start, duration, rate, rng, device_mac, lambda: tcp(
        device, target, rng.getrandbits(16), rng.getrandbits(16) or 80, dpkt.tcp.TH_ACK,
        seq=rng.getrandbits(32), ack=rng.getrandbits(32), data=rng.randbytes(512), rng=rng,
    ))
    return AttackTraffic("ack", "ddos", device, start, start + duration, frames, target, rate)


def mirai_gre_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 300.0,
    seed: int = 5,
    target: str = VICTIM_ADDRESS,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_gre_ip``: GRE (protocol 47) carrying IP/UDP with 512 random bytes."""
    rng = _rng(seed)
    frames = []
    for t in _times(start, duration, rate, rng):
        inner = bytes(
            udp(
                device,
                target,
                rng.getrandbits(16),
                rng.getrandbits(16),
                rng.randbytes(512),
                rng.getrandbits(16),
            )
        )
        gre = struct.pack("!HH", 0, 0x0800) + inner
        ip = ip4(device, target, 47, gre, rng.getrandbits(16))
        frames.append((t, eth(ip, device_mac)))
    return AttackTraffic("gre", "ddos", device, start, start + duration, frames, target, rate)


def mirai_dns_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 200.0,
    seed: int = 9,
    resolver: str = "192.0.2.53",
    domain: str = "victim.example",
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_udp_dns`` ("water torture"): A queries for random 12-character labels under
    the victim's domain, sent to the device's resolver from random ports and query ids."""
    rng = _rng(seed)
    labels = domain.split(".")
    tail = b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    frames = []
    for t in _times(start, duration, rate, rng):
        label = "".join(rng.choice(alphabet) for _ in range(12)).encode()
        query = (
            struct.pack("!HHHHHH", rng.getrandbits(16), 0x0100, 1, 0, 0, 0)
            + bytes([12])
            + label
            + tail
            + struct.pack("!HH", 1, 1)
        )
        ip = udp(device, resolver, rng.randrange(1024, 65535), 53, query, rng.getrandbits(16))
        frames.append((t, eth(ip, device_mac)))
    return AttackTraffic("dns", "ddos", device, start, start + duration, frames, resolver, rate)


_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) "
    "Version/9.1.2 Safari/601.7.7",
)


def mirai_http_flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 200.0,
    seed: int = 6,
    target: str = VICTIM_ADDRESS,
    connections: int = 10,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """``attack_app_http``: parallel connections sending GETs; each is reopened every 20 requests.

    ``rate`` is requests per second over all connections; the target answers
    each request (so flows are two-way and complete, as on a live server).
    """
    rng = _rng(seed)
    frames: list[Frame] = []
    per_conn = rate / connections
    for c in range(connections):
        t = start + rng.uniform(0, 1.0 / per_conn)
        while t < start + duration:
            sport = rng.randrange(1024, 65535)
            cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)
            frames.append(
                (t, eth(tcp(device, target, sport, 80, dpkt.tcp.TH_SYN, cseq), device_mac))
            )
            frames.append(
                (
                    t + 0.02,
                    eth(
                        tcp(
                            target,
                            device,
                            80,
                            sport,
                            dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK,
                            sseq,
                            cseq + 1,
                        ),
                        DOC_MAC_GATEWAY,
                        device_mac,
                    ),
                )
            )
            cseq, sseq = cseq + 1, sseq + 1
            frames.append(
                (
                    t + 0.021,
                    eth(tcp(device, target, sport, 80, dpkt.tcp.TH_ACK, cseq, sseq), device_mac),
                )
            )
            t += 0.022
            for _ in range(20):
                if t >= start + duration:
                    break
                req = (
                    f"GET /{rng.getrandbits(32):08x} HTTP/1.1\r\nHost: {target}\r\n"
                    f"User-Agent: {_USER_AGENTS[c % 2]}\r\nConnection: keep-alive\r\n\r\n"
                ).encode()
                frames.append(
                    (
                        t,
                        eth(
                            tcp(
                                device,
                                target,
                                sport,
                                80,
                                dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK,
                                cseq,
                                sseq,
                                req,
                            ),
                            device_mac,
                        ),
                    )
                )
                cseq += len(req)
                body = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                frames.append(
                    (
                        t + 0.02,
                        eth(
                            tcp(
                                target,
                                device,
                                80,
                                sport,
                                dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK,
                                sseq,
                                cseq,
                                body,
                            ),
                            DOC_MAC_GATEWAY,
                            device_mac,
                        ),
                    )
                )
                sseq += len(body)
                t += 1.0 / per_conn
            frames.append(
                (
                    t,
                    eth(
                        tcp(
                            device, target, sport, 80, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK, cseq, sseq
                        ),
                        device_mac,
                    ),
                )
            )
            t += 0.01
    frames.sort(key=lambda f: f[0])
    return AttackTraffic("http", "ddos", device, start, start + duration, frames, target, rate)


def flood(
    device: str,
    start: float,
    *,
    duration: float = 30.0,
    rate: float = 250.0,
    seed: int = 7,
    target: str = VICTIM_ADDRESS,
    port: int = 443,
    size: int = 1000,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """A plain volumetric flood: one UDP 5-tuple at a constant rate (what ``udpplain`` does)."""
    rng = _rng(seed)
    sport = rng.randrange(1024, 65535)
    payload = rng.randbytes(size)
    frames = [
        (t, eth(udp(device, target, sport, port, payload, i & 0xFFFF), device_mac))
        for i, t in enumerate(_times(start, duration, rate, rng))
    ]
    return AttackTraffic("flood", "ddos", device, start, start + duration, frames, target, rate)


def beacon(
    device: str,
    start: float,
    *,
    duration: float = 600.0,
    period: float = 30.0,
    jitter: float = 0.1,
    seed: int = 8,
    c2: str = C2_ADDRESS,
    port: int = 443,
    device_mac: bytes = DOC_MAC_DEVICE,
) -> AttackTraffic:
    """C2 check-in: a short TCP exchange every ``period`` ± ``jitter`` × period (uniform)."""
    rng = _rng(seed)
    frames: list[Frame] = []
    t = start
    while t < start + duration:
        sport = rng.randrange(32768, 61000)
        cs, ss = rng.getrandbits(32), rng.getrandbits(32)
        hello = rng.randbytes(48)
        order = rng.randbytes(24)
        steps = [
            (0.0, True, dpkt.tcp.TH_SYN, cs, 0, b""),
            (0.08, False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, ss, cs + 1, b""),
            (0.081, True, dpkt.tcp.TH_ACK, cs + 1, ss + 1, b""),
            (0.082, True, dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, cs + 1, ss + 1, hello),
            (0.16, False, dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, ss + 1, cs + 49, order),
            (0.161, True, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, cs + 49, ss + 25, b""),
            (0.24, False, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, ss + 25, cs + 50, b""),
            (0.241, True, dpkt.tcp.TH_ACK, cs + 50, ss + 26, b""),
        ]
        for dt, out, flags, seq, ack, data in steps:
            if out:
                ip = tcp(device, c2, sport, port, flags, seq, ack, data)
                frames.append((t + dt, eth(ip, device_mac)))
            else:
                ip = tcp(c2, device, port, sport, flags, seq, ack, data)
                frames.append((t + dt, eth(ip, DOC_MAC_GATEWAY, device_mac)))
        t += period * (1.0 + rng.uniform(-jitter, jitter))
    return AttackTraffic(
        "beacon", "beacon", device, start, start + duration, frames, c2, 1.0 / period
    )


ATTACK_CLASSES: dict[str, str] = {
    "scan": "scan",
    "udp": "ddos",
    "syn": "ddos",
    "ack": "ddos",
    "gre": "ddos",
    "http": "ddos",
    "dns": "ddos",
    "flood": "ddos",
    "beacon": "beacon",
}


def generate(
    kind: str,
    device: str,
    start: float,
    *,
    seed: int = 1,
    device_mac: bytes = DOC_MAC_DEVICE,
    params: Mapping[str, float] | None = None,
) -> AttackTraffic:
    """One attack of ``kind`` (a key of :data:`ATTACK_CLASSES`) from ``device``.

    ``params`` overrides the maker's keyword arguments (``rate``, ``duration``,
    ``period``, ``jitter``, ...).
    """
    makers = {
        "scan": mirai_scan,
        "udp": mirai_udp_flood,
        "syn": mirai_syn_flood,
        "ack": mirai_ack_flood,
        "gre": mirai_gre_flood,
        "http": mirai_http_flood,
        "dns": mirai_dns_flood,
        "flood": flood,
        "beacon": beacon,
    }
    maker = makers.get(kind)
    if maker is None:
        raise InvalidInput(f"unknown attack kind {kind!r}", kinds=sorted(makers))
    extra = dict(params or {})
    traffic: AttackTraffic = maker(device, start, seed=seed, device_mac=device_mac, **extra)  # type: ignore[operator]
    return traffic


def inject(benign: Iterable[Frame], *attacks: AttackTraffic) -> list[Frame]:
    """Merge attack frames into benign frames by time (the benign capture is not altered)."""
    out = list(benign)
    for a in attacks:
        out.extend(a.frames)
    out.sort(key=lambda f: f[0])
    return out


def write_pcap(path: str | Path, frames: Sequence[Frame]) -> None:
    """Write Ethernet frames as a classic pcap file (link type 1)."""
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in frames:
            w.writepkt(frame, ts=ts)
