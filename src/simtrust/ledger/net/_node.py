"""A consortium validator: the ledger node, the consensus core and the peer network in one loop.

``docs/network.md`` ("Node", "Catch-up"). Client messages are ingested by
the :class:`~simtrust.ledger.LedgerNode` and pushed to every peer in
batches; peers pull what they miss (parents of buffered messages, messages a
commit names). Validator blocks are produced by the
:class:`~simtrust.ledger.consensus.Core` at most every
``min_round_interval_ms``, persisted before they are sent, and exchanged
with the same push/pull pattern; a node that was down or cut off learns the
frontier from its peers' periodic re-broadcast of their latest block and
fetches the blocks in between, and the messages their commits name, before
applying those commits in the one committed order. Everything runs on one
asyncio loop, so ledger and core see one caller at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from simtrust.errors import (
    DecodeError,
    InvalidInput,
    InvalidSignature,
    NotFound,
    RateLimited,
    Rejected,
    SimtrustError,
)
from simtrust.ledger import (
    CommitRecord,
    FinalizedMessage,
    LedgerNode,
    SubmitResult,
    TaggedData,
    message_id,
    verify_ed25519,
)
from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    CommittedSubDag,
    Committee,
    Core,
    EquivocationDetected,
    MissingBlocks,
    Output,
    block_signing_message,
)
from simtrust.ledger.net._checkpoints import (
    Checkpoint,
    CheckpointCert,
    CheckpointStore,
    CheckpointVotes,
    sign_checkpoint,
    verify_signature,
)
from simtrust.ledger.net._committee_orderer import BlockStore, CommitteeOrderer, LedgerCommit
from simtrust.ledger.net._epochs import (
    COMMITTEE_CHANGE_TAG,
    EpochCommittee,
    EpochStore,
    SignedCommitteeChange,
)
from simtrust.ledger.net._genesis import NetworkGenesis, NodeKeys, ValidatorEntry
from simtrust.ledger.net._peers import PeerLimits, PeerNetwork, TokenBucket
from simtrust.ledger.net._sync import END, SyncSession, commit_items
from simtrust.ledger.net._wire import (
    MAX_ITEMS,
    Frame,
    FrameType,
    Status,
    encode_floor,
    encode_get_blocks,
    encode_get_msgs,
    encode_get_tail,
    encode_items,
    encode_ping,
    encode_status,
)
from simtrust.store import Database

__all__ = ["AvailabilityGate", "ConsortiumNode", "NodeOptions"]

log = logging.getLogger("simtrust.ledger.net")

_FRAME_BUDGET = 4 * 1024 * 1024
#: Refusals that depend on when a message arrives, not on what it is: a message a
#: validator's block carries may have been refused so only because this node
#: comes back after a long absence (``docs/network.md``, "Catch-up").
_STASHABLE = frozenset({"timestamp-skew", "rate-limit"})
#: Frames that ask this node for work; each peer has a budget of them.
_REQUESTS = frozenset({FrameType.GET_BLOCKS, FrameType.GET_MSGS, FrameType.GET_TAIL,
                       FrameType.GET_CHECKPOINTS, FrameType.GET_COMMITS})


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Local timing of one node (network-wide timing lives in genesis)."""

    tick_s: float = 0.01
    rebroadcast_s: float = 0.5
    status_s: float = 1.0
    retry_s: float = 0.3
    grace_s: float = 2.0
    response_blocks: int = 2000
    max_fetch: int = 2048
    requests_per_s: float = 50.0
    request_burst: float = 100.0
    ingest_chunk: int = 256
    inbox_max: int = 20_000
    busy_inbox: int = 4_000
    stash_max: int = 50_000
    #: Snapshot sync ("Snapshot sync"): start one when a peer's ledger is this many
    #: commits ahead (or two epochs); give a session up after ``sync_timeout_s``
    #: without progress; answer a commits request with about ``sync_bytes``.
    sync_commits: int = 300
    sync_timeout_s: float = 10.0
    sync_bytes: int = 4 * 1024 * 1024
    #: Ids a block carried this long ago and still unfinalized are proposed again.
    reoffer_s: float = 30.0


def _chunks(items: Sequence[bytes], count: int = MAX_ITEMS) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= count or size + len(item) > _FRAME_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 4
    if batch:
        yield batch


class AvailabilityGate:
    """Blocks held back until this node holds every message id they carry.

    An honest validator feeds a block to its core (and so may reference and
    vote for it) only when it holds the block's payload; a committed block's
    messages are therefore held by the honest validators that certified it,
    and a block naming ids nobody can produce is never committed
    (``docs/network.md``, "Availability"). Bounded in blocks and in age.
    """

    __slots__ = ("_by_id", "_held", "max_age_s", "max_blocks")

    def __init__(self, max_blocks: int = 4096, max_age_s: float = 30.0) -> None:
        self.max_blocks = max_blocks
        self.max_age_s = max_age_s
        self._held: OrderedDict[bytes, tuple[Block, set[bytes], float]] = OrderedDict()
        self._by_id: dict[bytes, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, digest: object) -> bool:
        return digest in self._held

    def wants(self, mid: bytes) -> bool:
        """Whether a held block waits for message ``mid``."""
        return mid in self._by_id

    def hold(self, block: Block, missing: Iterable[bytes], now: float) -> None:
        while len(self._held) >= self.max_blocks:
            self._drop(next(iter(self._held)))
        wanted = set(missing)
        self._held[block.digest] = (block, wanted, now)
        for mid in wanted:
            self._by_id.setdefault(mid, set()).add(block.digest)

    def _drop(self, digest: bytes) -> None:
        _, wanted, _ = self._held.pop(digest)
        for mid in wanted:
            waiters = self._by_id.get(mid)
            if waiters is not None:
                waiters.discard(digest)
                if not waiters:
                    del self._by_id[mid]

    def arrived(self, ids: Iterable[bytes]) -> list[Block]:
        """Blocks whose last missing message is among ``ids``, by round."""
        released: list[Block] = []
        for mid in ids:
            for digest in self._by_id.pop(mid, ()):
                entry = self._held.get(digest)
                if entry is None:
                    continue
                entry[1].discard(mid)
                if not entry[1]:
                    del self._held[digest]
                    released.append(entry[0])
        released.sort(key=lambda b: b.ref)
        return released

    def wanted(self, now: float, older_than: float) -> list[bytes]:
        """Missing ids of blocks held at least ``older_than`` s; drops blocks past max age."""
        for digest in [d for d, (_, _, t) in self._held.items() if now - t > self.max_age_s]:
            self._drop(digest)
        return sorted({m for _, wanted, t in self._held.values() if now - t >= older_than
                       for m in wanted})


class _CommitteeChangeHandler:
    """Finalized tagged data: a committee change (``COMMITTEE_CHANGE_TAG``) ends the epoch.

    Runs inside the ledger's transaction, in finalized order, so every honest
    node checks the same change against the same committee at the same commit.
    A change that does not verify is void (``Rejected``), like any other
    message whose effect fails (docs/ledger.md, "Ordering and handlers").
    """

    __slots__ = ("_node",)

    def __init__(self, node: ConsortiumNode) -> None:
        self._node = node

    def apply(self, fm: FinalizedMessage) -> None:
        body = fm.body
        if not isinstance(body, TaggedData) or body.tag != COMMITTEE_CHANGE_TAG:
            return
        try:
            change = SignedCommitteeChange.decode(body.data)
        except (DecodeError, InvalidInput) as exc:
            raise Rejected("committee-change",
                           f"malformed committee change: {exc.detail}") from None
        self._node.committee_change_finalized(fm, change)


def _verify_block(block: Block, key: Ed25519PublicKey) -> None:
    """Block signatures through libsodium, the verifier the ledger uses for messages.

    About three times faster than OpenSSL's Ed25519 here, and blocks arrive
    from three peers per round (``docs/decisions/ledger-ed25519-libsodium.md``).
    """
    try:
        verify_ed25519(key.public_bytes_raw(), block.signature,
                       block_signing_message(block.digest))
    except InvalidSignature:
        raise InvalidSignature("block signature does not verify", round=block.round,
                               author=block.author) from None


class ConsortiumNode:
    """One validator of a consortium network over a store."""

    def __init__(
        self,
        genesis: NetworkGenesis,
        keys: NodeKeys,
        db: Database,
        *,
        options: NodeOptions | None = None,
        limits: PeerLimits | None = None,
        bind: str | None = None,
        clock: Callable[[], datetime] | None = None,
        join: EpochCommittee | None = None,
    ) -> None:
        """``clock`` is the ledger's wall clock (admission rules); tests move it.

        ``join``: the committee of a later epoch these keys are a member of but
        genesis does not name (a joining validator). The node follows the
        earlier epochs as an observer, linked to ``join``'s members, and
        becomes a validator when it finalizes the change to that epoch.
        """
        self.genesis = genesis
        if join is None:
            self.entry = keys.check_against(genesis)
        else:
            entry = next((v for v in join.validators if v.public_key == keys.public_key), None)
            if entry is None or entry.node_key != keys.node_key:
                raise InvalidInput("the key file does not match any member of the joined epoch")
            self.entry = entry
        self._keys = keys
        self.options = options or NodeOptions()
        self.params = genesis.consensus
        self.blocks = BlockStore(db)
        self.epochs = EpochStore(db)
        self.checkpoints = CheckpointStore(db)
        self._votes = CheckpointVotes()
        self._sync: SyncSession | None = None
        self._resumed_at: int | None = None
        self._sync_progress = 0.0
        self._last_reoffer = 0.0
        latest = self.epochs.latest()
        # The committee of the epoch this node is in, and the ledger round its rounds
        # continue from (docs/network.md, "Committee changes").
        self.epoch_committee, self._round_offset = (
            latest if latest is not None else (EpochCommittee.of_genesis(genesis), 0))
        self.committee = self.epoch_committee.committee()
        self.id: int | None = self.epoch_committee.index_of(keys.public_key)
        self._next_epoch: tuple[EpochCommittee, int, bytes] | None = None
        self._retired: Core | None = None
        self.orderer = CommitteeOrderer(self.options.grace_s)
        self.ledger = LedgerNode(
            db,
            keys.ledger_signer(),
            config=genesis.ledger_config(workers=1, pool_threshold=1 << 30),
            genesis=genesis.ledger_genesis(),
            orderer=self.orderer,
            clock=clock or _utc_now,
        )
        self.ledger.register_handler("tagged-data", _CommitteeChangeHandler(self))
        self.stats: dict[str, int] = {
            "blocks_in": 0, "blocks_rejected": 0, "msgs_in": 0, "msgs_rejected": 0,
            "commits": 0, "equivocations": 0, "proposed": 0, "requests_in": 0,
            "replayed_commits": 0, "held_blocks": 0, "requests_dropped": 0,
            "msgs_duplicate": 0, "clients_refused": 0, "stashed": 0,
            "blocks_other_epoch": 0, "epoch_switches": 0, "tail_requests": 0,
            "checkpoints": 0, "syncs_started": 0, "syncs_failed": 0, "synced_commits": 0,
            "reoffered": 0, "blocks_from_store": 0,
        }
        # Messages a held block carries that the ledger refused only for their
        # age or their issuer's quota, kept until a commit names them.
        self._stash: OrderedDict[bytes, bytes] = OrderedDict()
        self.gate = AvailabilityGate()
        self._request_buckets: dict[int, TokenBucket] = {}
        self._rng = random.Random()
        links: tuple[ValidatorEntry, ...] | None = None
        if join is not None:
            links = self.epoch_committee.validators if self.id is not None else join.validators
        self.net = PeerNetwork(genesis, keys, self._on_frame, limits=limits,
                               on_connect=self._on_connect, bind=bind,
                               may_read=self._inbox_has_room, validators=links)
        if latest is not None and join is None:
            self.net.set_committee(self.epoch_committee.validators, keys.public_key)
        self.peer_status: dict[int, Status] = {}
        self._gossip: list[bytes] = []
        self._inbox: deque[bytes] = deque()
        self._inbox_ids: dict[bytes, int] = {}
        self._last_proposal = 0.0
        self._last_rebroadcast = 0.0
        self._last_status = 0.0
        self._last_retry = 0.0
        self._last_tail = 0.0
        self._task: asyncio.Task[None] | None = None
        self._own_latest: Block | None = None
        epoch = self.committee.epoch
        stored = [b for b in self.blocks.load() if b.epoch == epoch]
        self.core, outputs = self._restore_core(stored)
        self._voted_height = self.ledger.height
        for block in reversed(stored):
            if block.author == self.id:
                self._own_latest = block
                break
        applied = self._last_applied_round()
        fresh: list[CommittedSubDag] = []
        for out in outputs:
            if isinstance(out, BlockAccepted):
                self.orderer.carried(out.block)
            elif isinstance(out, CommittedSubDag) and self._round_offset + out.round > applied:
                fresh.append(out)
        self.stats["replayed_commits"] = len(fresh)
        self.orderer.push(fresh, self._round_offset)
        self._apply_commits()

    def __repr__(self) -> str:
        return f"ConsortiumNode(validator={self.id}, network={self.genesis.network!r})"

    def _new_core(self, **resume: int) -> Core:
        """A core for the current epoch: fresh at round 1, or resumed at a synced commit."""
        key = self._keys.block_key() if self.id is not None else None
        gc = self.params.gc_depth or None
        if not resume:
            return Core(self.committee, author=self.id, key=key, verifier=_verify_block,
                        leader_timeout_ms=self.params.leader_timeout_ms, gc_depth=gc)
        return Core.resume(
            self.committee, author=self.id, key=key, verifier=_verify_block,
            leader_timeout_ms=self.params.leader_timeout_ms, gc_depth=gc or 0, **resume)

    def _restore_core(self, stored: Sequence[Block]) -> tuple[Core, list[Output]]:
        """The epoch's core from its persisted blocks, starting at the resume point a
        snapshot sync left (if any); the outputs replay produced."""
        point = self.checkpoints.resume(self.committee.epoch)
        if point is None:
            return Core.restore(
                self.committee, stored, author=self.id,
                key=self._keys.block_key() if self.id is not None else None,
                verifier=_verify_block, leader_timeout_ms=self.params.leader_timeout_ms,
                gc_depth=self.params.gc_depth or None,
            )
        round_, commits = point
        own = max((b.round for b in stored if b.author == self.id), default=0)
        core = self._new_core(last_decided_round=round_, last_commit_round=round_,
                              commit_index=commits, last_proposed_round=own)
        outputs: list[Output] = []
        for block in stored:
            with contextlib.suppress(SimtrustError):
                outputs.extend(core.on_block(block))
        return core, outputs

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        await self.net.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.net.stop()
        self.ledger.close()

    async def _run(self) -> None:
        tick = self.options.tick_s
        while True:
            try:
                self.step(time.monotonic())
            except SimtrustError as exc:
                log.warning("node step failed: %s", exc.detail)
            except Exception:  # the validator keeps running; the bug is logged
                log.exception("node step failed")
            # With messages still queued, yield to the links and go on at once.
            await asyncio.sleep(0 if self._inbox else tick)

    # -- client side -------------------------------------------------------

    async def submit_async(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """:meth:`submit` in chunks, yielding to links and blocks between them.

        Admission control: while the gossip inbox holds more than ``busy_inbox``
        messages this validator is behind its peers, and taking more client
        messages would only lengthen every queue; clients get ``RateLimited``
        (HTTP 429) and retry, so overload degrades to the node's capacity
        instead of growing latency without bound.
        """
        if len(self._inbox) > self.options.busy_inbox:
            self.stats["clients_refused"] += 1
            raise RateLimited("validator is busy ingesting its peers' messages; retry shortly",
                              inbox=len(self._inbox))
        chunk = self.options.ingest_chunk
        results: list[SubmitResult] = []
        for start in range(0, len(raws), chunk):
            results.extend(self.submit(raws[start : start + chunk]))
            if start + chunk < len(raws):
                await asyncio.sleep(0)
        return results

    def submit(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """Ingest messages from this node's clients and gossip the admitted ones."""
        self.orderer.local(True)
        try:
            results = self.ledger.submit_many(raws)
        finally:
            self.orderer.local(False)
        for raw, result in zip(raws, results, strict=True):
            if result.status in ("accepted", "pending"):
                self._gossip.append(raw)
        self._release(results)
        return results

    def _release(self, results: Sequence[SubmitResult]) -> None:
        """Remember what the ledger now holds; feed the core the blocks that completes."""
        ids = [r.message_id for r in results
               if r.message_id is not None and r.status != "rejected"]
        self._after_finalize()
        if not len(self.gate):
            return
        released = self.gate.arrived(ids)
        if released:
            self._feed(released, None)

    def status(self) -> dict[str, Any]:
        core = self.core
        info = self.ledger.info()
        return {
            "validator": self.id,
            "epoch": self.committee.epoch,
            "network": self.genesis.network,
            "genesis": self.genesis.id.hex(),
            "round": core.highest_round,
            "last_decided_round": core.last_decided_round,
            "commits": core.commit_count,
            "finalized": self.finalized_count(),
            "height": self.ledger.height,
            "syncing": None if self._sync is None else {
                "peer": self._sync.peer, "after": self._sync.after,
                "target": None if self._sync.target is None
                else self._sync.target.checkpoint.height},
            "checkpoint": self._latest_checkpoint(),
            "ledger": {k: info[k] for k in ("messages", "pending", "missing", "evicted")},
            "blocks": len(core),
            "pending_blocks": core.pending_count(),
            "held_blocks": len(self.gate),
            "inbox": len(self._inbox),
            "backlog": self.orderer.backlog(),
            "links": self.net.connected(),
            "paused": self.net.paused,
            "peers": {
                str(i): {"round": s.highest_round, "commits": s.commits, "finalized": s.finalized}
                for i, s in sorted(self.peer_status.items())
            },
            "stats": dict(self.stats),
            "limits": self.net.stats(),
        }

    def finalized_count(self) -> int:
        row = self.ledger.db.query_one("SELECT MAX(ord) FROM ledger_finalized")
        return int(row[0]) if row and row[0] is not None else 0

    # -- the loop ----------------------------------------------------------

    def step(self, now: float) -> None:
        """One tick: ingest queued gossip, flush gossip, propose if due, re-broadcast, retry."""
        self._ingest_some()
        self._flush_gossip()
        self._maybe_propose(now)
        opts = self.options
        if now - self._last_rebroadcast >= opts.rebroadcast_s and self._own_latest is not None:
            self._last_rebroadcast = now
            self.net.broadcast(encode_items(FrameType.BLOCKS, [self._own_latest.encode()]))
        if now - self._last_retry >= opts.retry_s:
            self._last_retry = now
            self._retry_fetches()
        if now - self._last_status >= opts.status_s:
            self._last_status = now
            self.net.broadcast(encode_status(self._status_frame()))
        sync = self._sync
        if sync is not None and now - self._sync_progress > opts.sync_timeout_s:
            log.warning("snapshot sync from validator %s made no progress; giving up", sync.peer)
            self.stats["syncs_failed"] += 1
            self._sync = None
        if now - self._last_reoffer >= opts.reoffer_s / 4:
            self._last_reoffer = now
            self.stats["reoffered"] += self.orderer.reoffer(self.ledger.unfinalized(),
                                                            opts.reoffer_s)

    def _flush_gossip(self) -> None:
        if self._gossip:
            batch, self._gossip = self._gossip, []
            for chunk in _chunks(batch):
                self.net.broadcast(encode_items(FrameType.MSGS, chunk))

    def _status_frame(self) -> Status:
        core = self.core
        return Status(core.highest_round, core.last_decided_round, core.commit_count,
                      self.finalized_count(), self.committee.epoch, self.ledger.height)

    def _latest_checkpoint(self) -> dict[str, Any] | None:
        cert = self.checkpoints.latest()
        if cert is None:
            return None
        cp = cert.checkpoint
        return {"height": cp.height, "epoch": cp.epoch, "round": cp.round,
                "chain": cp.chain.hex(), "signers": [i for i, _ in cert.signatures]}

    def _maybe_propose(self, now: float) -> None:
        if self.net.paused or self.id is None or self._sync is not None:
            return
        if now - self._last_proposal < self.params.min_round_interval_ms / 1000:
            return
        now_ms = int(time.time() * 1000)
        if self.core.ready_round(now_ms) is None:
            return
        self._last_proposal = now
        # Messages before the block that names them: links are FIFO, so peers
        # hold the payload when the block arrives and need not pull it.
        self._flush_gossip()
        block = self.core.propose(now_ms, self.orderer.proposal(self.params.max_ids_per_block))
        self.blocks.append([block])
        self._own_latest = block
        self.stats["proposed"] += 1
        self._handle(self.core.on_block(block), source=None, own=block.digest)
        self.net.broadcast(encode_items(FrameType.BLOCKS, [block.encode()]), droppable=False)

    def _request_floor(self) -> int:
        """Lowest round whose blocks a block request wants with their ancestors: just
        below the last decision, or, until a resumed core's first commit, its horizon
        (it needs the uncommitted blocks down there to form the same cones)."""
        core = self.core
        if self._resumed_at is not None and core.commit_count <= self._resumed_at:
            return max(1, core.gc_round)
        self._resumed_at = None
        return max(1, core.last_decided_round - 1)

    def _peer_choice(self) -> int | None:
        links = self.net.connected()
        return self._rng.choice(links) if links else None

    def _retry_fetches(self) -> None:
        peer = self._peer_choice()
        if peer is None:
            return
        refs = self.core.missing_refs()
        if refs and self._sync is None:
            floor = self._request_floor()
            digests = [r.digest for r in refs[:MAX_ITEMS]]
            self.net.send(peer, encode_get_blocks(digests, floor), droppable=False)
        self._replay_stash()
        missing = set(self.ledger.missing())
        if len(self.gate):
            missing.update(self.gate.wanted(time.monotonic(), self.options.retry_s))
        # Queued messages are on their way into the ledger: asking again would only
        # bring duplicates, each costing a signature check.
        inbox = self._inbox_ids
        wanted = sorted(m for m in missing if m not in inbox)
        if wanted:
            self.net.send(peer, encode_get_msgs(wanted[: self.options.max_fetch]),
                          droppable=False)

    def _on_connect(self, peer: int) -> None:
        self.net.send(peer, encode_status(self._status_frame()), droppable=False)
        if self._own_latest is not None:
            self.net.send(peer, encode_items(FrameType.BLOCKS, [self._own_latest.encode()]),
                          droppable=False)

    # -- frames from peers -------------------------------------------------

    def _on_frame(self, peer: int, frame: Frame) -> None:
        kind = frame.type
        if kind == FrameType.MSGS:
            self._on_msgs(frame.items)
        elif kind == FrameType.BLOCKS:
            self._on_blocks(peer, frame.items)
        elif kind in _REQUESTS and not self._may_ask(peer):
            self.stats["requests_dropped"] += 1
        elif kind == FrameType.GET_BLOCKS:
            self.stats["requests_in"] += 1
            limit = self.options.response_blocks
            found = self.core.history(frame.items, frame.floor, limit)
            if self._retired is not None and len(found) < limit:
                # A peer still in the previous epoch completes it from the retired core.
                found += self._retired.history(frame.items, frame.floor, limit - len(found))
            if len(found) < limit and len(found) < len(frame.items):
                # Blocks the core dropped below its horizon, for a peer resuming after
                # a snapshot sync: from the store.
                stored = self.blocks.history(frame.items, frame.floor, limit - len(found),
                                             {b.digest for b in found})
                self.stats["blocks_from_store"] += len(stored)
                found += stored
            for chunk in _chunks([b.encode() for b in found]):
                self.net.send(peer, encode_items(FrameType.BLOCKS, chunk), droppable=False)
        elif kind == FrameType.GET_TAIL:
            self.stats["requests_in"] += 1
            self._send_tail(peer, frame.floor)
        elif kind == FrameType.GET_MSGS:
            self.stats["requests_in"] += 1
            raws = []
            for mid in frame.items:
                with contextlib.suppress(NotFound):
                    raws.append(self.ledger.get_raw(mid))
            for chunk in _chunks(raws):
                self.net.send(peer, encode_items(FrameType.MSGS, chunk), droppable=False)
        elif kind == FrameType.STATUS and frame.status is not None:
            self.peer_status[peer] = frame.status
            self._consider_sync(peer, frame.status)
        elif kind == FrameType.CHECKPOINTS:
            self._on_checkpoints(peer, frame.items)
        elif kind == FrameType.COMMITS:
            self._on_commits(peer, frame.items)
        elif kind == FrameType.GET_CHECKPOINTS:
            self.stats["requests_in"] += 1
            certs = self.checkpoints.for_sync(frame.floor)
            if certs:
                self.net.send(peer, encode_items(FrameType.CHECKPOINTS,
                                                 [c.encode() for c in certs]), droppable=False)
        elif kind == FrameType.GET_COMMITS:
            self.stats["requests_in"] += 1
            records = self.ledger.commit_records(frame.floor, 1024, self.options.sync_bytes)
            for chunk in _chunks([*commit_items(records), END]):
                self.net.send(peer, encode_items(FrameType.COMMITS, chunk), droppable=False)
        elif kind == FrameType.PING:
            self.net.send(peer, encode_ping(frame.nonce, pong=True), droppable=False)

    def _ask_tail(self, peer: int, now: float) -> None:
        """Peers are in a later epoch: ask one for the last blocks of ours (§12 of
        ``docs/consensus.md``); their ancestors follow by the usual block requests."""
        if now - self._last_tail < self.options.retry_s:
            return
        self._last_tail = now
        self.stats["tail_requests"] += 1
        self.net.send(peer, encode_get_tail(self.committee.epoch), droppable=False)

    def _send_tail(self, peer: int, epoch: int) -> None:
        """Answer a tail request when the retired core is of the epoch asked for."""
        old = self._retired
        if old is not None and old.committee.epoch == epoch:
            self._push_tail(peer)

    def _push_tail(self, peer: int | None) -> None:
        """The last two rounds of the retired core, to ``peer`` or to every peer."""
        old = self._retired
        if old is None:
            return
        top = old.highest_round
        found = [b for r in (top - 1, top) if r > 0 for b in old.blocks_at(r)]
        for chunk in _chunks([b.encode() for b in found]):
            frame = encode_items(FrameType.BLOCKS, chunk)
            if peer is None:
                self.net.broadcast(frame, droppable=False)
            else:
                self.net.send(peer, frame, droppable=False)

    def _may_ask(self, peer: int) -> bool:
        """Requests cost this node reads and bandwidth: a token bucket per peer bounds them."""
        bucket = self._request_buckets.get(peer)
        if bucket is None:
            bucket = self._request_buckets[peer] = TokenBucket(
                self.options.requests_per_s, self.options.request_burst)
        if bucket.take(1) > 0:
            bucket.take(-1)  # refused requests cost nothing
            return False
        return True

    def _inbox_has_room(self) -> bool:
        return len(self._inbox) < self.options.inbox_max

    def _on_msgs(self, raws: Sequence[bytes]) -> None:
        """Queue gossiped messages; they are ingested in chunks between other work."""
        inbox, ids = self._inbox, self._inbox_ids
        holds = self.ledger.holds
        for raw in raws:
            mid = message_id(raw)
            # Queued or held already: dropping it here saves the inbox slot.
            if mid in ids or mid in self._stash or holds(mid):
                self.stats["msgs_duplicate"] += 1
                continue
            ids[mid] = 1
            inbox.append(raw)
        self.stats["msgs_in"] += len(raws)

    def _ingest_some(self) -> None:
        """Ingest one chunk of queued gossip (the loop comes back at once while any is left)."""
        inbox = self._inbox
        if not inbox:
            return
        chunk = [inbox.popleft() for _ in range(min(len(inbox), self.options.ingest_chunk))]
        try:
            results = self.ledger.submit_many(chunk)
        finally:
            for raw in chunk:
                self._inbox_ids.pop(message_id(raw), None)
        self.stats["msgs_rejected"] += sum(r.status == "rejected" for r in results)
        self._release(results)
        self._stash_refused(chunk, results)

    def _stash_refused(self, raws: Sequence[bytes], results: Sequence[SubmitResult]) -> None:
        """Keep messages held blocks wait for that the ledger refused for age or quota.

        Their signature was verified before the refusal, so this node holds the
        payload and the block may go to the core; once a commit names them the
        ledger admits them (``docs/ledger.md``, "Committed messages").
        """
        gate, stash = self.gate, self._stash
        if not len(gate):
            return
        ids: list[bytes] = []
        for raw, r in zip(raws, results, strict=True):
            mid = r.message_id
            if r.status != "rejected" or r.reason not in _STASHABLE or mid is None:
                continue
            if not gate.wants(mid):
                continue
            stash[mid] = raw
            ids.append(mid)
            while len(stash) > self.options.stash_max:
                stash.popitem(last=False)
        if ids:
            self.stats["stashed"] += len(ids)
            released = gate.arrived(ids)
            if released:
                self._feed(released, None)

    def _replay_stash(self) -> None:
        """Hand the ledger the stashed messages its commits now name (and their parents)."""
        stash = self._stash
        while stash:
            wanted = [m for m in self.ledger.missing() if m in stash]
            if not wanted:
                return
            self._release(self.ledger.submit_many([stash.pop(m) for m in wanted]))

    def holds(self, mid: bytes) -> bool:
        """Whether this node has message ``mid`` (stored, waiting for parents, or queued)."""
        return mid in self._inbox_ids or mid in self._stash or self.ledger.holds(mid)

    def _on_blocks(self, peer: int, raws: Sequence[bytes]) -> None:
        if self._sync is not None:
            return  # the core restarts at the synced commit; blocks before are moot
        ready: list[Block] = []
        wanted: list[bytes] = []
        now = time.monotonic()
        holds = self.holds
        for raw in raws:
            self.stats["blocks_in"] += 1
            try:
                block = Block.decode(raw)
            except SimtrustError:
                # Honest peers forward only blocks they decoded: this one is the sender's fault.
                self.stats["blocks_rejected"] += 1
                self.net.strike(peer, "sent an undecodable block")
                continue
            if block.epoch != self.committee.epoch:
                # Another epoch's block: kept by its epoch's core, never this one's.
                self.stats["blocks_other_epoch"] += 1
                if block.epoch > self.committee.epoch:
                    self._ask_tail(peer, now)
                continue
            digest = block.digest
            if digest in self.core or digest in self.gate:
                continue
            missing = [m for m in block.payload if not holds(m)]
            if not missing:
                ready.append(block)
                continue
            # Only a committee member's genuine block may occupy the gate.
            try:
                if not self.committee.contains(block.author):
                    raise Rejected("author", "block author is not in the committee")
                _verify_block(block, self.committee.public_key(block.author))
            except SimtrustError as exc:
                self.stats["blocks_rejected"] += 1
                if isinstance(exc, InvalidSignature):
                    self.net.strike(peer, "sent a block with a forged signature")
                continue
            self.gate.hold(block, missing, now)
            self.stats["held_blocks"] += 1
            wanted.extend(missing)
        wanted = [m for m in wanted if m not in self._inbox_ids]
        for start in range(0, len(wanted), MAX_ITEMS):
            self.net.send(peer, encode_get_msgs(wanted[start : start + MAX_ITEMS]),
                          droppable=False)
        self._feed(ready, peer)

    def _feed(self, blocks: Sequence[Block], source: int | None) -> None:
        outputs: list[Output] = []
        for block in blocks:
            try:
                outputs.extend(self.core.on_block(block))
            except InvalidSignature:
                # Peers forward only blocks their core verified: a forgery is the sender's.
                self.stats["blocks_rejected"] += 1
                if source is not None:
                    self.net.strike(source, "sent a block with a forged signature")
            except SimtrustError:
                # Other rejections (e.g. an equivocator's extra versions) may be forwarded
                # by honest peers, so they are counted, not held against the sender.
                self.stats["blocks_rejected"] += 1
        self._handle(outputs, source=source)
        self._maybe_propose(time.monotonic())

    def _handle(
        self, outputs: list[Output], *, source: int | None, own: bytes | None = None
    ) -> None:
        accepted: list[Block] = []
        commits: list[CommittedSubDag] = []
        for out in outputs:
            if isinstance(out, BlockAccepted):
                self.orderer.carried(out.block)
                if out.block.digest != own:
                    accepted.append(out.block)
            elif isinstance(out, MissingBlocks):
                target = source if source is not None else self._peer_choice()
                if target is not None:
                    floor = self._request_floor()
                    self.net.send(target, encode_get_blocks([r.digest for r in out.refs], floor),
                                  droppable=False)
            elif isinstance(out, EquivocationDetected):
                self.stats["equivocations"] += 1
                log.warning("equivocation by validator %s in round %s",
                            out.proof.first.author, out.proof.first.round)
            elif isinstance(out, CommittedSubDag):
                commits.append(out)
        self.blocks.append(accepted)
        if commits:
            self.stats["commits"] += len(commits)
            self.orderer.push(commits, self._round_offset)
            self._apply_commits()

    # -- ledger hooks (see docs/network.md, "Hooks") -----------------------

    def _apply_commits(self) -> None:
        """Let the ledger finalize what the orderer holds, without new messages."""
        try:
            self.ledger.finalize()
            self._after_finalize()
            self._replay_stash()
        except Rejected as exc:
            log.warning("finalization failed: %s", exc.detail)

    # -- checkpoints and snapshot sync (docs/network.md, "Snapshot sync") ----

    def _after_finalize(self) -> None:
        """Vote for the checkpoints the ledger just passed, then switch epochs if due."""
        height = self.ledger.height
        if height > self._voted_height:
            self._vote_checkpoints(height)
        self._maybe_switch()

    def _vote_checkpoints(self, height: int) -> None:
        pending = self._next_epoch
        ending = pending is not None and self.ledger.status(pending[2])["state"] == "finalized"
        interval = self.params.checkpoint_interval
        first = (self._voted_height // interval + 1) * interval
        heights = list(range(first, height + 1, interval))
        if ending and (not heights or heights[-1] != height):
            heights.append(height)
        self._voted_height = height
        votes: list[bytes] = []
        for h in heights:
            at = self.ledger.chain_at(h)
            if at is None:
                continue
            cp = Checkpoint(self.committee.epoch, h, at[0], ending and h == height, at[1])
            self._votes.own(cp)
            if self.id is not None:
                vote = sign_checkpoint(cp, self._keys.block_key(), self.id,
                                       self.ledger.network_id)
                self._votes.add(vote)
                votes.append(vote.encode())
        if votes:
            self.net.broadcast(encode_items(FrameType.CHECKPOINTS, votes), droppable=False)
        self._collect_certificates()

    def _committee_of(self, epoch: int) -> Committee | None:
        if epoch == self.committee.epoch:
            return self.committee
        if self._retired is not None and self._retired.committee.epoch == epoch:
            return self._retired.committee
        return None

    def _collect_certificates(self) -> None:
        for committee in (self.committee, self._committee_of(self.committee.epoch - 1)):
            if committee is None:
                continue
            for cert in self._votes.certified(committee):
                self.checkpoints.record(cert)
                self.stats["checkpoints"] += 1
            for other in self._votes.conflicting(committee):
                log.error("a quorum signed commit-chain head %s at height %s, this node "
                          "computed another: its ledger has diverged",
                          other.checkpoint.chain.hex(), other.checkpoint.height)

    def _on_checkpoints(self, peer: int, items: Sequence[bytes]) -> None:
        certs: list[CheckpointCert] = []
        for item in items:
            try:
                certs.append(CheckpointCert.decode(item))
            except DecodeError:
                self.net.strike(peer, "sent an undecodable checkpoint")
                return
        sync = self._sync
        if sync is not None and sync.peer == peer and sync.target is None:
            self._choose_target(sync, certs)
        # A vote far above this node's height cannot be for a head it will compute
        # soon; keeping it would let a member crowd out the votes that matter.
        horizon = self.ledger.height + 4 * self.params.checkpoint_interval
        for cert in certs:
            committee = self._committee_of(cert.checkpoint.epoch)
            if (len(cert.signatures) == 1 and committee is not None
                    and cert.checkpoint.height <= horizon
                    and verify_signature(cert, committee, self.ledger.network_id)):
                self._votes.add(cert)
        self._collect_certificates()

    def _consider_sync(self, peer: int, status: Status) -> None:
        """Start a snapshot sync when ``peer`` is too far ahead to catch up by blocks."""
        if self._sync is not None or self.net.paused or not self.params.gc_depth:
            return  # without GC a resumed core could not rebuild its peers' cones
        far = status.height > self.ledger.height + self.options.sync_commits
        if far or status.epoch >= self.committee.epoch + 2:
            log.warning("snapshot sync from validator %s: its height %s epoch %s, ours %s "
                        "epoch %s", peer, status.height, status.epoch, self.ledger.height,
                        self.committee.epoch)
            self._start_sync(peer)

    def _start_sync(self, peer: int) -> None:
        head_height, _, head = self.ledger.chain_head()
        now = time.monotonic()
        self._sync = SyncSession(peer, head_height, head, self.committee,
                                 self.ledger.network_id, now)
        self._sync_progress = now
        self.stats["syncs_started"] += 1
        self.net.send(peer, encode_floor(FrameType.GET_CHECKPOINTS, head_height),
                      droppable=False)

    def _choose_target(self, sync: SyncSession, certs: Sequence[CheckpointCert]) -> None:
        if sync.choose(certs) is None:
            return  # votes, or nothing verifiable yet: the answer may follow, or time out
        self._sync_progress = time.monotonic()
        # Commits waiting for messages, from the core being left behind: the
        # certified history replaces them.
        self.orderer.drop_commits()
        self.ledger.discard_pending_commits()
        self.net.send(sync.peer, encode_floor(FrameType.GET_COMMITS, sync.after),
                      droppable=False)

    def _on_commits(self, peer: int, items: Sequence[bytes]) -> None:
        sync = self._sync
        if sync is None or sync.peer != peer or sync.target is None:
            return
        try:
            records = sync.on_items(items)
        except (DecodeError, Rejected) as exc:
            log.warning("snapshot sync from validator %s failed: %s", peer, exc)
            self.stats["syncs_failed"] += 1
            self.net.strike(peer, "served commits that do not match the certificate")
            self._sync = None
            return
        self._sync_progress = time.monotonic()
        if records is None:
            if items and items[-1] == END:
                self.net.send(peer, encode_floor(FrameType.GET_COMMITS, sync.after),
                              droppable=False)
            return
        self._install(sync, records)

    def _install(self, sync: SyncSession, records: Sequence[CommitRecord]) -> None:
        """Apply certified commits through the ledger's own validation and handlers."""
        target = sync.target
        assert target is not None
        cp = target.checkpoint
        # This node checked that history, it did not live it: no votes for it.
        self._voted_height = max(self._voted_height, cp.height - 1)
        self.orderer.push_synced(
            LedgerCommit(r.leader, r.round, SyncSession.ids(r), 0, 0) for r in records)
        self.ledger.finalize()  # takes them: the ledger now admits their messages as committed
        raws = [raw for r in records for raw, _, _ in r.entries]
        for start in range(0, len(raws), 1024):
            self._release(self.ledger.submit_many(raws[start : start + 1024]))
        self._apply_commits()
        self.stats["synced_commits"] += len(records)
        at = self.ledger.chain_at(cp.height)
        if at is None or at[1] != cp.chain:
            # Messages still missing (parents no commit carried) arrive by the usual
            # pulls and the ledger applies the rest; the session stays until then.
            if self.ledger.height < cp.height:
                return
            log.error("after installing certified commits up to %s this ledger's head "
                      "differs from the certificate: its handlers diverge", cp.height)
            self.stats["syncs_failed"] += 1
            self._sync = None
            return
        self.checkpoints.record(target)
        if cp.ends_epoch:
            # The change was applied and the epoch switched: verify the next epoch's
            # certificates with its committee.
            self._start_sync(sync.peer)
            return
        self._finish_sync(cp)

    def _finish_sync(self, cp: Checkpoint) -> None:
        """Start the epoch's core at the synced commit; the recent DAG comes from peers."""
        round_ = cp.round - self._round_offset
        row = self.ledger.db.query_one(
            "SELECT COUNT(*) FROM ledger_rounds WHERE round > ?", (self._round_offset,))
        commits = int(row[0]) if row else 0
        own = max((b.round for b in self.blocks.load()
                   if b.epoch == self.committee.epoch and b.author == self.id), default=0)
        self.checkpoints.set_resume(self.committee.epoch, round_, commits)
        self.core = self._new_core(last_decided_round=round_, last_commit_round=round_,
                                   commit_index=commits, last_proposed_round=own)
        self._resumed_at = commits
        self.orderer.new_epoch(self.ledger.unfinalized())
        self.gate = AvailabilityGate()
        self._own_latest = None
        self._sync = None
        log.warning("snapshot sync done at height %s (epoch %s, round %s)",
                    cp.height, cp.epoch, round_)

    # -- epochs (docs/network.md, "Committee changes") ----------------------

    def _maybe_switch(self) -> None:
        """Start the next epoch if the ledger just finalized a committee change."""
        nxt, self._next_epoch = self._next_epoch, None
        if nxt is None:
            return
        target, offset, change_id = nxt
        if self.ledger.status(change_id)["state"] != "finalized":
            return  # the batch that applied it was rolled back; it comes again
        self._switch(target, offset)

    def _switch(self, target: EpochCommittee, round_offset: int) -> None:
        """Stop the old core after the switching commit and start the new epoch's."""
        log.warning("epoch %s begins: %s validators", target.epoch, len(target.validators))
        # The blocks that let this node decide the switching commit go to every
        # old-epoch peer first: one still short of that commit needs them, and
        # this node no longer proposes in the old epoch.
        self._retired = self.core
        self._push_tail(None)
        self.epoch_committee = target
        self.committee = target.committee()
        self._round_offset = round_offset
        self.id = target.index_of(self._keys.public_key)
        self.core = self._new_core()
        self.orderer.new_epoch(self.ledger.unfinalized())
        self.gate = AvailabilityGate()
        self._own_latest = None
        self._last_proposal = 0.0
        self.peer_status.clear()
        self._request_buckets.clear()
        self.net.set_committee(target.validators, self._keys.public_key)
        self.stats["epoch_switches"] += 1

    def committee_change_finalized(
        self, fm: FinalizedMessage, change: SignedCommitteeChange
    ) -> None:
        """The ledger is applying a valid change: record it and end the epoch with this commit."""
        pending = self._next_epoch
        # A change recorded by a batch that was rolled back is not final (and this
        # may be that batch again); one finalized earlier in this commit is.
        if pending is not None and self.ledger.status(pending[2])["state"] == "finalized":
            raise Rejected("committee-change", "another change already ends this epoch")
        change.verify(self.committee)
        self.epochs.record(change.target, fm.round)
        self.ledger.end_commits_here()
        self._next_epoch = (change.target, fm.round, fm.message_id)

    def _last_applied_round(self) -> int:
        """The ledger round of the last applied commit (epochs continue the numbering)."""
        row = self.ledger.db.query_one("SELECT MAX(round) FROM ledger_rounds")
        return int(row[0]) if row and row[0] is not None else 0
