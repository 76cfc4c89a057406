"""Address classes the detectors distinguish: unicast Internet hosts, local, group.

Local means site or operator-core space (RFC 1918, RFC 6598 shared address
space, RFC 4193 unique local, link-local and loopback); group means multicast
or a broadcast address. Only unicast destinations feed the breadth, beacon and
new-destination detectors.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["GROUP", "LOCAL", "UNICAST", "classify"]

UNICAST, LOCAL, GROUP = 0, 1, 2

# (network, mask) pairs of IPv4 space that is local to a site or an operator's core.
_LOCAL_V4 = tuple(
    (int(n.network_address), int(n.netmask))
    for n in map(
        ipaddress.IPv4Network,
        (
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "0.0.0.0/8",
        ),
    )
)
_LOCAL_V6 = tuple(map(ipaddress.IPv6Network, ("fc00::/7", "fe80::/10", "::1/128", "::/128")))


def classify(addr: str) -> int:
    """Group (multicast/broadcast), local (RFC 1918/6598/4193, link-local) or unicast.

    Documentation and benchmarking ranges count as unicast on purpose: they
    stand for Internet hosts in tests and never occur on a live network.
    """
    if ":" not in addr:
        try:
            value = int.from_bytes(socket.inet_aton(addr), "big")
        except OSError:
            return LOCAL
        if value >> 28 == 0xE or value & 0xFF == 0xFF:
            return GROUP
        for net, mask in _LOCAL_V4:
            if value & mask == net:
                return LOCAL
        return UNICAST
    try:
        ip6 = ipaddress.IPv6Address(addr)
    except ValueError:
        return LOCAL
    if ip6.is_multicast:
        return GROUP
    if any(ip6 in net for net in _LOCAL_V6):
        return LOCAL
    return UNICAST
