"""The LwM2M device-management server: the Registration interface (OMA-TS-LightweightM2M_
Transport-V1_1_1 §6.4 on /rd; Core V1_1_1 §6.2 Register, Update, De-register) and the
Device Management & Service Enablement interface (Core §6.3: Read, Write, Execute, Discover,
Write-Attributes; §6.4 Observe), with queue mode (Core §6.5).

An endpoint is tied to a SIM: over DTLS the PSK identity names the IMSI (a credential the
bootstrap server provisioned), and the endpoint name (``urn:imei-imsi:<IMEI>-<IMSI>`` or
``urn:imei:<IMEI>``, Core §7.3.1) must agree with it. The IMEI a SIM reports is kept; a
changed IMEI or a registration whose lifetime runs out raises an alert.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simtrust.alerts import AlertDeliveryError, AlertSink, alert_topic
from simtrust.devices._blockwise import (
    Block1Assembler,
    BlockSource,
    BodyTooLarge,
    exchange,
    fetch_rest,
    final_block1,
)
from simtrust.devices._coap import CON, Code, Message, Opt, uint_option
from simtrust.devices._content import (
    CF_LINK,
    CF_SENML_CBOR,
    CF_TEXT,
    check_links,
    decode_content,
    encode_content,
    parse_links,
)
from simtrust.devices._credentials import DM, CredentialStore
from simtrust.devices._endpoint import parse_endpoint
from simtrust.devices._objects import Path, Value, format_path
from simtrust.devices._send import handle_send
from simtrust.devices._transport import CoapEndpoint, Peer
from simtrust.domain import Imsi
from simtrust.errors import DecodeError, NotFound, SimtrustError
from simtrust.subscriber import Sim, SimState

__all__ = [
    "DeviceAlert",
    "DeviceManager",
    "OperationFailed",
    "Registration",
    "SimFinder",
    "parse_endpoint",
]

#: Core §6.5 / Transport §6.6: a queue-mode client listens for MAX_TRANSMIT_WAIT (93 s)
#: after it last sent a message.
AWAKE_S = 93.0
#: Registrations a SIM may send per window before it is answered 4.29.
REGISTRATION_BURST = 10
REGISTRATION_WINDOW_S = 60.0
#: A Register/Update body assembled from Block1 blocks (RFC 7959 §2.5) is at most this.
REGISTRATION_MAX = 16 * 1024
_MIN_LIFETIME = 1
_MAX_LIFETIME = 0xFFFFFFFF


class SimFinder(Protocol):
    """The inventory as the servers see it (``simtrust.subscriber.Inventory``). A finder
    that also has ``sim_standing(imsi)`` (the inventory's four-column read) is asked that
    at registration instead of building a whole :class:`Sim`."""

    def find_sim(self, imsi: Imsi) -> Sim | None: ...


#: (ICCID, tenant, state value, group id) of a SIM, read at each registration.
Standing = tuple[str, str, str, int | None]
_REGISTERABLE = frozenset({SimState.ACTIVE.value, SimState.TEST.value})


class OperationFailed(SimtrustError):
    """The device answered an LwM2M operation with an error code (or not at all)."""

    code = "lwm2m-operation-failed"
    status = 502


@dataclass(slots=True, eq=False)
class Registration:
    """One registered client (Core §6.2.1 parameters), held in memory."""

    reg_id: str
    endpoint: str
    imsi: str
    iccid: str
    tenant_id: str
    imei: str | None
    lifetime: int
    binding: str
    version: str
    queue: bool
    links: str
    peer: Peer
    registered_at: float
    updated_at: float
    firmware: str | None = None
    group_id: int | None = None

    @property
    def expires_at(self) -> float:
        return self.updated_at + self.lifetime

    def objects(self) -> list[str]:
        return [target for target, _ in parse_links(self.links.encode())] if self.links else []

    def to_json(self) -> dict[str, Any]:
        return {
            "registration_id": self.reg_id, "endpoint": self.endpoint, "imsi": self.imsi,
            "iccid": self.iccid, "tenant_id": self.tenant_id, "imei": self.imei,
            "lifetime": self.lifetime, "binding": self.binding, "lwm2m_version": self.version,
            "queue_mode": self.queue, "objects": self.objects(), "address": self.peer.uri,
            "secure": self.peer.secure, "firmware_version": self.firmware,
            "group_id": self.group_id,
            "registered_at": datetime.fromtimestamp(self.registered_at).astimezone().isoformat(),
            "updated_at": datetime.fromtimestamp(self.updated_at).astimezone().isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeviceAlert:
    """``imei-changed``, ``stopped-registering``, ``rollout-halted`` as the alert stack
    delivers them."""

    kind: str
    tenant_id: str
    imsi: str
    endpoint: str
    summary: str
    at: str
    details: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = field(default=None, compare=False)

    @property
    def source(self) -> str:
        return "devices"

    @property
    def topic(self) -> str:
        return alert_topic(self)

    def document(self) -> dict[str, Any]:
        return {"type": f"simtrust.devices.{self.kind}", "kind": self.kind,
                "tenant_id": self.tenant_id, "imsi": self.imsi, "endpoint": self.endpoint,
                "summary": self.summary, "at": self.at, **dict(self.details)}


def _ok(code: int) -> bool:
    return 0x40 <= code < 0x80


class DeviceManager:
    """Registrations and the operations on registered devices."""

    def __init__(self, sims: SimFinder, credentials: CredentialStore,
                 sinks: Sequence[AlertSink[DeviceAlert]], clock: Callable[[], datetime], *,
                 allow_nosec: bool = False, awake_s: float = AWAKE_S) -> None:
        self._sims = sims
        self._standing: Callable[[str], Standing | None] = getattr(
            sims, "sim_standing", self._standing_of_sim)
        self._ids = b""  # registration ids are cut from one urandom read of 3 KiB
        self._credentials = credentials
        self._sinks = list(sinks)
        self._clock = clock
        self._allow_nosec = allow_nosec
        self._awake_s = awake_s
        self.endpoint = CoapEndpoint(self.handle)
        self._regs: dict[str, Registration] = {}
        self._by_endpoint: dict[str, str] = {}
        self._by_imsi: dict[str, str] = {}
        # Per SIM: (window start, registrations in it) -- a fixed window keeps two numbers per
        # SIM instead of a timestamp log, so a million registered devices stay small.
        self._recent: dict[str, tuple[float, int]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self.refused: dict[str, int] = {}
        self._block1 = Block1Assembler(REGISTRATION_MAX, max_transfers=1024,
                                       on_refuse=lambda why: self._count(f"block-{why}"))
        self.alerts_failed = 0
        self.listeners: list[Callable[[str, Registration], None]] = []
        #: (registration, values) for every report: Read and Observe answers, notifications,
        #: LwM2M 1.2 Send (``devices/_send.py``); ``devices/_reports.py`` feeds fraud checks.
        self.report_listeners: list[Callable[[Registration, Mapping[Path, Value]], None]] = []

    def __repr__(self) -> str:
        return f"DeviceManager({len(self._regs)} registered)"

    # -- queries --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._regs)

    def registrations(self, tenant_id: str | None = None) -> list[Registration]:
        return [r for r in self._regs.values() if tenant_id is None or r.tenant_id == tenant_id]

    def get(self, endpoint: str) -> Registration:
        reg_id = self._by_endpoint.get(endpoint)
        if reg_id is None:
            raise NotFound("no registered device with that endpoint name",
                           reason="not-registered")
        return self._regs[reg_id]

    def get_by_imsi(self, imsi: str) -> Registration:
        reg_id = self._by_imsi.get(imsi)
        if reg_id is None:
            raise NotFound("the SIM's device is not registered", reason="not-registered")
        return self._regs[reg_id]

    def _count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def _refuse(self, reason: str, msg: Message, code: int) -> Message:
        self._count(reason)
        return msg.reply(code, reason.encode())

    refuse = _refuse

    # -- Registration interface (Transport §6.4) ----------------------------------------------

    def handle(self, peer: Peer, msg: Message) -> Message | None:
        path = msg.path
        if not path or path[0] not in ("rd", "dp"):
            return self._refuse("not-found", msg, Code.NOT_FOUND)
        if msg.first(Opt.BLOCK1) is not None:  # a body too large for one datagram
            got = self._block1.feed((peer.addr, peer.identity, msg.code, tuple(msg.path),
                                     tuple(msg.values(Opt.URI_QUERY))), msg)
            if isinstance(got, Message):
                return got  # 2.31 Continue, or 4.00/4.08/4.13 (counted)
            whole = Message(msg.mtype, msg.code, msg.mid, msg.token, tuple(
                o for o in msg.options if o[0] not in (Opt.BLOCK1, Opt.SIZE1)), got)
            answer = self.handle(peer, whole)
            return None if answer is None else final_block1(msg, answer)
        if path == ["dp"]:  # LwM2M 1.2 Send
            return handle_send(self, peer, msg)
        if len(path) == 1 and msg.code == Code.POST:
            return self._register(peer, msg)
        if len(path) == 2 and msg.code == Code.POST:
            return self._update(peer, msg, path[1])
        if len(path) == 2 and msg.code == Code.DELETE:
            return self._deregister(peer, msg, path[1])
        return self._refuse("method", msg, Code.METHOD_NOT_ALLOWED)

    def _now(self) -> float:
        return self._clock().timestamp()

    def _register(self, peer: Peer, msg: Message) -> Message:
        query = msg.query
        name = query.get("ep", "")
        try:
            imei, imsi = parse_endpoint(name)
            lifetime = int(query.get("lt", "86400"))
            if msg.payload and msg.content_format not in (None, CF_LINK):
                return self._refuse("content-format", msg, Code.UNSUPPORTED_CONTENT_FORMAT)
            links = check_links(msg.payload) if msg.payload else ""
        except (DecodeError, ValueError, UnicodeDecodeError):
            return self._refuse("bad-registration", msg, Code.BAD_REQUEST)
        if not _MIN_LIFETIME <= lifetime <= _MAX_LIFETIME:
            return self._refuse("bad-registration", msg, Code.BAD_REQUEST)
        if peer.secure:
            entry = peer.entry
            if entry is None or entry.purpose != DM or entry.imsi is None:
                return self._refuse("wrong-credential", msg, Code.FORBIDDEN)
            if imsi is not None and imsi != entry.imsi:
                return self._refuse("endpoint-mismatch", msg, Code.FORBIDDEN)
            # A certificate naming an IMEI binds the endpoint name to it (_certauth.py).
            if entry.imei is not None and imei is not None and imei[:14] != entry.imei[:14]:
                return self._refuse("endpoint-mismatch", msg, Code.FORBIDDEN)
            imsi = entry.imsi
        elif not self._allow_nosec or imsi is None:
            return self._refuse("nosec", msg, Code.FORBIDDEN)
        standing = self._standing(imsi)  # read now, never cached: a suspended SIM is refused
        if standing is None or standing[2] not in _REGISTERABLE:
            return self._refuse("sim-not-active", msg, Code.FORBIDDEN)
        iccid, tenant_id, _, group_id = standing
        if peer.entry is not None and peer.entry.tenant_id not in (None, tenant_id):
            return self._refuse("wrong-credential", msg, Code.FORBIDDEN)
        now = self._now()
        start, count = self._recent.get(imsi, (now, 0))
        if now - start >= REGISTRATION_WINDOW_S:
            start, count = now, 0
        if count >= REGISTRATION_BURST:
            return self._refuse("flood", msg, Code.TOO_MANY_REQUESTS)
        self._recent[imsi] = (start, count + 1)
        binding = query.get("b", "U")
        queue = "Q" in query or "Q" in binding
        # One registration per endpoint and per SIM: a SIM seen in a new device replaces
        # the registration of the old one.
        previous = self._regs.get(self._by_imsi.get(imsi) or "")
        for old_id in {self._by_endpoint.get(name), self._by_imsi.get(imsi)} - {None}:
            old = self._regs.get(old_id or "")
            if old is not None:
                self._drop(old)
        if len(self._ids) < 6:
            self._ids = os.urandom(3072)
        reg_id, self._ids = self._ids[:6].hex(), self._ids[6:]
        reg = Registration(
            reg_id=sys.intern(reg_id), endpoint=name, imsi=imsi, iccid=iccid,
            tenant_id=sys.intern(tenant_id), imei=imei, lifetime=lifetime,
            binding=sys.intern(binding.replace("Q", "") or "U"),
            version=sys.intern(query.get("lwm2m", "1.0")), queue=queue, links=sys.intern(links),
            peer=peer,
            registered_at=now, updated_at=now, group_id=group_id)
        self._regs[reg_id] = reg
        self._by_endpoint[name] = reg_id
        self._by_imsi[imsi] = reg_id
        self._check_imei(reg, None if previous is None else previous.imei)
        self._woke(reg)
        for listener in self.listeners:
            listener("registered", reg)
        return msg.reply(Code.CREATED, options=[(Opt.LOCATION_PATH, b"rd"),
                                                (Opt.LOCATION_PATH, reg_id.encode())])

    def _standing_of_sim(self, imsi: str) -> Standing | None:
        sim = self._sims.find_sim(Imsi(imsi))
        return None if sim is None else (sim.iccid.value, sim.tenant_id, sim.state.value,
                                         sim.group_id)

    def _owned(self, peer: Peer, msg: Message, reg_id: str) -> Registration | Message:
        reg = self._regs.get(reg_id)
        if reg is None:
            return self._refuse("unknown-registration", msg, Code.NOT_FOUND)
        if reg.peer.identity != peer.identity or (not peer.secure and reg.peer.addr != peer.addr
                                                  and not self._allow_nosec):
            return self._refuse("not-owner", msg, Code.FORBIDDEN)
        return reg

    def _update(self, peer: Peer, msg: Message, reg_id: str) -> Message:
        reg = self._owned(peer, msg, reg_id)
        if isinstance(reg, Message):
            return reg
        query = msg.query
        try:
            if "lt" in query:
                lifetime = int(query["lt"])
                if not _MIN_LIFETIME <= lifetime <= _MAX_LIFETIME:
                    raise ValueError(lifetime)
                reg.lifetime = lifetime
            if msg.payload:
                reg.links = sys.intern(check_links(msg.payload))
        except (DecodeError, ValueError, UnicodeDecodeError):
            return self._refuse("bad-update", msg, Code.BAD_REQUEST)
        if "b" in query:
            reg.binding = sys.intern(query["b"].replace("Q", "") or "U")
        reg.peer = peer  # the address may change behind NAT (Transport §6.4.2)
        reg.updated_at = self._now()
        self._woke(reg)
        for listener in self.listeners:
            listener("updated", reg)
        return msg.reply(Code.CHANGED)

    def _deregister(self, peer: Peer, msg: Message, reg_id: str) -> Message:
        reg = self._owned(peer, msg, reg_id)
        if isinstance(reg, Message):
            return reg
        self._drop(reg)
        for listener in self.listeners:
            listener("deregistered", reg)
        return msg.reply(Code.DELETED)

    def _drop(self, reg: Registration) -> None:
        self._regs.pop(reg.reg_id, None)
        if self._by_endpoint.get(reg.endpoint) == reg.reg_id:
            del self._by_endpoint[reg.endpoint]
        if self._by_imsi.get(reg.imsi) == reg.reg_id:
            del self._by_imsi[reg.imsi]

    def _check_imei(self, reg: Registration, in_memory: str | None) -> None:
        """Compare the reported IMEI with the SIM's last one: the one handed over and not yet
        written, else the one of the registration this replaces, else -- without a store
        query on the loop -- the stored one, compared by the credential store's writer."""
        if reg.imei is None:
            return
        pending, before = self._credentials.pending_imei(reg.imsi)
        if not pending and in_memory is None:
            self._credentials.record_imei(
                reg.imsi, reg.endpoint, reg.imei,
                changed=lambda stored: self._imei_changed(reg, stored))
            return
        before = before if pending else in_memory
        if before != reg.imei:
            self._credentials.record_imei(reg.imsi, reg.endpoint, reg.imei)
            if before is not None:
                self._imei_changed(reg, before)

    def _imei_changed(self, reg: Registration, before: str) -> None:
        self._alert("imei-changed", reg,
                    f"SIM {reg.imsi} now reports IMEI {reg.imei} (was {before})",
                    {"imei": reg.imei, "previous_imei": before, "iccid": reg.iccid})

    def _alert(self, kind: str, reg: Registration, summary: str,
               details: Mapping[str, Any]) -> None:
        alert = DeviceAlert(kind, reg.tenant_id, reg.imsi, reg.endpoint, summary,
                            self._clock().isoformat(), details)
        for sink in self._sinks:
            try:
                sink.send(alert)
            except AlertDeliveryError:
                self.alerts_failed += 1

    def alert(self, kind: str, reg: Registration, summary: str,
              details: Mapping[str, Any]) -> None:
        """Raise a device alert through the sinks (campaigns use it too)."""
        self._alert(kind, reg, summary, details)

    def expire(self) -> list[Registration]:
        """Drop registrations whose lifetime ran out (Core §6.2.1: the server removes them)
        and alert that the device stopped registering."""
        now = self._now()
        gone = [r for r in self._regs.values() if r.expires_at < now]
        for reg in gone:
            self._drop(reg)
            self._alert("stopped-registering", reg,
                        f"{reg.endpoint} has not updated its registration for "
                        f"{int(now - reg.updated_at)} s (lifetime {reg.lifetime} s)",
                        {"iccid": reg.iccid, "imei": reg.imei, "last_update": reg.updated_at})
            for listener in self.listeners:
                listener("expired", reg)
        return gone

    # -- queue mode ---------------------------------------------------------------------------

    def _woke(self, reg: Registration) -> None:
        event = self._wake.pop(reg.endpoint, None)
        if event is not None:
            event.set()

    def awake(self, reg: Registration) -> bool:
        return not reg.queue or self._now() - reg.updated_at <= self._awake_s

    async def _reachable(self, reg: Registration, timeout: float) -> Registration:
        """Wait for a sleeping queue-mode device to send its next Update (Core §6.5)."""
        while not self.awake(reg):
            event = self._wake.setdefault(reg.endpoint, asyncio.Event())
            await asyncio.wait_for(event.wait(), timeout)
            reg = self.get(reg.endpoint)
        return reg

    def queued(self) -> list[str]:
        """Endpoints with operations waiting for them to wake up."""
        return sorted(self._wake)

    # -- DM & Service Enablement interface (Core §6.3, §6.4) -------------------------------------

    async def send(self, endpoint: str, code: int, path: Path, *, payload: bytes = b"",
                   content_format: int | None = None, accept: int | None = None,
                   query: Sequence[str] = (), observe: int | None = None,
                   notify: Callable[[Peer, Message], None] | None = None,
                   timeout: float = 60.0, source: BlockSource | None = None) -> Message:
        """One request to a registered device, once it is reachable (queue mode); the body
        read block by block from ``source`` when given."""
        reg = await self._reachable(self.get(endpoint), timeout)
        options: list[tuple[int, bytes]] = [(Opt.URI_PATH, str(p).encode()) for p in path]
        if observe is not None:
            options.append((Opt.OBSERVE, uint_option(observe)))
        if content_format is not None:
            options.append((Opt.CONTENT_FORMAT, uint_option(content_format)))
        if accept is not None:
            options.append((Opt.ACCEPT, uint_option(accept)))
        options.extend((Opt.URI_QUERY, q.encode()) for q in query)
        msg = Message(CON, code, 0, b"", tuple(options), payload)
        try:  # bodies over one block go block-wise (RFC 7959, devices/_blockwise.py)
            return await exchange(self.endpoint, reg.peer, msg, timeout=timeout, observe=notify,
                                  source=source)
        except (TimeoutError, ConnectionResetError) as exc:
            raise OperationFailed(f"{endpoint} did not answer {format_path(path)}",
                                  reason="no-answer") from exc
        except (BodyTooLarge, DecodeError) as exc:
            raise OperationFailed(f"{endpoint}: block-wise {format_path(path)} failed: {exc}",
                                  reason="block-wise") from exc

    @staticmethod
    def check(resp: Message, what: str) -> Message:
        """``resp`` if it is a success, else :class:`OperationFailed` naming ``what``."""
        if not _ok(resp.code):
            raise OperationFailed(f"{what}: device answered {Code(resp.code).dotted}"
                                  if resp.code in Code._value2member_map_
                                  else f"{what}: device answered {resp.code:#x}",
                                  reason=f"coap-{resp.code >> 5}.{resp.code & 31:02d}")
        return resp

    async def read(self, endpoint: str, path: Path, *, fmt: int = CF_SENML_CBOR,
                   timeout: float = 60.0) -> dict[Path, Value]:
        resp = self.check(await self.send(endpoint, Code.GET, path, accept=fmt,
                                            timeout=timeout), f"read {format_path(path)}")
        values = decode_content(resp.content_format, resp.payload, path)
        self._learn(endpoint, values)
        return values

    def learn(self, endpoint: str, values: Mapping[Path, Value]) -> None:
        """What a device reported (read, notified or sent) updates its registration."""
        self._learn(endpoint, values)

    def _learn(self, endpoint: str, values: Mapping[Path, Value]) -> None:
        reg_id = self._by_endpoint.get(endpoint)
        if reg_id is None:
            return
        reg = self._regs[reg_id]
        firmware = values.get((3, 0, 3))
        if isinstance(firmware, str):
            reg.firmware = firmware
        for listener in self.report_listeners:
            listener(reg, values)

    async def discover(self, endpoint: str, path: Path, *,
                       timeout: float = 60.0) -> list[tuple[str, dict[str, str]]]:
        resp = self.check(await self.send(endpoint, Code.GET, path, accept=CF_LINK,
                                            timeout=timeout), f"discover {format_path(path)}")
        return parse_links(resp.payload)

    async def write(self, endpoint: str, path: Path, values: Mapping[Path, Value], *,
                    fmt: int = CF_SENML_CBOR, replace: bool = True,
                    timeout: float = 60.0) -> None:
        """Write (Core §6.3.3): PUT replaces, POST updates partially."""
        if fmt == CF_TEXT and len(values) == 1:
            payload = encode_content(CF_TEXT, values, path)
        else:
            payload = encode_content(fmt, values, path)
        self.check(await self.send(endpoint, Code.PUT if replace else Code.POST, path,
                                     payload=payload, content_format=fmt, timeout=timeout),
                    f"write {format_path(path)}")

    async def write_blocks(self, endpoint: str, path: Path, source: BlockSource, *,
                           fmt: int, timeout: float = 60.0) -> None:
        """Write (PUT) a single-resource body read block by block from ``source`` (an
        opaque package to /5/0/0), never held whole."""
        self.check(await self.send(endpoint, Code.PUT, path, content_format=fmt,
                                   timeout=timeout, source=source),
                   f"write {format_path(path)}")

    async def write_attributes(self, endpoint: str, path: Path, attrs: Mapping[str, str], *,
                               timeout: float = 60.0) -> None:
        """Write-Attributes (Core §6.3.4): pmin, pmax, gt, lt, st as query parameters."""
        self.check(await self.send(endpoint, Code.PUT, path, timeout=timeout,
                                     query=[f"{k}={v}" for k, v in attrs.items()]),
                    f"write-attributes {format_path(path)}")

    async def execute(self, endpoint: str, path: Path, args: str = "", *,
                      timeout: float = 60.0) -> None:
        self.check(await self.send(endpoint, Code.POST, path, payload=args.encode(),
                                     timeout=timeout), f"execute {format_path(path)}")

    async def observe(self, endpoint: str, path: Path,
                      callback: Callable[[dict[Path, Value]], None], *,
                      fmt: int = CF_SENML_CBOR, timeout: float = 60.0) -> bytes:
        """Observe (Core §6.4.1, RFC 7641): the current value is returned to ``callback``
        first; each notification after it too. Returns the token to cancel with."""

        joining: set[asyncio.Task[None]] = set()

        def deliver(msg: Message) -> None:
            try:
                values = decode_content(msg.content_format, msg.payload, path)
            except DecodeError:
                self.endpoint.counters.malformed += 1
                return
            self._learn(endpoint, values)
            callback(values)

        async def join(peer: Peer, msg: Message) -> None:
            request = tuple([(Opt.URI_PATH, str(p).encode()) for p in path]
                            + [(Opt.ACCEPT, uint_option(fmt))])
            try:
                deliver(await fetch_rest(self.endpoint, peer, request, msg, timeout=timeout))
            except (TimeoutError, ConnectionResetError, DecodeError, BodyTooLarge):
                self.endpoint.counters.malformed += 1

        def notified(peer: Peer, msg: Message) -> None:
            if not _ok(msg.code):
                return
            if msg.first(Opt.BLOCK2) is not None:  # the rest by GET (RFC 7959 §3.4)
                task = asyncio.get_running_loop().create_task(join(peer, msg))
                joining.add(task)
                task.add_done_callback(joining.discard)
                return
            deliver(msg)

        resp = self.check(await self.send(endpoint, Code.GET, path, accept=fmt, observe=0,
                                            notify=notified, timeout=timeout),
                           f"observe {format_path(path)}")
        notified(self.get(endpoint).peer, resp)
        return resp.token

    def cancel_observation(self, token: bytes) -> None:
        """Forget an observation; the next notification is answered with RST (RFC 7641 §3.6)."""
        self.endpoint.cancel_observation(token)

