"""The peer set of a validator: one authenticated link per committee member, with limits.

``docs/network.md`` ("Peers", "Back-pressure and limits"). The validator with
the higher id dials, the lower one accepts, so each pair has one link; only
node keys pinned in genesis get through the handshake. Every link has a
bounded outbound queue (gossip is dropped when it is full, since peers pull
what they miss; a peer that cannot take even its priority frames is
disconnected) and inbound token buckets for bytes and frames: a peer over its
rate is not read until its bucket refills, so TCP pushes back on it while the
event loop keeps serving the others, and a peer that stays throttled for most
of a window, or sends undecodable frames, is disconnected and banned for a
while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simtrust.errors import InvalidInput, SimtrustError
from simtrust.ledger import network_id_from_name
from simtrust.ledger.net._genesis import NetworkGenesis, NodeKeys, ValidatorEntry, parse_address
from simtrust.ledger.net._transport import (
    HANDSHAKE_TIMEOUT_S,
    LinkIdentity,
    SecureLink,
    accept_link,
    open_link,
)
from simtrust.ledger.net._wire import Frame, decode_frame

__all__ = ["PeerLimits", "PeerNetwork", "TokenBucket"]

log = logging.getLogger("simtrust.ledger.net")

Handler = Callable[[int, Frame], None]


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take`` may go into debt and says how long."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self, amount: float) -> float:
        """Spend ``amount``; return the seconds until the bucket is out of debt (0 if not)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(frozen=True, slots=True)
class PeerLimits:
    """Per-peer limits; defaults suit four validators on one machine."""

    bytes_per_s: float = 32 * 1024 * 1024
    burst_bytes: float = 8 * 1024 * 1024
    frames_per_s: float = 2000.0
    burst_frames: float = 1000.0
    out_frames: int = 512
    out_bytes: int = 32 * 1024 * 1024
    flood_window_s: float = 5.0
    flood_ratio: float = 0.8
    max_strikes: int = 3
    ban_s: float = 10.0
    redial_s: float = 0.25
    leave_s: float = 2.0


@dataclass(slots=True)
class PeerStats:
    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    dropped_out: int = 0
    throttled_s: float = 0.0
    disconnects: int = 0
    strikes: int = 0

    def to_json(self) -> dict[str, float]:
        return {
            "frames_in": self.frames_in,
            "bytes_in": self.bytes_in,
            "frames_out": self.frames_out,
            "dropped_out": self.dropped_out,
            "throttled_s": round(self.throttled_s, 3),
            "disconnects": self.disconnects,
        }


class _Peer:
    __slots__ = (
        "banned_until",
        "entry",
        "link",
        "out",
        "out_bytes",
        "ready",
        "stats",
        "tasks",
        "throttle_log",
    )

    def __init__(self, entry: ValidatorEntry) -> None:
        self.entry = entry
        self.link: SecureLink | None = None
        self.out: deque[bytes] = deque()
        self.out_bytes = 0
        self.ready = asyncio.Event()
        self.stats = PeerStats()
        self.tasks: list[asyncio.Task[None]] = []
        self.throttle_log: deque[tuple[float, float]] = deque()
        self.banned_until = 0.0


@dataclass(slots=True)
class _State:
    paused: bool = False
    stopping: bool = False
    server: asyncio.Server | None = None
    dialers: list[asyncio.Task[None]] = field(default_factory=list)


class PeerNetwork:
    """Links to the other committee members; ``handler(peer_id, frame)`` runs on the loop."""

    def __init__(
        self,
        genesis: NetworkGenesis,
        keys: NodeKeys,
        handler: Handler,
        *,
        limits: PeerLimits | None = None,
        on_connect: Callable[[int], None] | None = None,
        bind: str | None = None,
        may_read: Callable[[], bool] | None = None,
        validators: Sequence[ValidatorEntry] | None = None,
    ) -> None:
        """``validators``: link to this committee instead of genesis's (a joining member)."""
        self.genesis = genesis
        if validators is None:
            self.me = keys.check_against(genesis)
        else:
            me = next((v for v in validators if v.public_key == keys.public_key), None)
            if me is None or me.node_key != keys.node_key:
                raise InvalidInput("the key file does not match any member of the committee")
            self.me = me
        self._identity = LinkIdentity(network_id_from_name(genesis.network), keys.transport_key())
        self._handler = handler
        self._on_connect = on_connect
        self._may_read = may_read
        self.limits = limits or PeerLimits()
        self._bind = bind or self.me.p2p
        members = genesis.validators if validators is None else tuple(validators)
        self.peers = {v.id: _Peer(v) for v in members if v.id != self.me.id}
        self._by_key = {p.entry.node_key: p for p in self.peers.values()}
        # Links to members a committee change removed, open for ``leave_s`` more
        # seconds so queued blocks and answers still reach them (and they us).
        self._leaving: dict[int, _Peer] = {}
        self._state = _State()

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        host, port = parse_address(self._bind)
        self._state.server = await asyncio.start_server(
            self._on_inbound, host, port, ssl=self._identity.server_context(self._dialling_keys),
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
        for peer in self.peers.values():
            if peer.entry.id < self.me.id:
                self._state.dialers.append(asyncio.create_task(self._dial_loop(peer)))

    async def stop(self) -> None:
        self._state.stopping = True
        for task in self._state.dialers:
            task.cancel()
        if self._state.server is not None:
            self._state.server.close()
        for peer in [*self.peers.values(), *self._leaving.values()]:
            self._drop(peer, "stopping")
        self._leaving.clear()
        for task in self._state.dialers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def set_committee(self, validators: Sequence[ValidatorEntry], block_key: bytes) -> None:
        """Re-pin the peer set to a new epoch's committee (``docs/network.md``).

        Members that stay keep their link (under their new index); links of
        removed members are closed and their node keys no longer pass the
        handshake; new members are dialled or accepted by the usual rule (the
        higher index dials). ``block_key`` finds this node in the new list; a
        node that is no longer a member keeps no peers.
        """
        me = next((v for v in validators if v.public_key == block_key), None)
        old = {p.entry.node_key: p for p in self.peers.values()}
        for task in self._state.dialers:
            task.cancel()
        self._state.dialers = []
        peers: dict[int, _Peer] = {}
        if me is not None:
            self.me = me
            for entry in validators:
                if entry.id == me.id:
                    continue
                peer = old.pop(entry.node_key, None)
                if peer is None:
                    peer = _Peer(entry)
                else:
                    if peer.entry.p2p != entry.p2p:
                        self._drop(peer, "address changed with the committee")
                    peer.entry = entry
                peers[entry.id] = peer
        for peer in old.values():
            self._leave(peer)
        self.peers = peers
        self._by_key = {p.entry.node_key: p for p in peers.values()}
        if self._state.server is not None and not self._state.stopping:
            for peer in peers.values():
                if peer.entry.id < self.me.id:
                    self._state.dialers.append(asyncio.create_task(self._dial_loop(peer)))

    def _leave(self, peer: _Peer) -> None:
        """Close a removed member's link once its queue had ``leave_s`` to drain."""
        if peer.link is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._drop(peer, "no longer in the committee")
            return
        self._leaving[peer.entry.id] = peer

        def close() -> None:
            if self._leaving.get(peer.entry.id) is peer:
                del self._leaving[peer.entry.id]
            self._drop(peer, "no longer in the committee")

        loop.call_later(self.limits.leave_s, close)

    def pause(self) -> None:
        """Drop every link and refuse new ones (a partition of this node)."""
        self._state.paused = True
        for peer in self.peers.values():
            self._drop(peer, "paused")

    def resume(self) -> None:
        self._state.paused = False

    @property
    def paused(self) -> bool:
        return self._state.paused

    def strike(self, peer_id: int, why: str) -> None:
        """Count a provable fault of ``peer_id`` (a forged or malformed block); at
        ``max_strikes`` the link is closed and the peer banned."""
        peer = self.peers.get(peer_id)
        if peer is None:
            return
        peer.stats.strikes += 1
        log.warning("validator %s: %s", peer_id, why)
        if peer.stats.strikes >= self.limits.max_strikes:
            peer.stats.strikes = 0
            self._drop(peer, f"too many faults ({why})", ban=True)

    def connected(self) -> list[int]:
        return sorted(i for i, p in self.peers.items() if p.link is not None)

    def stats(self) -> dict[str, dict[str, float]]:
        return {str(i): p.stats.to_json() for i, p in sorted(self.peers.items())}

    # -- sending -----------------------------------------------------------

    def send(self, peer_id: int, frame: bytes, *, droppable: bool = True) -> bool:
        """Queue ``frame`` for ``peer_id``; False if it was dropped (no link, queue full)."""
        peer = self.peers.get(peer_id) or self._leaving.get(peer_id)
        if peer is None or peer.link is None:
            return False
        limits = self.limits
        full = len(peer.out) >= limits.out_frames or peer.out_bytes >= limits.out_bytes
        if full and droppable:
            peer.stats.dropped_out += 1
            return False
        if full and (
            len(peer.out) >= 2 * limits.out_frames or peer.out_bytes >= 2 * limits.out_bytes
        ):
            self._drop(peer, "peer does not drain its queue")
            return False
        peer.out.append(frame)
        peer.out_bytes += len(frame)
        peer.ready.set()
        return True

    def broadcast(self, frame: bytes, *, droppable: bool = True) -> int:
        return sum(self.send(i, frame, droppable=droppable) for i in self.peers)

    # -- links -------------------------------------------------------------

    async def _dial_loop(self, peer: _Peer) -> None:
        host, port = parse_address(peer.entry.p2p)
        state = self._state
        while not state.stopping:
            now = time.monotonic()
            if peer.link is None and not state.paused and now >= peer.banned_until:
                try:
                    link = await open_link(
                        host, port, identity=self._identity, expected_peer=peer.entry.node_key,
                    )
                except (TimeoutError, OSError, asyncio.IncompleteReadError, SimtrustError) as exc:
                    log.debug("dial %s failed: %s", peer.entry.id, exc)
                else:
                    if state.paused or state.stopping:
                        link.close()
                    else:
                        self._attach(peer, link)
            await asyncio.sleep(self.limits.redial_s)

    def _dialling_keys(self) -> list[bytes]:
        """Node keys of the members that dial this node (the higher ids): the TLS anchors."""
        me = self.me.id
        return [key for key, peer in self._by_key.items() if peer.entry.id > me]

    async def _on_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        state = self._state
        now = time.monotonic()

        def allowed(key: bytes) -> bool:
            peer = self._by_key.get(key)
            return (
                peer is not None
                and peer.entry.id > self.me.id
                and not state.paused
                and now >= peer.banned_until
            )

        try:
            link = await accept_link(
                reader, writer, identity=self._identity, allowed=allowed
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, SimtrustError) as exc:
            log.debug("inbound handshake refused: %s", exc)
            writer.close()
            return
        peer = self._by_key[link.peer_key]
        if state.paused or state.stopping:
            link.close()
            return
        self._attach(peer, link)

    def _attach(self, peer: _Peer, link: SecureLink) -> None:
        if peer.link is not None:
            self._drop(peer, "replaced by a new link")
        peer.link = link
        peer.out.clear()
        peer.out_bytes = 0
        peer.throttle_log.clear()
        peer.tasks = [
            asyncio.create_task(self._reader(peer, link)),
            asyncio.create_task(self._writer(peer, link)),
        ]
        log.info("link to validator %s up", peer.entry.id)
        if self._on_connect is not None:
            self._on_connect(peer.entry.id)

    def _drop(self, peer: _Peer, why: str, ban: bool = False) -> None:
        link = peer.link
        if link is None:
            return
        peer.link = None
        peer.stats.disconnects += 1
        if ban:
            peer.banned_until = time.monotonic() + self.limits.ban_s
        log.info("link to validator %s down: %s", peer.entry.id, why)
        link.close()
        current = asyncio.current_task()
        for task in peer.tasks:
            if task is not current:
                task.cancel()
        peer.tasks = []
        peer.out.clear()
        peer.out_bytes = 0
        peer.ready.set()

    async def _writer(self, peer: _Peer, link: SecureLink) -> None:
        try:
            while peer.link is link:
                await peer.ready.wait()
                peer.ready.clear()
                while peer.out and peer.link is link:
                    frame = peer.out.popleft()
                    peer.out_bytes -= len(frame)
                    link.write(frame)
                    peer.stats.frames_out += 1
                    await link.drain()
        except (OSError, ConnectionError, SimtrustError) as exc:
            if peer.link is link:
                self._drop(peer, f"write failed: {exc}")

    def _throttled(self, peer: _Peer, wait: float) -> bool:
        """Record a throttle of ``wait`` s; True when the peer was throttled most of a window."""
        now = time.monotonic()
        limits = self.limits
        peer.stats.throttled_s += wait
        peer.throttle_log.append((now, wait))
        floor = now - limits.flood_window_s
        while peer.throttle_log and peer.throttle_log[0][0] < floor:
            peer.throttle_log.popleft()
        total = sum(w for _, w in peer.throttle_log)
        return total > limits.flood_ratio * limits.flood_window_s

    async def _reader(self, peer: _Peer, link: SecureLink) -> None:
        limits = self.limits
        byte_bucket = TokenBucket(limits.bytes_per_s, limits.burst_bytes)
        frame_bucket = TokenBucket(limits.frames_per_s, limits.burst_frames)
        try:
            while peer.link is link:
                # The node's inbox is full: stop reading every peer until it drains.
                while self._may_read is not None and not self._may_read():
                    await asyncio.sleep(0.005)
                data = await link.recv()
                peer.stats.frames_in += 1
                peer.stats.bytes_in += len(data)
                wait = max(byte_bucket.take(len(data)), frame_bucket.take(1))
                if wait > 0:
                    if self._throttled(peer, wait):
                        self._drop(peer, "flooding: over its rate limit for most of a window",
                                   ban=True)
                        return
                    await asyncio.sleep(wait)
                try:
                    frame = decode_frame(data)
                except SimtrustError:
                    self.strike(peer.entry.id, "undecodable frame")
                    if peer.link is not link:
                        return
                    continue
                try:
                    self._handler(peer.entry.id, frame)
                except SimtrustError as exc:
                    log.warning("frame from validator %s refused: %s", peer.entry.id, exc.detail)
                except Exception:  # a handler bug must not silently stop this reader
                    log.exception("handler failed on a frame from validator %s", peer.entry.id)
                    self._drop(peer, "handler failed")
                    return
        except (asyncio.IncompleteReadError, OSError, ConnectionError) as exc:
            if peer.link is link:
                self._drop(peer, f"closed: {type(exc).__name__}")
        except SimtrustError as exc:
            if peer.link is link:
                self._drop(peer, f"link error: {exc.detail}", ban=True)
