"""Independent peers for the AAA tests: a Disconnect/CoA receiver built on pyrad, and a
capture of exchanged datagrams written as a pcap (dpkt) for tshark to dissect."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
from pyrad.dictionary import Dictionary
from pyrad.packet import CoAPacket

DICTIONARY = Path(__file__).resolve().parent / "data" / "dictionary"
#: RFC 5176 codes.
DISCONNECT_REQUEST, DISCONNECT_ACK, DISCONNECT_NAK = 40, 41, 42
COA_REQUEST, COA_ACK, COA_NAK = 43, 44, 45


def pyrad_dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY))


@dataclass
class Capture:
    """Datagrams seen on loopback: (src port, dst port, payload)."""

    datagrams: list[tuple[int, int, bytes]] = field(default_factory=list)

    def add(self, src: int, dst: int, data: bytes) -> None:
        self.datagrams.append((src, dst, bytes(data)))

    def write_pcap(self, path: Path, ports: dict[int, int]) -> Path:
        """Write IPv4/UDP frames on 127.0.0.1; ``ports`` maps ephemeral server ports to the
        IANA ones (1812, 1813, 3799) so tshark's RADIUS dissector picks them up."""
        with path.open("wb") as fh:
            writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_RAW)
            for index, (src, dst, data) in enumerate(self.datagrams):
                udp = dpkt.udp.UDP(sport=ports.get(src, src), dport=ports.get(dst, dst),
                                   data=data)
                udp.ulen = 8 + len(data)
                ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"),
                                dst=socket.inet_aton("127.0.0.1"), p=dpkt.ip.IP_PROTO_UDP,
                                data=udp, id=index & 0xFFFF)
                ip.len = 20 + udp.ulen
                writer.writepkt(bytes(ip), ts=1_700_000_000 + index / 1000)
        return path


class CoaReceiver:
    """A gateway's RFC 5176 endpoint: verifies each request with pyrad and answers
    ACK, or NAK with ``nak_cause``; ``drop_first`` requests get no answer (retries)."""

    def __init__(self, secret: str, *, nak_cause: int | None = None, drop_first: int = 0,
                 capture: Capture | None = None) -> None:
        self.secret = secret.encode()
        self.nak_cause = nak_cause
        self.drop_first = drop_first
        self.capture = capture
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[CoAPacket] = []
        self.verified: list[bool] = []
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        dictionary = pyrad_dictionary()
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1
            if self.capture is not None:
                self.capture.add(addr[1], self.port, data)
            if self.datagrams <= self.drop_first:
                continue
            packet = CoAPacket(packet=data, secret=self.secret, dict=dictionary)
            ok = packet.VerifyCoARequest() and packet.verify_message_authenticator()
            self.received.append(packet)
            self.verified.append(bool(ok))
            reply = packet.CreateReply()
            ack, nak = ((DISCONNECT_ACK, DISCONNECT_NAK) if packet.code == DISCONNECT_REQUEST
                        else (COA_ACK, COA_NAK))
            if self.nak_cause is not None:
                reply.code = nak
                reply["Error-Cause"] = self.nak_cause
            else:
                reply.code = ack
            wire = reply.ReplyPacket()
            if self.capture is not None:
                self.capture.add(self.port, addr[1], wire)
            self.sock.sendto(wire, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
