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

The node is the loop and the block path (proposals, blocks in and out, the
core's outputs, serving peers' requests); its other parts are their own
classes: :class:`~simtrust.ledger.net._intake.MessageIntake` (client and
gossiped messages, the stash), :class:`~simtrust.ledger.net._gate.AvailabilityGate`
(blocks waiting for their payload),
:class:`~simtrust.ledger.net._checkpointing.SnapshotSync` (checkpoint votes,
certificates, snapshot sync) and
:class:`~simtrust.ledger.net._epoch_switch.EpochSwitch` (committee changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from simtrust.errors import (
    InvalidInput,
    InvalidSignature,
    Rejected,
    SimtrustError,
)
from simtrust.ledger import (
    PAYLOAD_NAMES,
    LedgerNode,
    SubmitResult,
    verify_ed25519,
)
from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    CausalHistory,
    CommittedSubDag,
    Core,
    EquivocationDetected,
    MissingBlocks,
    Output,
    block_signing_message,
)
from simtrust.ledger.net._checkpointing import SnapshotSync
from simtrust.ledger.net._checkpoints import CheckpointStore
from simtrust.ledger.net._committee_orderer import BlockStore, CommitteeOrderer
from simtrust.ledger.net._epoch_switch import CommitteeChangeHandler, EpochSwitch
from simtrust.ledger.net._epochs import EpochCommittee, EpochStore
from simtrust.ledger.net._gate import AvailabilityGate
from simtrust.ledger.net._genesis import NetworkGenesis, NodeKeys, ValidatorEntry
from simtrust.ledger.net._intake import MessageIntake
from simtrust.ledger.net._peers import PeerLimits, PeerNetwork
from simtrust.ledger.net._probe import LatencyProbe
from simtrust.ledger.net._serving import REQUESTS, RequestServer
from simtrust.ledger.net._wire import (
    MAX_ITEMS,
    Frame,
    FrameType,
    Status,
    encode_get_blocks,
    encode_get_msgs,
    encode_items,
    encode_ping,
    encode_status,
)
from simtrust.store import Database

__all__ = ["ConsortiumNode", "NodeOptions"]

log = logging.getLogger("simtrust.ledger.net")



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
        self._last_reoffer = 0.0
        latest = self.epochs.latest()
        # The committee of the epoch this node is in, and the ledger round its rounds
        # continue from (docs/network.md, "Committee changes").
        self.epoch_committee, self._round_offset = (
            latest if latest is not None else (EpochCommittee.of_genesis(genesis), 0))
        self.committee = self.epoch_committee.committee()
        self.id: int | None = self.epoch_committee.index_of(keys.public_key)
        self.epoch_switch = EpochSwitch(self)
        self.orderer = CommitteeOrderer(self.options.grace_s)
        self.ledger = LedgerNode(
            db,
            keys.ledger_signer(),
            config=genesis.ledger_config(workers=1, pool_threshold=1 << 30),
            genesis=genesis.ledger_genesis(),
            orderer=self.orderer,
            clock=clock or _utc_now,
        )
        self.ledger.register_handler("tagged-data", CommitteeChangeHandler(self))
        self.probe = LatencyProbe(time.monotonic)
        for payload_type in PAYLOAD_NAMES.values():
            self.ledger.register_handler(payload_type, self.probe)
        self.stats: dict[str, int] = {
            "blocks_in": 0, "blocks_rejected": 0, "msgs_in": 0, "msgs_rejected": 0,
            "commits": 0, "equivocations": 0, "proposed": 0, "requests_in": 0,
            "replayed_commits": 0, "held_blocks": 0, "requests_dropped": 0,
            "msgs_duplicate": 0, "clients_refused": 0, "stashed": 0,
            "blocks_other_epoch": 0, "epoch_switches": 0, "tail_requests": 0,
            "checkpoints": 0, "syncs_started": 0, "syncs_failed": 0, "synced_commits": 0,
            "reoffered": 0, "reproposed": 0, "blocks_from_store": 0,
        }
        self.gate = AvailabilityGate()
        self.intake = MessageIntake(self)
        #: The gossip inbox (``intake.inbox``), named here for tests and status.
        self._inbox = self.intake.inbox
        self.requests = RequestServer(self)
        self._rng = random.Random()
        links: tuple[ValidatorEntry, ...] | None = None
        if join is not None:
            links = self.epoch_committee.validators if self.id is not None else join.validators
        self.net = PeerNetwork(genesis, keys, self._on_frame, limits=limits,
                               on_connect=self._on_connect, bind=bind,
                               may_read=self.intake.has_room, validators=links)
        if latest is not None and join is None:
            self.net.set_committee(self.epoch_committee.validators, keys.public_key)
        self.peer_status: dict[int, Status] = {}
        self._last_proposal = 0.0
        self._last_rebroadcast = 0.0
        self._last_status = 0.0
        self._last_retry = 0.0
        self._task: asyncio.Task[None] | None = None
        self._own_latest: Block | None = None
        epoch = self.committee.epoch
        stored = [b for b in self.blocks.load() if b.epoch == epoch]
        self.core, outputs = self._restore_core(stored)
        self.snapshot_sync = SnapshotSync(self, self.ledger.height)
        for block in reversed(stored):
            if block.author == self.id:
                self._own_latest = block
                break
        applied = self._last_applied_round()
        replayed: list[CommittedSubDag] = []
        for out in outputs:
            if isinstance(out, BlockAccepted):
                self.orderer.carried(out.block)
            elif isinstance(out, CommittedSubDag):
                replayed.append(out)
        # Commits applied before the restart only tell the orderer what is finalized.
        self.stats["replayed_commits"] = self.orderer.push(replayed, self._round_offset, applied)
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
        self.blocks.flush()
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
            await asyncio.sleep(0 if self.intake.inbox else tick)

    # -- client side -------------------------------------------------------

    async def submit_async(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """See :meth:`MessageIntake.submit_async` (clients; HTTP 429 while busy)."""
        return await self.intake.submit_async(raws)

    def submit(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """Ingest messages from this node's clients and gossip the admitted ones."""
        return self.intake.submit(raws)

    def holds(self, mid: bytes) -> bool:
        """Whether this node has message ``mid`` (stored, waiting for parents, or queued)."""
        return self.intake.holds(mid)

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
        session = self.snapshot_sync.session
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
            "syncing": None if session is None else {
                "peer": session.peer, "after": session.after,
                "target": None if session.target is None
                else session.target.checkpoint.height},
            "checkpoint": self._latest_checkpoint(),
            "ledger": {k: info[k] for k in ("messages", "pending", "missing", "evicted")},
            "blocks": len(core),
            "pending_blocks": core.pending_count(),
            "held_blocks": len(self.gate),
            "inbox": len(self.intake.inbox),
            "backlog": self.orderer.backlog(),
            "held_for_parents": self.orderer.held,  # consensus.md §7.3
            "links": self.net.connected(),
            "paused": self.net.paused,
            "peers": {
                str(i): {"round": s.highest_round, "commits": s.commits, "finalized": s.finalized}
                for i, s in sorted(self.peer_status.items())
            },
            "stats": {**self.stats, **core.leader_wait_stats()},  # consensus.md §15.10
            "latency": self.probe.report(),
            "limits": self.net.stats(),
        }

    def finalized_count(self) -> int:
        row = self.ledger.db.query_one("SELECT MAX(ord) FROM ledger_finalized")
        return int(row[0]) if row and row[0] is not None else 0

    # -- the loop ----------------------------------------------------------

    def step(self, now: float) -> None:
        """One tick: ingest queued gossip, flush gossip, propose if due, re-broadcast, retry."""
        self.intake.ingest_some()
        self.intake.flush_gossip()
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
            # Peer blocks otherwise wait for the next own block or commit.
            self.blocks.flush()
        if self.snapshot_sync.timed_out(now):
            self.stats["syncs_failed"] += 1
        if now - self._last_reoffer >= opts.reoffer_s / 4:
            self._last_reoffer = now
            self.stats["reoffered"] += self.orderer.reoffer(self.ledger.unfinalized(),
                                                            opts.reoffer_s)


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
        if self.net.paused or self.id is None or self.snapshot_sync.session is not None:
            return
        if now - self._last_proposal < self.params.min_round_interval_ms / 1000:
            return
        now_ms = int(time.time() * 1000)
        if self.core.ready_round(now_ms) is None:
            return
        self._last_proposal = now
        # Messages before the block that names them: links are FIFO, so peers
        # hold the payload when the block arrives and need not pull it.
        self.intake.flush_gossip()
        history = CausalHistory(self.core)  # each id after its parents (consensus.md §7.3)
        ids = self.orderer.proposal(self.params.max_ids_per_block, history.precedes)
        block = self.core.propose(now_ms, ids)
        # Stored (after the buffered peer blocks it may name) before anyone sees it.
        self.blocks.append([block])
        self._own_latest = block
        self.stats["proposed"] += 1
        self.probe.proposed(block.payload)
        self._handle(self.core.on_block(block), source=None, own=block.digest)
        self.net.broadcast(encode_items(FrameType.BLOCKS, [block.encode()]), droppable=False)

    def _request_floor(self) -> int:
        """Lowest round whose blocks a block request wants with their ancestors: just
        below the last decision, or, until a resumed core's first commit, its horizon
        (it needs the uncommitted blocks down there to form the same cones)."""
        core = self.core
        resumed_at = self.snapshot_sync.resumed_at
        if resumed_at is not None and core.commit_count <= resumed_at:
            return max(1, core.gc_round)
        self.snapshot_sync.resumed_at = None
        return max(1, core.last_decided_round - 1)

    def _peer_choice(self) -> int | None:
        links = self.net.connected()
        return self._rng.choice(links) if links else None

    def _retry_fetches(self) -> None:
        peer = self._peer_choice()
        if peer is None:
            return
        refs = self.core.missing_refs()
        if refs and self.snapshot_sync.session is None:
            floor = self._request_floor()
            digests = [r.digest for r in refs[:MAX_ITEMS]]
            self.net.send(peer, encode_get_blocks(digests, floor), droppable=False)
        self.intake.replay_stash()
        missing = set(self.ledger.missing())
        if len(self.gate):
            missing.update(self.gate.wanted(time.monotonic(), self.options.retry_s))
        # Queued messages are on their way into the ledger: asking again would only
        # bring duplicates, each costing a signature check.
        inbox = self.intake.queued_ids
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
            self.intake.on_msgs(frame.items)
        elif kind == FrameType.BLOCKS:
            self._on_blocks(peer, frame.items)
        elif kind in REQUESTS:
            self.requests.serve(peer, frame)
        elif kind == FrameType.STATUS and frame.status is not None:
            self.peer_status[peer] = frame.status
            self.snapshot_sync.consider(peer, frame.status)
        elif kind == FrameType.CHECKPOINTS:
            self.snapshot_sync.on_checkpoints(peer, frame.items)
        elif kind == FrameType.COMMITS:
            self.snapshot_sync.on_commits(peer, frame.items)
        elif kind == FrameType.PING:
            self.net.send(peer, encode_ping(frame.nonce, pong=True), droppable=False)

    def _may_ask(self, peer: int) -> bool:
        """See :meth:`RequestServer.may_ask`."""
        return self.requests.may_ask(peer)

    def _on_blocks(self, peer: int, raws: Sequence[bytes]) -> None:
        if self.snapshot_sync.session is not None:
            return  # the core restarts at the synced commit; blocks before are moot
        ready: list[Block] = []
        wanted: list[bytes] = []
        now = time.monotonic()
        holds = self.intake.holds
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
                    self.epoch_switch.ask_tail(peer, now)
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
        wanted = [m for m in wanted if m not in self.intake.queued_ids]
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
                self.probe.committed(out.message_ids)
        # Peer blocks wait in the store's buffer; a commit writes them before the
        # ledger may apply it (docs/decisions/ledger-validator-block-writes.md).
        self.blocks.add(accepted)
        if commits:
            self.blocks.flush()
            self.stats["commits"] += len(commits)
            self.orderer.push(commits, self._round_offset)
            for block in self.core.take_left_behind():
                self.stats["reproposed"] += self.orderer.requeue(block.payload)
            self._apply_commits()

    # -- ledger hooks (see docs/network.md, "Hooks") -----------------------

    def _apply_commits(self) -> None:
        """Let the ledger finalize what the orderer holds, without new messages."""
        try:
            self.ledger.finalize()
            self._after_finalize()
            self.intake.replay_stash()
        except Rejected as exc:
            log.warning("finalization failed: %s", exc.detail)

    def _after_finalize(self) -> None:
        """Vote for the checkpoints the ledger just passed, then switch epochs if due."""
        self.snapshot_sync.after_finalize(self.ledger.height)
        self.epoch_switch.maybe_switch()

    def _last_applied_round(self) -> int:
        """The ledger round of the last applied commit (epochs continue the numbering)."""
        row = self.ledger.db.query_one("SELECT MAX(round) FROM ledger_rounds")
        return int(row[0]) if row and row[0] is not None else 0
