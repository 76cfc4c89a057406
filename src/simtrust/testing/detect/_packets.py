"""Hand-built packets for the synthetic traffic: Ethernet II, IPv4, TCP and UDP with checksums.

IPv4 headers follow RFC 791 §3.1 (no options, TTL 64), TCP segments RFC 9293
§3.1, UDP datagrams RFC 768; checksums are the Internet checksum (RFC 1071)
over the IPv4 pseudo-header. Frames use the documentation MAC addresses of
RFC 7042 (00:00:5e:00:53:xx).
"""

from __future__ import annotations

import random
import socket
import struct

__all__ = ["DOC_MAC_DEVICE", "DOC_MAC_GATEWAY", "addr_bytes", "checksum", "eth", "ip4",
           "l4_sum", "tcp", "udp"]

DOC_MAC_DEVICE = bytes.fromhex("00005e005301")
DOC_MAC_GATEWAY = bytes.fromhex("00005e005302")


def addr_bytes(addr: str) -> bytes:
    """A dotted IPv4 address as its four bytes."""
    return socket.inet_aton(addr)


def eth(ip: bytes, src_mac: bytes = DOC_MAC_DEVICE, dst_mac: bytes = DOC_MAC_GATEWAY) -> bytes:
    """An Ethernet II frame (EtherType IPv4) around ``ip``."""
    return dst_mac + src_mac + b"\x08\x00" + ip


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(memoryview(data).cast("H"))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    # Computed on native-order words; swap back when the host is little-endian.
    value = ~total & 0xFFFF
    return socket.htons(value) if socket.htons(1) != 1 else value


def ip4(src: str, dst: str, proto: int, payload: bytes, ident: int = 0) -> bytes:
    """An IPv4 header (RFC 791 §3.1, no options, TTL 64) in front of ``payload``."""
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident & 0xFFFF,
        0,
        64,
        proto,
        0,
        addr_bytes(src),
        addr_bytes(dst),
    )
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def l4_sum(src: str, dst: str, proto: int, segment: bytes) -> int:
    """The TCP/UDP checksum over the IPv4 pseudo-header and ``segment``."""
    pseudo = addr_bytes(src) + addr_bytes(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return checksum(pseudo + segment)


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int,
    seq: int = 0,
    ack: int = 0,
    data: bytes = b"",
    opts: bytes = b"",
    rng: random.Random | None = None,
) -> bytes:
    """A TCP segment (RFC 9293 §3.1) in an IPv4 packet, checksums filled in."""
    win = (rng.getrandbits(16) if rng else 14600) or 1
    off = (20 + len(opts)) // 4
    head = struct.pack(
        "!HHIIBBHHH",
        sport & 0xFFFF,
        dport & 0xFFFF,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        off << 4,
        flags,
        win,
        0,
        0,
    )
    seg = head + opts + data
    csum = l4_sum(src, dst, 6, seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    return ip4(src, dst, 6, seg, rng.getrandbits(16) if rng else 0)


def udp(src: str, dst: str, sport: int, dport: int, data: bytes, ident: int = 0) -> bytes:
    """A UDP datagram (RFC 768) in an IPv4 packet, checksums filled in."""
    seg = struct.pack("!HHHH", sport & 0xFFFF, dport & 0xFFFF, 8 + len(data), 0) + data
    csum = l4_sum(src, dst, 17, seg) or 0xFFFF
    return ip4(src, dst, 17, seg[:6] + struct.pack("!H", csum) + seg[8:], ident)
