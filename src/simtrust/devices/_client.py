"""An LwM2M client (Core V1_1_1 §6, Transport §6) for the demo's meter, benchmarks and
tests: it bootstraps over DTLS-PSK with a SIM-derived key, takes its Security and Server
instances, registers with the management server and answers Read, Write, Execute, Delete
and Observe on its objects, including the Firmware Update state machine (Core §E.6) with
the package pulled from its URI or pushed to /5/0/0 block-wise (RFC 7959 Block1; reads
larger than a block answer Block2, ``devices/_blockwise.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simtrust.devices._blockwise import (
    CONTINUE,
    Block1Assembler,
    block2_slice,
    exchange,
    final_block1,
)
from simtrust.devices._coap import CON, Code, Message, MsgType, Opt, encode_message, uint_option
from simtrust.devices._content import (
    CF_LINK,
    CF_SENML_CBOR,
    CF_TLV,
    decode_content,
    decode_paths,
    encode_content,
    format_links,
)
from simtrust.devices._dtls_client import DtlsClientLink
from simtrust.devices._est_coaps import CF_PKCS10, CF_PKIX_CERT
from simtrust.devices._objects import Path, Value, resource
from simtrust.devices._transport import CoapEndpoint, Peer
from simtrust.errors import DecodeError

__all__ = ["FirmwareState", "Lwm2mClient", "new_endpoint_name"]


class FirmwareState:
    """Object 5 State (resource 3) and Update Result (resource 5) values, Core §E.6."""

    IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
    RESULT_INITIAL, RESULT_SUCCESS, RESULT_INTEGRITY, RESULT_URI, RESULT_FAILED = 0, 1, 5, 7, 8


Fetch = Callable[[str], Awaitable[bytes]]
#: The largest package the client accepts pushed to /5/0/0.
MAX_PACKAGE = 8 << 20


@dataclass
class _Observation:
    peer: Peer
    token: bytes
    path: Path
    accept: int
    seq: int = 2
    #: Observe-Composite: the observed paths (``path`` is then the root, ``()``).
    paths: tuple[Path, ...] = ()


@dataclass
class Lwm2mClient:
    """One device: endpoint name, its bootstrap credential and its object values."""

    endpoint_name: str
    values: dict[Path, Value] = field(default_factory=dict)
    fetch: Fetch | None = None
    install: Callable[[bytes], str | None] | None = None
    lifetime: int = 300

    def __post_init__(self) -> None:
        self.coap = CoapEndpoint(self._handle)
        self.bootstrapped = asyncio.Event()
        self.location: list[str] = []
        self._links: list[DtlsClientLink] = []
        self._dm: Peer | None = None
        self._observations: dict[Path, _Observation] = {}
        self._composites: dict[bytes, _Observation] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._package = b""
        self._block1 = Block1Assembler(MAX_PACKAGE, max_transfers=4)
        #: The private key enrolled by EST-coaps (PKCS#8 DER), kept off the objects.
        self.own_key: bytes | None = None
        base: dict[Path, Value] = {
            (3, 0, 0): "simtrust", (3, 0, 1): "meter", (3, 0, 2): "SN-0001",
            (3, 0, 3): "1.0.0", (3, 0, 9): 100, (3, 0, 16): "U",
            (4, 0, 0): 7, (4, 0, 2): -95, (4, 0, 4, 0): "10.45.0.7", (4, 0, 7, 0): "meters.acme",
            (4, 0, 8): 26881, (4, 0, 9): 1, (4, 0, 10): 1,
            (6, 0, 0): 48.8566, (6, 0, 1): 2.3522, (6, 0, 5): 0,
            (7, 0, 2): 0, (7, 0, 3): 0, (7, 0, 8): 0,
            (5, 0, 1): "", (5, 0, 3): FirmwareState.IDLE, (5, 0, 5): 0,
            (5, 0, 8, 0): 0, (5, 0, 9): 0,
        }
        for k, v in base.items():
            self.values.setdefault(k, v)

    # -- connecting -------------------------------------------------------------------------

    async def _connect(self, uri: str, identity: str, key: bytes, *,
                       cert_chain: Sequence[bytes] = (),
                       server_trust: Sequence[bytes] = ()) -> Peer:
        parts = urlsplit(uri)
        loop = asyncio.get_running_loop()
        link = DtlsClientLink(self.coap, identity, key, cert_chain=cert_chain,
                              server_trust=server_trust)
        await loop.create_datagram_endpoint(
            lambda: link, remote_addr=(parts.hostname or "127.0.0.1", parts.port or 5684))
        self._links.append(link)
        return await link.handshake()

    async def connect_certificate(self, uri: str, cert_chain: Sequence[bytes], key: bytes,
                                  server_trust: Sequence[bytes] = ()) -> Peer:
        """A DTLS session in certificate mode (Security mode 2): ``cert_chain`` DER leaf
        first, ``key`` PKCS#8 DER; pass the peer to :meth:`register`."""
        return await self._connect(uri, "x509", key, cert_chain=cert_chain,
                                   server_trust=server_trust)

    async def bootstrap(self, uri: str, identity: str, key: bytes, *,
                        fmt: int = CF_TLV, timeout: float = 30.0, est: bool = False) -> None:
        """Bootstrap-Request (Core §6.1.7) and wait for Bootstrap-Finish; with ``est``
        first enrol a key pair made here by EST-coaps (RFC 9148 simpleenroll)."""
        peer = await self._connect(uri, identity, key)
        if est:
            await self._enrol(peer)
        resp = await self.coap.request(peer, Message(
            CON, Code.POST, 0, b"", ((Opt.URI_PATH, b"bs"),
                                     (Opt.URI_QUERY, f"ep={self.endpoint_name}".encode()),
                                     (Opt.URI_QUERY, f"pct={fmt}".encode()))))
        if resp.code != Code.CHANGED:
            raise ConnectionRefusedError(f"bootstrap refused: {resp.code >> 5}."
                                         f"{resp.code & 31:02d}")
        await asyncio.wait_for(self.bootstrapped.wait(), timeout)

    async def _enrol(self, peer: Peer) -> None:
        private = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, self.endpoint_name[-64:])])).sign(
            private, hashes.SHA256())
        resp = await self.coap.request(peer, Message(
            CON, Code.POST, 0, b"", ((Opt.URI_PATH, b".well-known"), (Opt.URI_PATH, b"est"),
                                     (Opt.URI_PATH, b"sen"),
                                     (Opt.CONTENT_FORMAT, uint_option(CF_PKCS10)),
                                     (Opt.ACCEPT, uint_option(CF_PKIX_CERT))),
            csr.public_bytes(serialization.Encoding.DER)))
        if resp.code != Code.CHANGED:
            raise ConnectionRefusedError(f"enrolment refused: {resp.code >> 5}."
                                         f"{resp.code & 31:02d} {resp.payload!r}")
        self.own_key = private.private_bytes(serialization.Encoding.DER,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())

    def server_account(self, instance: int = 1) -> tuple[str, str, bytes]:
        """URI, PSK identity and key of a Security instance the bootstrap wrote."""
        uri = self.values[(0, instance, 0)]
        identity = self.values[(0, instance, 3)]
        key = self.values[(0, instance, 5)]
        if not (isinstance(uri, str) and isinstance(identity, bytes) and isinstance(key, bytes)):
            raise LookupError(f"no complete Security instance {instance}")
        return uri, identity.decode(), key

    def _register_links(self) -> bytes:
        instances = sorted({p[:2] for p in self.values if p[0] not in (0,)})
        return format_links([("/", {"rt": '"oma.lwm2m"', "ct": str(CF_SENML_CBOR)})] +
                            [("/" + "/".join(map(str, i)), {}) for i in instances])

    async def register(self, *, queue: bool = False, peer: Peer | None = None) -> list[str]:
        if peer is None and self.values.get((0, 1, 2)) in (2, 4):  # certificate (EST) mode
            uri, cert, private, trust = (self.values.get((0, 1, r)) for r in (0, 3, 5, 4))
            if private is None:  # Mode 4: the key made here never left the device
                private = self.own_key
            if not (isinstance(uri, str) and isinstance(cert, bytes)
                    and isinstance(private, bytes) and isinstance(trust, bytes)):
                raise LookupError("incomplete certificate-mode Security instance")
            peer = await self.connect_certificate(uri, [cert], private,
                                                  [trust] if trust else [])
        if peer is None:
            uri, identity, key = self.server_account()
            peer = await self._connect(uri, identity, key)
        self._dm = peer
        query = [f"ep={self.endpoint_name}", f"lt={self.lifetime}", "lwm2m=1.1", "b=U"]
        if queue:
            query.append("Q")
        resp = await self.coap.request(peer, Message(
            CON, Code.POST, 0, b"",
            ((Opt.URI_PATH, b"rd"), *((Opt.URI_QUERY, q.encode()) for q in query),
             (Opt.CONTENT_FORMAT, uint_option(CF_LINK))), self._register_links()))
        if resp.code != Code.CREATED:
            raise ConnectionRefusedError(f"registration refused: {resp.code >> 5}."
                                         f"{resp.code & 31:02d} {resp.payload!r}")
        self.location = resp.location
        return self.location

    async def send(self, values: dict[Path, Value], *, fmt: int = CF_SENML_CBOR) -> int:
        """LwM2M 1.2 Send: POST the values to /dp (block-wise when large)."""
        assert self._dm is not None
        resp = await exchange(self.coap, self._dm, Message(
            CON, Code.POST, 0, b"", ((Opt.URI_PATH, b"dp"),
                                     (Opt.CONTENT_FORMAT, uint_option(fmt))),
            encode_content(fmt, values, ())))
        return resp.code

    async def update(self) -> int:
        assert self._dm is not None
        resp = await self.coap.request(self._dm, Message(
            CON, Code.POST, 0, b"", tuple((Opt.URI_PATH, p.encode()) for p in self.location)))
        return resp.code

    async def deregister(self) -> int:
        assert self._dm is not None
        resp = await self.coap.request(self._dm, Message(
            CON, Code.DELETE, 0, b"", tuple((Opt.URI_PATH, p.encode()) for p in self.location)))
        return resp.code

    def close(self) -> None:
        for link in self._links:
            link.close()
        self._links.clear()

    # -- the device side of the DM interface ----------------------------------------------

    def _select(self, path: Path) -> dict[Path, Value]:
        if not path:
            return dict(self.values)
        n = len(path)
        return {p: v for p, v in self.values.items() if p[:n] == path}

    def _handle(self, peer: Peer, msg: Message) -> Message | None:
        if msg.first(Opt.BLOCK1) is not None:
            got = self._block1.feed((peer.addr, tuple(msg.path), msg.code), msg)
            if isinstance(got, Message):
                if got.code == CONTINUE and msg.path == ["5", "0", "0"] and \
                        self.values.get((5, 0, 3)) != FirmwareState.DOWNLOADING:
                    self.set((5, 0, 5), FirmwareState.RESULT_INITIAL)
                    self.set((5, 0, 3), FirmwareState.DOWNLOADING)
                return got
            whole = Message(msg.mtype, msg.code, msg.mid, msg.token, tuple(
                o for o in msg.options if o[0] not in (Opt.BLOCK1, Opt.SIZE1)), got)
            answer = self._handle_whole(peer, whole)
            return None if answer is None else final_block1(msg, answer)
        answer = self._handle_whole(peer, msg)
        if answer is not None and msg.code in (Code.GET, Code.FETCH) and \
                answer.code == Code.CONTENT:
            try:
                return block2_slice(msg, answer)
            except DecodeError:
                return msg.reply(Code.BAD_OPTION)
        return answer

    def _handle_whole(self, peer: Peer, msg: Message) -> Message | None:
        try:
            path: Path = tuple(int(p) for p in msg.path if p != "bs")
        except ValueError:
            return msg.reply(Code.BAD_REQUEST)
        if msg.path == ["bs"] and msg.code == Code.POST:
            self.bootstrapped.set()
            return msg.reply(Code.CHANGED)
        if msg.code == Code.GET:
            return self._read(peer, msg, path)
        if msg.code == Code.FETCH and not path:
            return self._read_composite(peer, msg)
        if msg.code == Code.IPATCH and not path:  # Write-Composite
            try:
                values = decode_content(msg.content_format, msg.payload, ())
            except DecodeError:
                return msg.reply(Code.BAD_REQUEST)
            if not values or any(len(p) < 3 for p in values):
                return msg.reply(Code.BAD_REQUEST)
            self.values.update(values)
            self._written(values)
            return msg.reply(Code.CHANGED)
        if msg.code in (Code.PUT, Code.POST) and msg.content_format is not None:
            if msg.query and not msg.payload:
                return msg.reply(Code.CHANGED)  # Write-Attributes
            try:
                values = decode_content(msg.content_format, msg.payload, path)
            except DecodeError:
                return msg.reply(Code.BAD_REQUEST)
            if msg.code == Code.PUT and len(path) == 2:
                for p in list(self._select(path)):
                    del self.values[p]
            self.values.update(values)
            self._written(values)
            return msg.reply(Code.CHANGED)
        if msg.code == Code.PUT and msg.query:
            return msg.reply(Code.CHANGED)
        if msg.code == Code.POST and len(path) == 3:
            return self._execute(msg, path)
        if msg.code == Code.DELETE:
            for p in [p for p in self.values if p[:len(path)] == path and p[0] in (0, 1)
                      and not (p[0] == 0 and p[1] == 0)]:
                del self.values[p]
            return msg.reply(Code.DELETED)
        return msg.reply(Code.METHOD_NOT_ALLOWED)

    def _read(self, peer: Peer, msg: Message, path: Path) -> Message:
        selected = self._select(path)
        if not selected:
            return msg.reply(Code.NOT_FOUND)
        accept = msg.uint(Opt.ACCEPT)
        if accept == CF_LINK:
            return msg.reply(Code.CONTENT, format_links(
                [("/" + "/".join(map(str, p)), {}) for p in sorted(selected)]),
                [(Opt.CONTENT_FORMAT, uint_option(CF_LINK))])
        fmt = accept if accept is not None else CF_SENML_CBOR
        try:
            payload = encode_content(fmt, selected, path)
        except ValueError:
            return msg.reply(Code.NOT_ACCEPTABLE)
        options: list[tuple[int, bytes]] = [(Opt.CONTENT_FORMAT, uint_option(fmt))]
        if msg.observe == 0:
            self._observations[path] = _Observation(peer, msg.token, path, fmt)
            options.append((Opt.OBSERVE, uint_option(1)))
        elif msg.observe == 1:
            self._observations.pop(path, None)
        return msg.reply(Code.CONTENT, payload, options)

    def _composite_values(self, paths: Sequence[Path]) -> dict[Path, Value]:
        out: dict[Path, Value] = {}
        for wanted in paths:
            out.update(self._select(wanted))
        return out

    def _read_composite(self, peer: Peer, msg: Message) -> Message:
        """Read-Composite and Observe-Composite: FETCH / with SenML paths (LwM2M 1.2)."""
        try:
            paths = tuple(decode_paths(msg.content_format, msg.payload))
        except DecodeError:
            return msg.reply(Code.BAD_REQUEST)
        selected = self._composite_values(paths)
        if not selected:
            return msg.reply(Code.NOT_FOUND)
        fmt = msg.uint(Opt.ACCEPT) or msg.content_format or CF_SENML_CBOR
        try:
            payload = encode_content(fmt, selected, ())
        except ValueError:
            return msg.reply(Code.NOT_ACCEPTABLE)
        options: list[tuple[int, bytes]] = [(Opt.CONTENT_FORMAT, uint_option(fmt))]
        if msg.observe == 0:
            self._composites[msg.token] = _Observation(peer, msg.token, (), fmt, paths=paths)
            options.append((Opt.OBSERVE, uint_option(1)))
        elif msg.observe == 1:
            self._composites.pop(msg.token, None)
        return msg.reply(Code.CONTENT, payload, options)

    def set(self, path: Path, value: Value) -> None:
        """Change a resource locally and notify its observers (RFC 7641 §4.2)."""
        self.values[path] = value
        watching = [(o.path, o) for o in self._observations.values()
                    if path[:len(o.path)] == o.path]
        watching += [((), o) for o in self._composites.values()
                     if any(path[:len(q)] == q for q in o.paths)]
        for obs_path, obs in watching:
            obs.seq += 1
            current = (self._composite_values(obs.paths) if obs.paths
                       else self._select(obs_path))
            payload = encode_content(obs.accept, current, obs_path)
            note = Message(MsgType.NON, Code.CONTENT, self.coap.next_mid(), obs.token,
                           ((Opt.OBSERVE, uint_option(obs.seq & 0xFFFFFF)),
                            (Opt.CONTENT_FORMAT, uint_option(obs.accept))), payload)
            # Larger than a block: the first block, the server fetches the rest (§3.4).
            note = block2_slice(note, note)
            obs.peer.link.send(obs.peer, encode_message(note))

    # -- firmware update (Core §E.6) -----------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _written(self, values: dict[Path, Value]) -> None:
        package = self.values.pop((5, 0, 0), None)
        if isinstance(package, bytes):  # pushed (Core §E.6: an empty package resets)
            if package in (b"", b"\x00"):
                self.set((5, 0, 3), FirmwareState.IDLE)
                self.set((5, 0, 5), FirmwareState.RESULT_INITIAL)
            elif self.values.get((5, 0, 3)) in (FirmwareState.IDLE,
                                                 FirmwareState.DOWNLOADING):
                self._package = package
                self.set((5, 0, 3), FirmwareState.DOWNLOADED)
        uri = values.get((5, 0, 1))
        if isinstance(uri, str):
            if uri == "":
                self.set((5, 0, 3), FirmwareState.IDLE)
                self.set((5, 0, 5), FirmwareState.RESULT_INITIAL)
            elif self.values.get((5, 0, 3)) == FirmwareState.IDLE:
                self._spawn(self._download(uri))

    async def _download(self, uri: str) -> None:
        self.set((5, 0, 5), FirmwareState.RESULT_INITIAL)
        self.set((5, 0, 3), FirmwareState.DOWNLOADING)
        try:
            if self.fetch is None:
                raise OSError("no package fetcher")
            self._package = await self.fetch(uri)
        except (OSError, ValueError):
            self.set((5, 0, 3), FirmwareState.IDLE)
            self.set((5, 0, 5), FirmwareState.RESULT_URI)
            return
        self.set((5, 0, 3), FirmwareState.DOWNLOADED)

    def _execute(self, msg: Message, path: Path) -> Message:
        res = resource(path)
        if res is not None and "E" not in res.ops:
            return msg.reply(Code.METHOD_NOT_ALLOWED)
        if path == (5, 0, 2):
            if self.values.get((5, 0, 3)) != FirmwareState.DOWNLOADED:
                return msg.reply(Code.METHOD_NOT_ALLOWED)
            self._spawn(self._update())
        return msg.reply(Code.CHANGED)

    async def _update(self) -> None:
        self.set((5, 0, 3), FirmwareState.UPDATING)
        await asyncio.sleep(0)
        version = self.install(self._package) if self.install is not None else None
        if version is None:
            self.set((5, 0, 3), FirmwareState.IDLE)
            self.set((5, 0, 5), FirmwareState.RESULT_FAILED)
            return
        self.values[(3, 0, 3)] = version
        self.set((5, 0, 3), FirmwareState.IDLE)
        self.set((5, 0, 5), FirmwareState.RESULT_SUCCESS)


def new_endpoint_name(imei: str, imsi: str) -> str:
    """``urn:imei-imsi:<IMEI>-<IMSI>`` (Core §7.3.1)."""
    return f"urn:imei-imsi:{imei}-{imsi}"
