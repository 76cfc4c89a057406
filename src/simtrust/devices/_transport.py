"""CoAP over UDP and over DTLS 1.2 with pre-shared keys or X.509 certificates (RFC 7252
§4, §9.1.3.2-§9.1.3.3; RFC 6347; RFC 4279 PSK; RFC 7925 §4.4 certificate profile,
TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8): one asyncio endpoint with the message layer
(deduplication, piggybacked and separate responses, retransmission of confirmable
requests, Observe tokens) and the datagram links below it.

DTLS is python-mbedtls's sans-I/O buffer (mbed TLS does the record layer, cookies
(RFC 6347 §4.2.1), anti-replay (§4.1.2.6) and the handshake; docs/decisions/devices-dtls.md);
this module only moves datagrams and keeps one session per peer address. In certificate
mode mbed TLS validates the client's chain against the trust anchors it was given (RFC 5280
§6, with the clientAuth usage check); who the certificate names is then decided by the
``CertificateMode.identify`` callback (``devices/_certauth.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from mbedtls import _tls, pk, tls, x509

from simtrust.devices._coap import (
    MAX_MESSAGE,
    Code,
    Message,
    MsgType,
    critical_unknown,
    decode_message,
    encode_message,
    repeated_single,
)
from simtrust.devices._datagram import BatchReader
from simtrust.errors import DecodeError

__all__ = [
    "CERT_CIPHERS",
    "CIPHERS",
    "CertificateMode",
    "CoapEndpoint",
    "DtlsServerLink",
    "Peer",
    "PskEntry",
    "PskResolver",
    "UdpLink",
]

log = logging.getLogger(__name__)

#: LwM2M 1.1 §7.1.6 mandates TLS_PSK_WITH_AES_128_CCM_8 for PSK; CBC-SHA256 for older peers.
CIPHERS = ("TLS-PSK-WITH-AES-128-CCM-8", "TLS-PSK-WITH-AES-128-CBC-SHA256",
           "TLS-PSK-WITH-AES-128-GCM-SHA256")
ACK_TIMEOUT = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4
#: RFC 7925 §4.4 / LwM2M 1.1 Transport §5.2.8: CCM_8 with ECDHE-ECDSA for certificates.
CERT_CIPHERS = ("TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
                "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256")
EXCHANGE_LIFETIME = 247.0
_DEDUP_ENTRIES = 4096
#: The stubs type the step enum's members as int; compared by identity with the state.
_OVER: Any = tls.HandshakeStep.HANDSHAKE_OVER
#: MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY (-0x7880): the peer sent close_notify (RFC 6347 §4.1,
#: RFC 5246 §7.2.1), a clean end of its session rather than a dropped record.
_PEER_CLOSE_NOTIFY = 0x7880


def _list_cipher_suites_once() -> None:
    """python-mbedtls 2.x lists every cipher suite compiled into mbed TLS (165 names, each
    a new string from C) twice for each configuration a context is built from: once to
    size its suite array, once to check the suites asked for. Every client link builds
    one (its PSK identity is part of it), so that listing was about 30 of the ~45 us of
    a ``ClientContext`` (docs/decisions/devices-registrations.md). The list is fixed
    when the library is built; the binding's module-level lookup is answered from one
    listing instead. Nothing about the suites offered, accepted or checked changes."""
    listing = getattr(_tls, "ciphers_available", None)
    if callable(listing) and not hasattr(listing, "cache_info"):
        _tls.ciphers_available = functools.cache(listing)


_list_cipher_suites_once()


@dataclass(frozen=True, slots=True)
class PskEntry:
    """What a PSK identity resolves to: the key and whom it authenticates."""

    key: bytes = field(repr=False)
    imsi: str | None = None
    tenant_id: str | None = None
    purpose: str = "dm"
    #: Certificate mode: the IMEI the certificate names (``urn:imei:`` SAN), if any.
    imei: str | None = None


PskResolver = Callable[[str], PskEntry | None]
#: Certificate mode: the client's leaf certificate (DER, already chain-validated by mbed
#: TLS) → (identity, entry), or None to refuse the session.
CertIdentifier = Callable[[bytes], tuple[str, PskEntry] | None]


@dataclass(frozen=True, slots=True)
class CertificateMode:
    """The certificate side of a DTLS server link: the server's own chain and key (DER,
    leaf first; the key PKCS#8), the CA certificates client chains must end in, and the
    callback that maps a validated client certificate to whom it authenticates."""

    chain: tuple[bytes, ...]
    key: bytes = field(repr=False)
    trust: tuple[bytes, ...]
    identify: CertIdentifier = field(repr=False)


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end of one CoAP exchange: address, the link it came on and, over DTLS, the
    PSK identity that authenticated it (None on the NoSec link)."""

    addr: tuple[str, int]
    link: Any = field(compare=False, repr=False)
    identity: str | None = None
    entry: PskEntry | None = field(default=None, compare=False, repr=False)

    @property
    def secure(self) -> bool:
        return self.identity is not None

    @property
    def uri(self) -> str:
        host, port = self.addr[0], self.addr[1]
        scheme = "coaps" if self.secure else "coap"
        return f"{scheme}://{host}:{port}"


@dataclass(slots=True)
class Counters:
    """What the links and the endpoint refuse or drop, for metrics and tests."""

    malformed: int = 0
    bad_option: int = 0
    duplicates: int = 0
    handshakes: int = 0
    handshake_failures: int = 0
    unknown_identity: int = 0
    dropped_records: int = 0
    closed: int = 0
    session_limit: int = 0
    unmatched: int = 0
    cert_refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


Handler = Callable[[Peer, Message], Message | None]
NotifyCallback = Callable[[Peer, Message], None]


class CoapEndpoint:
    """The message layer over any number of links; requests go to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.counters = Counters()
        self._mid = random.randrange(0x10000)
        self._pending: dict[bytes, asyncio.Future[Message]] = {}
        self._observers: dict[bytes, NotifyCallback] = {}
        self._dedup: OrderedDict[tuple[tuple[str, int], int], bytes | None] = OrderedDict()

    def next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    # -- receiving ------------------------------------------------------------------------

    def datagram(self, peer: Peer, data: bytes) -> None:
        try:
            msg = decode_message(data)
        except DecodeError:
            self.counters.malformed += 1
            self._reject(peer, data)
            return
        except ValueError:  # an unknown message type nibble cannot occur; defensive only
            self.counters.malformed += 1
            return
        if msg.code == Code.EMPTY:
            self._empty(peer, msg)
        elif msg.is_request:
            self._request(peer, msg)
        else:
            self._response(peer, msg)

    def _reject(self, peer: Peer, data: bytes) -> None:
        # §4.2: a malformed CON is answered with RST when its MID can be read.
        if len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == MsgType.CON:
            mid = int.from_bytes(data[2:4], "big")
            peer.link.send(peer, encode_message(Message(MsgType.RST, 0, mid)))

    def _empty(self, peer: Peer, msg: Message) -> None:
        if msg.mtype == MsgType.CON:  # CoAP ping (§4.3)
            peer.link.send(peer, encode_message(Message(MsgType.RST, 0, msg.mid)))
        elif msg.mtype == MsgType.RST:
            for token, fut in list(self._pending.items()):
                if getattr(fut, "mid", None) == msg.mid and not fut.done():
                    fut.set_exception(ConnectionResetError("peer reset the request"))
                    self._pending.pop(token, None)
        # An empty ACK only stops retransmission; the separate response follows (§5.2.2).
        elif msg.mtype == MsgType.ACK:
            for fut in self._pending.values():
                if getattr(fut, "mid", None) == msg.mid:
                    fut.acked = True  # type: ignore[attr-defined]

    def _request(self, peer: Peer, msg: Message) -> None:
        key = (peer.addr, msg.mid)
        if msg.mtype in (MsgType.CON, MsgType.NON) and key in self._dedup:
            self.counters.duplicates += 1
            cached = self._dedup[key]
            if cached is not None:
                peer.link.send(peer, cached)
            return
        bad = critical_unknown(msg) or repeated_single(msg)
        response: Message | None
        if bad:
            self.counters.bad_option += 1
            response = msg.reply(Code.BAD_OPTION)
        else:
            try:
                response = self._handler(peer, msg)
            except DecodeError:
                self.counters.malformed += 1
                response = msg.reply(Code.BAD_REQUEST)
        wire = None if response is None else encode_message(response)
        self._dedup[key] = wire
        if len(self._dedup) > _DEDUP_ENTRIES:
            self._dedup.popitem(last=False)
        if wire is not None:
            peer.link.send(peer, wire)

    def _response(self, peer: Peer, msg: Message) -> None:
        if msg.mtype == MsgType.CON:
            peer.link.send(peer, encode_message(Message(MsgType.ACK, 0, msg.mid)))
        fut = self._pending.pop(msg.token, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
            if msg.observe is not None and msg.code < 0x80 and msg.token in self._observers:
                return  # the first answer of an observation completes the request only
            return
        callback = self._observers.get(msg.token)
        if callback is not None:
            if msg.code >= 0x80:  # an error ends the observation (RFC 7641 §3.2)
                self._observers.pop(msg.token, None)
            callback(peer, msg)
            return
        self.counters.unmatched += 1
        if msg.mtype == MsgType.CON:
            # Not ours (any more): RST tells the device to stop notifying (RFC 7641 §3.6).
            peer.link.send(peer, encode_message(Message(MsgType.RST, 0, msg.mid)))

    # -- sending --------------------------------------------------------------------------

    async def request(self, peer: Peer, msg: Message, *, timeout: float = 60.0,
                      observe: NotifyCallback | None = None) -> Message:
        """Send a request and wait for its response (CON retransmitted per §4.2)."""
        token = msg.token or os.urandom(4)
        mid = self.next_mid()
        out = Message(msg.mtype, msg.code, mid, token, msg.options, msg.payload)
        wire = encode_message(out)
        if len(wire) > MAX_MESSAGE:
            raise ValueError("request over the CoAP size limit")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        fut.mid = mid  # type: ignore[attr-defined]
        fut.acked = False  # type: ignore[attr-defined]
        self._pending[token] = fut
        if observe is not None:
            self._observers[token] = observe
        try:
            async with asyncio.timeout(timeout):
                return await self._transmit(peer, out, wire, fut)
        except BaseException:
            self._observers.pop(token, None)
            raise
        finally:
            self._pending.pop(token, None)

    async def _transmit(self, peer: Peer, msg: Message, wire: bytes,
                        fut: asyncio.Future[Message]) -> Message:
        wait = ACK_TIMEOUT * random.uniform(1.0, ACK_RANDOM_FACTOR)
        attempts = 0
        while True:
            peer.link.send(peer, wire)
            if msg.mtype != MsgType.CON:
                return await fut
            try:
                return await asyncio.wait_for(asyncio.shield(fut), wait)
            except TimeoutError:
                if getattr(fut, "acked", False):
                    return await fut
                attempts += 1
                if attempts > MAX_RETRANSMIT:
                    raise
                wait *= 2

    def cancel_observation(self, token: bytes) -> None:
        self._observers.pop(token, None)


# -- links ---------------------------------------------------------------------------------


class UdpLink(asyncio.DatagramProtocol):
    """Plain CoAP over UDP (the LwM2M NoSec mode, Core §7.1.1); peers carry no identity."""

    def __init__(self, endpoint: CoapEndpoint) -> None:
        self._endpoint = endpoint
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._endpoint.datagram(Peer((addr[0], addr[1]), self), data)

    def send(self, peer: Peer, data: bytes) -> None:
        if self._transport is not None:
            self._transport.sendto(data, peer.addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Store(Mapping[str, bytes]):
    """The PSK lookup mbed TLS makes during a handshake, answered by the resolver; remembers
    the entry so the session learns whom it authenticated."""

    def __init__(self, resolver: PskResolver, counters: Counters) -> None:
        self._resolver = resolver
        self._counters = counters
        self.last: tuple[str, PskEntry] | None = None

    def __getitem__(self, identity: str) -> bytes:
        entry = self._resolver(identity) if len(identity) <= 256 else None
        if entry is None:
            self._counters.unknown_identity += 1
            raise KeyError("unknown PSK identity")
        self.last = (identity, entry)
        return entry.key

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(slots=True)
class _Session:
    buffer: tls.TLSWrappedBuffer
    peer: Peer | None = None
    found: tuple[str, PskEntry] | None = None


class DtlsServerLink(asyncio.DatagramProtocol):
    """DTLS 1.2 server, PSK and (with ``certificates``) X.509 client certificates: a
    cookie exchange before any state (RFC 6347 §4.2.1), one session per address, at most
    ``max_sessions`` at once."""

    def __init__(self, endpoint: CoapEndpoint, resolver: PskResolver, *,
                 max_sessions: int = 100_000, ciphers: Sequence[str] = CIPHERS,
                 certificates: CertificateMode | None = None) -> None:
        self._endpoint = endpoint
        self.counters = endpoint.counters
        self._store = _Store(resolver, self.counters)
        self._ciphers = tuple(ciphers)
        self._certs: CertificateMode | None = None
        self._context = self._build(None)
        if certificates is not None:
            self.use_certificates(certificates)
        self._sessions: dict[tuple[str, int], _Session] = {}
        self._max = max_sessions
        self._transport: asyncio.DatagramTransport | None = None
        self._reader: BatchReader | None = None

    def _build(self, certs: CertificateMode | None) -> tls.ServerContext:
        common: dict[str, Any] = {
            "pre_shared_key_store": self._store, "anti_replay": True,
            "lowest_supported_version": tls.DTLSVersion.DTLSv1_2,
            "highest_supported_version": tls.DTLSVersion.DTLSv1_2}
        if certs is None:
            return tls.ServerContext(tls.DTLSConfiguration(
                validate_certificates=False, ciphers=self._ciphers, **common))
        chain = tuple(x509.CRT.from_DER(der) for der in certs.chain)
        key = pk.ECC.from_buffer(certs.key)
        trust = tls.TrustStore([x509.CRT.from_DER(der) for der in certs.trust])
        return tls.ServerContext(tls.DTLSConfiguration(
            validate_certificates=True, certificate_chain=(chain, key), trust_store=trust,
            ciphers=CERT_CIPHERS + self._ciphers, **common))

    def use_certificates(self, certificates: CertificateMode | None) -> None:
        """Offer (or stop offering) certificate suites; new sessions use the new trust
        anchors, sessions already up keep theirs."""
        self._context = self._build(certificates)
        self._certs = certificates

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        # Several datagrams per readiness of the socket (docs/decisions/devices-notifications.md).
        sock = transport.get_extra_info("socket")
        self._reader = None if sock is None else BatchReader(sock, self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _flush(self, buffer: tls.TLSWrappedBuffer, addr: tuple[str, int]) -> None:
        while True:
            out = buffer.peek_outgoing(16384)
            if not out:
                return
            buffer.consume_outgoing(len(out))
            if self._transport is not None:
                self._transport.sendto(out, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._datagram(data, addr)
        if self._reader is not None:  # the rest of a burst, without a loop pass each
            for more, sender in self._reader.pending():
                self._datagram(more, sender)

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        addr = (addr[0], addr[1])
        session = self._sessions.get(addr)
        if session is None:
            # Only a ClientHello (handshake record, content type 22) opens a session.
            if not data or data[0] != 22:
                self.counters.dropped_records += 1
                return
            if len(self._sessions) >= self._max:
                self.counters.session_limit += 1
                return
            buffer = self._context.wrap_buffers()
            buffer.setcookieparam(f"{addr[0]}:{addr[1]}".encode())
            session = _Session(buffer)
            self._sessions[addr] = session
        try:
            session.buffer.receive_from_network(data)
            if session.peer is None:
                self._handshake(session, addr)
                if session.peer is None:
                    return
            self._read(session)
        except tls.HelloVerifyRequest:
            self._flush(session.buffer, addr)
            self._sessions.pop(addr, None)  # stateless until the cookie comes back
        except Exception as exc:  # noqa: BLE001 - any TLS failure ends only this session
            # mbed TLS raises its own TLSError for alerts, bad records and wrong keys.
            if session.peer is None:
                self.counters.handshake_failures += 1
            elif getattr(exc, "err", None) == _PEER_CLOSE_NOTIFY:
                self.counters.closed += 1  # the device ended its session cleanly
            else:
                self.counters.dropped_records += 1
            log.debug("DTLS session with %s ended: %s", addr, type(exc).__name__)
            with _suppress():
                self._flush(session.buffer, addr)
            self._sessions.pop(addr, None)

    def _handshake(self, session: _Session, addr: tuple[str, int]) -> None:
        buffer = session.buffer
        self._store.last = None
        while buffer._handshake_state is not _OVER:
            try:
                buffer.do_handshake()
            except tls.WantWriteError:
                self._flush(buffer, addr)
            except tls.WantReadError:
                self._flush(buffer, addr)
                if self._store.last is not None:
                    session.found = self._store.last
                return
        self._flush(buffer, addr)
        found = self._store.last or session.found
        if found is None and self._certs is not None:
            der = buffer.getpeercert(binary_form=True)
            found = self._certs.identify(der) if isinstance(der, bytes) and der else None
            if found is None:
                self.counters.cert_refused += 1
                with _suppress():
                    buffer.shutdown()
                raise ConnectionError("client certificate names no device of ours")
        if found is None:  # cannot happen with PSK-only suites
            raise ConnectionError("handshake without PSK")
        self.counters.handshakes += 1
        session.peer = Peer(addr, self, found[0], found[1])

    def _read(self, session: _Session) -> None:
        assert session.peer is not None
        while True:
            try:
                plain = session.buffer.read(MAX_MESSAGE + 64)
            except tls.WantReadError:
                return
            if not plain:
                return
            self._endpoint.datagram(session.peer, plain)

    def send(self, peer: Peer, data: bytes) -> None:
        session = self._sessions.get(peer.addr)
        if session is None or session.peer is None:
            return
        session.buffer.write(data)
        self._flush(session.buffer, peer.addr)

    def forget(self, addr: tuple[str, int]) -> None:
        self._sessions.pop(addr, None)

    def close_where(self, predicate: Callable[[Peer], bool]) -> int:
        """End (close_notify) every established session whose peer matches; returns how
        many (a revoked certificate must not keep its session)."""
        ended = 0
        for addr, session in list(self._sessions.items()):
            if session.peer is not None and predicate(session.peer):
                with _suppress():
                    session.buffer.shutdown()
                    self._flush(session.buffer, addr)
                self._sessions.pop(addr, None)
                ended += 1
        return ended

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _suppress:  # noqa: N801 - reads like contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True
