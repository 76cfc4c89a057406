"""A Diameter node over TCP: capabilities exchange, watchdog, disconnect, dispatch (RFC 6733).

The peer state machine is the responder's half of RFC 6733 §5.6: a connection
is Wait-CER until the first message, which must be a CER from an Origin-Host
in the configured peer table (else CEA 3010 DIAMETER_UNKNOWN_PEER, close) that
shares an application (S6a 16777251, S13 16777252, or relay) with us (else
5010 DIAMETER_NO_COMMON_APPLICATION, close). Open connections answer DWR
(§5.5), DPR (§5.4, then close), and dispatch other requests by (application,
command) to handlers run in a thread pool (they touch the store). The node
sends DWR after ``watchdog_s`` of silence and drops a peer that does not
answer within another ``watchdog_s`` (RFC 3539 §3.4.1). A peer that connects
again replaces its old connection.

With a TLS context the listener speaks TLS/TCP from the first octet (RFC 6733
§13.1, the "diameters" service): both sides present certificates, the peer's
must chain to the configured CA, and only then does the CER arrive. SCTP
(and DTLS/SCTP) is not offered.

Duplicates (§6.1.4) are detected by (Origin-Host, End-to-End id): a request
seen before is answered from the cache of recent answers (bounded), or dropped
while its first copy is still being served. Each connection serves at most
``max_inflight`` requests at once; beyond that it answers 3004
DIAMETER_TOO_BUSY at once, so a flood cannot queue unbounded work. Bad input
is answered with the RFC 6733 §7.1 result code and Failed-AVP (§7.5), and the
connection is closed when framing is lost (bad version or length).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from simtrust.audit import AuditLog
from simtrust.diameter import _dictionary as d
from simtrust.diameter._codec import (
    FLAG_ERROR,
    FLAG_PROXIABLE,
    FLAG_REQUEST,
    FLAG_RETRANSMIT,
    HEADER_LEN,
    Avp,
    DiameterError,
    Message,
    decode_message,
    parse_header,
)

__all__ = ["BatchHandler", "DiameterNode", "Handler", "NodeSettings", "PeerInfo", "tls_context"]

_log = logging.getLogger("simtrust.diameter")

#: The applications simtrust serves, advertised in CEA as vendor-specific (3GPP).
SERVED_APPS = (d.APP_S6A, d.APP_S13)


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Identity and limits of the local node."""

    origin_host: str
    origin_realm: str
    peers: frozenset[str]
    host_ip: str = "127.0.0.1"
    product_name: str = "simtrust"
    watchdog_s: float = 30.0
    request_timeout_s: float = 10.0
    max_inflight: int = 256
    duplicate_cache: int = 65_536
    workers: int = 32
    #: TLS at connection establishment (RFC 6733 §13.1); None: plain TCP.
    tls: ssl.SSLContext | None = None


def tls_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """The server side of RFC 6733 §13: TLS 1.2+, the peer's certificate required and
    verified against ``ca`` (mutual authentication, §13.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who sent a request: its Origin-Host and Origin-Realm from the CER."""

    host: str
    realm: str


#: Answers a request: a Message, or its wire form already encoded.
Handler = Callable[[Message, PeerInfo], Message | bytes]
#: Serves requests that arrived together; per request an answer (a Message or its wire
#: form) or its DiameterError.
BatchHandler = Callable[
    [Sequence[tuple[Message, PeerInfo]]], Sequence[Message | bytes | Exception]]
#: Batches of one batch handler run at once. One: the requests that arrive while it
#: runs queue on the event loop and form the next batch. With two, the second batch's
#: Python ran beside the first's commit under the one GIL and each waited for the other,
#: more CPU per AIR and a longer tail (docs/decisions/corenet-s6a-open-tail.md).
_BATCHES_IN_FLIGHT = 1
#: Octets asked of a connection per read (every whole message in them is served).
_READ_SIZE = 262_144


@dataclass(eq=False)
class _Peer:
    info: PeerInfo
    writer: asyncio.StreamWriter
    apps: frozenset[int]
    opened: float = field(default_factory=time.time)
    last_rx: float = field(default_factory=time.monotonic)
    inflight: int = 0
    dwr_pending: bool = False
    pending: dict[int, asyncio.Future[Message]] = field(default_factory=dict)


def answer_to(
    request: Message, avps: list[Avp], *, error: bool = False
) -> Message:
    """An answer frame for ``request`` (same command, application and ids)."""
    flags = request.flags & FLAG_PROXIABLE
    if error:
        flags |= FLAG_ERROR
    return Message(request.code, flags, request.app_id, request.hop_by_hop,
                   request.end_to_end, avps)


class DiameterNode:
    """The Diameter listener: peers, base protocol, dispatch to application handlers."""

    def __init__(
        self,
        settings: NodeSettings,
        handlers: Mapping[tuple[int, int], Handler],
        audit: AuditLog,
        batch_handlers: Mapping[tuple[int, int], BatchHandler] | None = None,
    ) -> None:
        self.settings = settings
        self._handlers = dict(handlers)
        self._batch_handlers = dict(batch_handlers or {})
        # Per batch handler: requests waiting for a batch, and batches running.
        self._batch_queue: dict[tuple[int, int], list[tuple[_Peer, Message, tuple[str, int]]]] = {}
        self._batch_running: dict[tuple[int, int], int] = {}
        self._audit = audit
        self._peers: dict[str, _Peer] = {}
        self._seen: OrderedDict[tuple[str, int], bytes | None] = OrderedDict()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="diameter")
        self._hbh = itertools.count(int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF)
        # RFC 6733 §3: high 12 bits from the start time, low 20 a counter.
        self._e2e_high = (int(time.time()) & 0xFFF) << 20
        self._e2e = itertools.count(int.from_bytes(os.urandom(3), "big") & 0xFFFFF)
        self._tasks: set[asyncio.Task[None]] = set()
        self.state_id = int(time.time()) & 0xFFFFFFFF
        #: Counters of the base protocol (watchdogs seen and answered, refusals).
        self.stats: dict[str, int] = {"dwr_received": 0, "dwa_received": 0,
                                      "dwr_sent": 0, "refused": 0, "duplicates": 0}

    def __repr__(self) -> str:
        return f"DiameterNode({self.settings.origin_host!r}, peers={sorted(self._peers)})"

    # -- life cycle ----------------------------------------------------------

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0 for an ephemeral port); return the bound address."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  ssl=self.settings.tls)
        sock = self._server.sockets[0].getsockname()
        self._tasks.add(asyncio.create_task(self._watchdog()))
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        """Send DPR to every peer, stop listening and the workers."""
        for peer in list(self._peers.values()):
            with contextlib.suppress(DiameterError, asyncio.TimeoutError, ConnectionError):
                dpr = self._base_request(d.CMD_DPR, [
                    Avp.u32(d.DISCONNECT_CAUSE, d.DISCONNECT_REBOOTING)])
                await asyncio.wait_for(self._send_request(peer, dpr), 2.0)
            peer.writer.close()
        self._peers.clear()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def peers(self) -> list[dict[str, Any]]:
        """The peer table: host, realm, applications, opened (epoch seconds), in flight."""
        return [{"host": p.info.host, "realm": p.info.realm, "apps": sorted(p.apps),
                 "opened": p.opened, "inflight": p.inflight}
                for p in self._peers.values()]

    # -- originating requests (CLR, IDR, DWR, DPR) -------------------------------

    def next_ids(self) -> tuple[int, int]:
        """A fresh (hop-by-hop, end-to-end) pair."""
        return (next(self._hbh) & 0xFFFFFFFF,
                self._e2e_high | (next(self._e2e) & 0xFFFFF))

    async def request(self, host: str, message: Message) -> Message:
        """Send ``message`` to the connected peer ``host``; return its answer."""
        peer = self._peers.get(host)
        if peer is None:
            raise DiameterError(d.UNABLE_TO_DELIVER, f"peer {host} is not connected")
        return await self._send_request(peer, message)

    async def _send_request(self, peer: _Peer, message: Message) -> Message:
        message.hop_by_hop, message.end_to_end = self.next_ids()
        assert self._loop is not None
        future: asyncio.Future[Message] = self._loop.create_future()
        peer.pending[message.hop_by_hop] = future
        try:
            peer.writer.write(message.encode())
            await peer.writer.drain()
            return await asyncio.wait_for(future, self.settings.request_timeout_s)
        finally:
            peer.pending.pop(message.hop_by_hop, None)

    def _identity(self) -> list[Avp]:
        return [Avp.text(d.ORIGIN_HOST, self.settings.origin_host),
                Avp.text(d.ORIGIN_REALM, self.settings.origin_realm)]

    def _base_request(self, code: int, avps: list[Avp]) -> Message:
        return Message(code, FLAG_REQUEST, d.APP_BASE, 0, 0, [*self._identity(), *avps])

    # -- connections -----------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer: _Peer | None = None
        buf = b""
        try:
            # Read what has arrived and frame every whole message in it: one read per
            # burst of requests, not two awaits per message.
            while chunk := await reader.read(_READ_SIZE):
                buf = buf + chunk if buf else chunk
                pos, end, closing = 0, len(buf), False
                while end - pos >= HEADER_LEN:
                    header = buf[pos:pos + HEADER_LEN]
                    try:
                        length = parse_header(header)[0]
                    except DiameterError as exc:
                        self._answer_raw_error(writer, header, exc)
                        closing = True
                        break
                    if end - pos < length:
                        break
                    raw = buf[pos:pos + length]
                    pos += length
                    try:
                        message = decode_message(raw)
                    except DiameterError as exc:
                        self._answer_raw_error(writer, raw, exc)
                        if exc.fatal:
                            closing = True
                            break
                        continue
                    if peer is None:
                        peer = await self._capabilities(message, writer)
                        if peer is None:
                            closing = True
                            break
                        continue
                    peer.last_rx = time.monotonic()
                    if not self._dispatch(peer, message):
                        closing = True
                        break
                if closing:
                    break
                buf = buf[pos:]
        except ConnectionError:
            pass
        finally:
            if peer is not None and self._peers.get(peer.info.host) is peer:
                del self._peers[peer.info.host]
                for future in peer.pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError("peer disconnected"))
                self._audit_peer(peer.info, "diameter.peer-closed", "success", "")
            writer.close()

    async def _capabilities(
        self, cer: Message, writer: asyncio.StreamWriter
    ) -> _Peer | None:
        """Answer the first message, which must be a CER; return the opened peer."""
        if cer.code != d.CMD_CER or not cer.is_request:
            _log.warning("first message was command %d, not a CER; closing", cer.code)
            return None
        host = cer.text(d.ORIGIN_HOST)
        realm = cer.text(d.ORIGIN_REALM)
        if host is None or realm is None:
            missing = d.ORIGIN_HOST if host is None else d.ORIGIN_REALM
            await self._write_close(writer, self._error(
                cer, d.MISSING_AVP, "Origin-Host and Origin-Realm are required",
                failed=Avp(missing, b"").encode()))
            return None
        info = PeerInfo(host, realm)
        if host not in self.settings.peers:
            self.stats["refused"] += 1
            self._audit_peer(info, "diameter.peer-refused", "failure", "unknown-peer")
            await self._write_close(writer, self._error(
                cer, d.UNKNOWN_PEER, "peer is not in the peer table"))
            return None
        apps = self._peer_apps(cer)
        common = frozenset(SERVED_APPS) if d.APP_RELAY in apps else apps & set(SERVED_APPS)
        if not common:
            self._audit_peer(info, "diameter.peer-refused", "failure", "no-common-application")
            await self._write_close(writer, self._error(
                cer, d.NO_COMMON_APPLICATION, "neither S6a nor S13 is advertised"))
            return None
        old = self._peers.get(host)
        if old is not None:
            old.writer.close()
        peer = _Peer(info, writer, common)
        self._peers[host] = peer
        writer.write(answer_to(cer, [
            Avp.u32(d.RESULT_CODE, d.SUCCESS), *self._capability_avps(common),
        ]).encode())
        await writer.drain()
        self._audit_peer(info, "diameter.peer-open", "success", "",
                         {"apps": sorted(common), "replaced": old is not None})
        return peer

    @staticmethod
    def _peer_apps(cer: Message) -> frozenset[int]:
        apps = {a.as_u32() for a in cer.find_all(d.AUTH_APPLICATION_ID)}
        apps |= {a.as_u32() for a in cer.find_all(d.ACCT_APPLICATION_ID)}
        for vsa in cer.find_all(d.VENDOR_SPECIFIC_APPLICATION_ID):
            for child in vsa.children():
                if child.code in (d.AUTH_APPLICATION_ID, d.ACCT_APPLICATION_ID):
                    apps.add(child.as_u32())
        return frozenset(apps)

    def _capability_avps(self, apps: frozenset[int]) -> list[Avp]:
        return [
            *self._identity(),
            Avp.address(d.HOST_IP_ADDRESS, self.settings.host_ip),
            Avp.u32(d.VENDOR_ID, 0),
            Avp.text(d.PRODUCT_NAME, self.settings.product_name, mandatory=False),
            Avp.u32(d.ORIGIN_STATE_ID, self.state_id),
            Avp.u32(d.SUPPORTED_VENDOR_ID, d.VENDOR_3GPP),
            *(Avp.grouped(d.VENDOR_SPECIFIC_APPLICATION_ID, [
                Avp.u32(d.VENDOR_ID, d.VENDOR_3GPP), Avp.u32(d.AUTH_APPLICATION_ID, app)])
              for app in sorted(apps)),
            Avp.u32(d.FIRMWARE_REVISION, 1, mandatory=False),
        ]

    async def _write_close(self, writer: asyncio.StreamWriter, message: Message) -> None:
        writer.write(message.encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    # -- dispatch ----------------------------------------------------------------

    def _dispatch(self, peer: _Peer, message: Message) -> bool:
        """Handle one message of an open peer; False to close the connection."""
        if not message.is_request:
            future = peer.pending.get(message.hop_by_hop)
            if message.code == d.CMD_DWR:
                peer.dwr_pending = False
                self.stats["dwa_received"] += 1
            if future is not None and not future.done():
                future.set_result(message)
            return True
        if message.app_id == d.APP_BASE:
            if message.code == d.CMD_DWR:
                self.stats["dwr_received"] += 1
                self._write(peer, answer_to(message, [
                    Avp.u32(d.RESULT_CODE, d.SUCCESS), *self._identity(),
                    Avp.u32(d.ORIGIN_STATE_ID, self.state_id)]))
                return True
            if message.code == d.CMD_DPR:
                self._write(peer, answer_to(message, [
                    Avp.u32(d.RESULT_CODE, d.SUCCESS), *self._identity()]))
                self._audit_peer(peer.info, "diameter.peer-disconnect", "success",
                                 str(message.u32(d.DISCONNECT_CAUSE)))
                return False
            self._write(peer, self._error(message, d.COMMAND_UNSUPPORTED,
                                          f"base command {message.code} is not served"))
            return True
        handler = self._handlers.get((message.app_id, message.code))
        if message.app_id not in peer.apps:
            self._write(peer, self._error(message, d.APPLICATION_UNSUPPORTED,
                                          "application not negotiated"))
            return True
        if handler is None and (message.app_id, message.code) not in self._batch_handlers:
            self._write(peer, self._error(message, d.COMMAND_UNSUPPORTED,
                                          f"command {message.code} is not served"))
            return True
        key = (peer.info.host, message.end_to_end)
        if key in self._seen:
            self.stats["duplicates"] += 1
            cached = self._seen[key]
            if cached is not None:
                # Same answer, new hop-by-hop id (RFC 6733 §6.1.4).
                self._write_raw(peer, cached[:12] + struct.pack(">I", message.hop_by_hop)
                                + cached[16:])
            return True
        if peer.inflight >= self.settings.max_inflight:
            self._write(peer, self._error(message, d.TOO_BUSY, "too many requests in flight"))
            return True
        self._seen[key] = None
        while len(self._seen) > self.settings.duplicate_cache:
            self._seen.popitem(last=False)
        peer.inflight += 1
        command = (message.app_id, message.code)
        if command in self._batch_handlers:
            queue = self._batch_queue.setdefault(command, [])
            queue.append((peer, message, key))
            if len(queue) == 1:
                # after this read burst (and the other peers' ready reads) is dispatched
                asyncio.get_running_loop().call_soon(self._start_batch, command)
            return True
        assert handler is not None
        task = asyncio.create_task(self._run(peer, handler, message, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(
        self, peer: _Peer, handler: Handler, message: Message, key: tuple[str, int]
    ) -> None:
        assert self._loop is not None
        try:
            answer = await self._loop.run_in_executor(self._executor, handler, message, peer.info)
        except DiameterError as exc:
            answer = self._error(message, exc.result_code, exc.detail, failed=exc.failed_avp)
        except Exception:  # noqa: BLE001 - a handler bug costs one answer (5012), not the connection
            _log.exception("handler for command %d failed", message.code)
            answer = self._error(message, d.UNABLE_TO_COMPLY, "internal error")
        finally:
            peer.inflight -= 1
        raw = answer if isinstance(answer, bytes) else answer.encode()
        if key in self._seen:
            self._seen[key] = raw
        self._write_raw(peer, raw)

    def _start_batch(self, command: tuple[int, int]) -> None:
        """Hand the queued requests of a batch handler to a worker, unless enough run."""
        queue = self._batch_queue.get(command)
        if not queue or self._batch_running.get(command, 0) >= _BATCHES_IN_FLIGHT:
            return
        self._batch_queue[command] = []
        self._batch_running[command] = self._batch_running.get(command, 0) + 1
        task = asyncio.create_task(self._run_batch(command, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(
        self, command: tuple[int, int], batch: list[tuple[_Peer, Message, tuple[str, int]]]
    ) -> None:
        assert self._loop is not None
        handler = self._batch_handlers[command]
        try:
            answers: Sequence[Message | bytes | Exception] = await self._loop.run_in_executor(
                self._executor, handler, [(message, peer.info) for peer, message, _ in batch])
        except Exception as exc:  # noqa: BLE001 - a failed batch costs its answers (5012)
            _log.exception("batch handler for command %d failed", command[1])
            answers = [exc] * len(batch)
        finally:
            self._batch_running[command] -= 1
            self._start_batch(command)
        # The answers of a batch leave in one write per connection, in request order.
        out: dict[_Peer, list[bytes]] = {}
        for (peer, message, key), outcome in zip(batch, answers, strict=True):
            peer.inflight -= 1
            raw: bytes
            if isinstance(outcome, DiameterError):
                raw = self._error(message, outcome.result_code, outcome.detail,
                                  failed=outcome.failed_avp).encode()
            elif isinstance(outcome, Exception):
                raw = self._error(message, d.UNABLE_TO_COMPLY, "internal error").encode()
            elif isinstance(outcome, bytes):
                raw = outcome  # encoded by the handler
            else:
                raw = outcome.encode()
            if key in self._seen:
                self._seen[key] = raw
            out.setdefault(peer, []).append(raw)
        for peer, raws in out.items():
            self._write_raw(peer, raws[0] if len(raws) == 1 else b"".join(raws))

    def _write(self, peer: _Peer, message: Message) -> None:
        self._write_raw(peer, message.encode())

    @staticmethod
    def _write_raw(peer: _Peer, raw: bytes) -> None:
        if not peer.writer.is_closing():
            peer.writer.write(raw)

    def _error(
        self, request: Message, code: int, detail: str, *, failed: bytes | None = None
    ) -> Message:
        """An error answer: E-bit for protocol errors (3xxx), Failed-AVP when known."""
        avps: list[Avp] = []
        session = request.find(d.SESSION_ID)
        if session is not None:
            avps.append(session)
        avps += [Avp.u32(d.RESULT_CODE, code), *self._identity(),
                 Avp.text(d.ERROR_MESSAGE, detail[:200], mandatory=False)]
        if failed is not None:
            avps.append(Avp(d.FAILED_AVP, failed))
        return answer_to(request, avps, error=3000 <= code < 4000)

    def _answer_raw_error(
        self, writer: asyncio.StreamWriter, raw: bytes, exc: DiameterError
    ) -> None:
        """Answer a request that did not decode, from its header fields alone."""
        if len(raw) < HEADER_LEN:
            return
        word1, app_id, hbh, e2e = struct.unpack_from(">I I I I", raw, 4)
        flags, code = word1 >> 24, word1 & 0xFFFFFF
        if not flags & FLAG_REQUEST:
            return  # never answer an answer
        request = Message(code, flags & ~FLAG_RETRANSMIT, app_id, hbh, e2e)
        _log.info("refused malformed message (command %d): %s", code, exc.detail)
        writer.write(self._error(request, exc.result_code, exc.detail,
                                 failed=exc.failed_avp).encode())

    # -- watchdog ------------------------------------------------------------------

    async def _watchdog(self) -> None:
        interval = self.settings.watchdog_s
        while True:
            await asyncio.sleep(min(interval, 1.0))
            now = time.monotonic()
            for peer in list(self._peers.values()):
                idle = now - peer.last_rx
                if peer.dwr_pending and idle > 2 * interval:
                    _log.warning("peer %s missed its watchdog; closing", peer.info.host)
                    peer.writer.close()
                elif not peer.dwr_pending and idle > interval:
                    peer.dwr_pending = True
                    dwr = self._base_request(d.CMD_DWR, [
                        Avp.u32(d.ORIGIN_STATE_ID, self.state_id)])
                    dwr.hop_by_hop, dwr.end_to_end = self.next_ids()
                    self._write_raw(peer, dwr.encode())
                    self.stats["dwr_sent"] += 1

    def _audit_peer(
        self, info: PeerInfo, action: str, outcome: str, reason: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._audit.append(actor=f"diameter:{info.host}", action=action,
                           subject=f"diameter-peer:{info.host}", outcome=outcome,
                           reason=reason, details={"realm": info.realm, **(details or {})})
