"""Independent peers for the AAA tests: a Disconnect/CoA receiver built on pyrad, and a
capture of exchanged datagrams written as a pcap (dpkt) for tshark to dissect."""

from __future__ import annotations

import contextlib
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


class TcpRelay:
    """A TCP relay between a peer and a listener that records every byte each way, so a
    test can write the exchange as a pcap (the stream transports, RFC 6613/6614) without
    capture privileges. ``segments`` holds (connection, from_client, bytes) in order."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.segments: list[tuple[int, bool, bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        connection = 0
        while not self._stop.is_set():
            try:
                down, _addr = self.sock.accept()
            except OSError:
                continue
            up = socket.create_connection(self.upstream)
            self._sockets += [down, up]
            for src, dst, outbound in ((down, up, True), (up, down, False)):
                threading.Thread(target=self._pump, args=(connection, src, dst, outbound),
                                 daemon=True).start()
            connection += 1

    def _pump(self, connection: int, src: socket.socket, dst: socket.socket,
              outbound: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:  # record and forward in one step: the order is the wire's
                    self.segments.append((connection, outbound, data))
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stream(self, connection: int, outbound: bool) -> bytes:
        return b"".join(d for c, o, d in self.segments if c == connection and o == outbound)

    def write_pcap(self, path: Path, server_port: int) -> Path:
        """IPv4/TCP frames on 127.0.0.1 (handshake, data with sequence numbers, ACKs)."""
        with path.open("wb") as fh:
            writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_RAW)
            stamp = [1_700_000_000.0]
            seqs: dict[tuple[int, bool], int] = {}

            def emit(connection: int, outbound: bool, flags: int, data: bytes = b"") -> None:
                client_port = 40000 + connection
                sport, dport = (client_port, server_port) if outbound else \
                    (server_port, client_port)
                seq = seqs.setdefault((connection, outbound), 1000 if outbound else 5000)
                ack = seqs.setdefault((connection, not outbound), 5000 if outbound else 1000)
                tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                                   win=65535, data=data)
                tcp.off = 5
                ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"),
                                dst=socket.inet_aton("127.0.0.1"), p=dpkt.ip.IP_PROTO_TCP,
                                data=tcp)
                ip.len = 20 + len(bytes(tcp))
                writer.writepkt(bytes(ip), ts=stamp[0])
                stamp[0] += 0.001
                seqs[(connection, outbound)] = seq + len(data) + (
                    1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)

            connections = sorted({c for c, _o, _d in self.segments})
            for c in connections:
                emit(c, True, dpkt.tcp.TH_SYN)
                seqs[(c, True)] = 1001
                emit(c, False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
                emit(c, True, dpkt.tcp.TH_ACK)
            for c, outbound, data in self.segments:
                for offset in range(0, len(data), 1400):
                    emit(c, outbound, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                         data[offset : offset + 1400])
        return path

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
