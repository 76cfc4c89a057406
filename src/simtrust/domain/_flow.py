"""The flow record: one unidirectional flow as a meter or an exporter reports it.

Every source of traffic facts (IPFIX / NetFlow v9 collector, pcap metering,
the gateway's decision API) produces :class:`FlowRecord`; policy evaluation and
detection consume it. Field meanings follow the IPFIX information elements of
RFC 7012 / IANA (sourceIPv4Address 8, destinationIPv4Address 12,
sourceTransportPort 7, destinationTransportPort 11, protocolIdentifier 4,
packetDeltaCount 2, octetDeltaCount 1, tcpControlBits 6,
flowStartMilliseconds 152, flowEndMilliseconds 153).
"""

from __future__ import annotations

from typing import NamedTuple

from simtrust.domain._identifiers import ImsiDigits

__all__ = ["PROTO_ICMP", "PROTO_TCP", "PROTO_UDP", "FlowRecord"]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17


class FlowRecord(NamedTuple):
    """One flow. Times are UNIX epoch seconds (float); addresses are text.

    ``imsi`` is filled once the flow is mapped to a SIM through the address the
    SIM was given at attach; ``exporter`` names the meter that reported it.
    An immutable named tuple: collectors build hundreds of thousands per second,
    and a frozen dataclass costs about twenty times more to construct.
    """

    start: float
    end: float
    src_addr: str
    dst_addr: str
    src_port: int
    dst_port: int
    protocol: int
    packets: int
    octets: int
    tcp_flags: int = 0
    exporter: str = ""
    imsi: ImsiDigits | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)
