"""Checkpoints and snapshot sync of a consortium validator (``docs/network.md``, "Snapshot sync").

Every ``checkpoint_interval`` commits each validator signs the commit-chain
head it computed; a quorum of those votes is a checkpoint certificate. A
node that is too far behind to catch up by blocks (``sync_commits`` behind,
or two epochs) asks a peer for certificates, picks a certified target, and
installs the certified commits through the ledger's own validation and
handlers, then resumes its consensus core at the synced commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simtrust.errors import DecodeError, Rejected
from simtrust.ledger import CommitRecord
from simtrust.ledger.consensus import Committee
from simtrust.ledger.net._checkpoints import (
    Checkpoint,
    CheckpointCert,
    CheckpointVotes,
    sign_checkpoint,
    verify_signature,
)
from simtrust.ledger.net._committee_orderer import LedgerCommit
from simtrust.ledger.net._gate import AvailabilityGate
from simtrust.ledger.net._sync import END, SyncSession
from simtrust.ledger.net._wire import FrameType, Status, encode_floor, encode_items

if TYPE_CHECKING:
    from simtrust.ledger.net._node import ConsortiumNode

__all__ = ["SnapshotSync"]

log = logging.getLogger("simtrust.ledger.net")


class SnapshotSync:
    """Checkpoint votes and certificates, and the snapshot-sync session of one node."""

    __slots__ = ("_node", "_votes", "progress", "resumed_at", "session", "voted_height")

    def __init__(self, node: ConsortiumNode, voted_height: int) -> None:
        self._node = node
        self._votes = CheckpointVotes()
        #: The sync in progress, if any, and when it last made progress.
        self.session: SyncSession | None = None
        self.progress = 0.0
        #: Commit count at which a resumed core starts (its first commits need the
        #: uncommitted blocks below the horizon).
        self.resumed_at: int | None = None
        self.voted_height = voted_height

    def timed_out(self, now: float) -> bool:
        """Give up a session that made no progress for ``sync_timeout_s``."""
        session = self.session
        if session is None or now - self.progress <= self._node.options.sync_timeout_s:
            return False
        log.warning("snapshot sync from validator %s made no progress; giving up", session.peer)
        self.session = None
        return True

    def after_finalize(self, height: int) -> None:
        """Vote for the checkpoints the ledger just passed."""
        if height > self.voted_height:
            self.vote(height)

    def vote(self, height: int) -> None:
        n = self._node
        pending = n.epoch_switch.next_epoch
        ending = pending is not None and n.ledger.status(pending[2])["state"] == "finalized"
        interval = n.params.checkpoint_interval
        first = (self.voted_height // interval + 1) * interval
        heights = list(range(first, height + 1, interval))
        if ending and (not heights or heights[-1] != height):
            heights.append(height)
        self.voted_height = height
        votes: list[bytes] = []
        for h in heights:
            at = n.ledger.chain_at(h)
            if at is None:
                continue
            cp = Checkpoint(n.committee.epoch, h, at[0], ending and h == height, at[1])
            self._votes.own(cp)
            if n.id is not None:
                vote = sign_checkpoint(cp, n._keys.block_key(), n.id, n.ledger.network_id)
                self._votes.add(vote)
                votes.append(vote.encode())
        if votes:
            n.net.broadcast(encode_items(FrameType.CHECKPOINTS, votes), droppable=False)
        self._collect_certificates()

    def committee_of(self, epoch: int) -> Committee | None:
        n = self._node
        if epoch == n.committee.epoch:
            return n.committee
        retired = n.epoch_switch.retired
        if retired is not None and retired.committee.epoch == epoch:
            return retired.committee
        return None

    def _collect_certificates(self) -> None:
        n = self._node
        for committee in (n.committee, self.committee_of(n.committee.epoch - 1)):
            if committee is None:
                continue
            for cert in self._votes.certified(committee):
                n.checkpoints.record(cert)
                n.stats["checkpoints"] += 1
            for other in self._votes.conflicting(committee):
                log.error("a quorum signed commit-chain head %s at height %s, this node "
                          "computed another: its ledger has diverged",
                          other.checkpoint.chain.hex(), other.checkpoint.height)

    def on_checkpoints(self, peer: int, items: Sequence[bytes]) -> None:
        n = self._node
        certs: list[CheckpointCert] = []
        for item in items:
            try:
                certs.append(CheckpointCert.decode(item))
            except DecodeError:
                n.net.strike(peer, "sent an undecodable checkpoint")
                return
        sync = self.session
        if sync is not None and sync.peer == peer and sync.target is None:
            self._choose_target(sync, certs)
        # A vote far above this node's height cannot be for a head it will compute
        # soon; keeping it would let a member crowd out the votes that matter.
        horizon = n.ledger.height + 4 * n.params.checkpoint_interval
        for cert in certs:
            committee = self.committee_of(cert.checkpoint.epoch)
            if (len(cert.signatures) == 1 and committee is not None
                    and cert.checkpoint.height <= horizon
                    and verify_signature(cert, committee, n.ledger.network_id)):
                self._votes.add(cert)
        self._collect_certificates()

    def consider(self, peer: int, status: Status) -> None:
        """Start a snapshot sync when ``peer`` is too far ahead to catch up by blocks."""
        n = self._node
        if self.session is not None or n.net.paused or not n.params.gc_depth:
            return  # without GC a resumed core could not rebuild its peers' cones
        far = status.height > n.ledger.height + n.options.sync_commits
        if far or status.epoch >= n.committee.epoch + 2:
            log.warning("snapshot sync from validator %s: its height %s epoch %s, ours %s "
                        "epoch %s", peer, status.height, status.epoch, n.ledger.height,
                        n.committee.epoch)
            self.start(peer)

    def start(self, peer: int) -> None:
        n = self._node
        head_height, _, head = n.ledger.chain_head()
        now = time.monotonic()
        self.session = SyncSession(peer, head_height, head, n.committee,
                                 n.ledger.network_id, now)
        self.progress = now
        n.stats["syncs_started"] += 1
        n.net.send(peer, encode_floor(FrameType.GET_CHECKPOINTS, head_height),
                      droppable=False)

    def _choose_target(self, sync: SyncSession, certs: Sequence[CheckpointCert]) -> None:
        n = self._node
        if sync.choose(certs) is None:
            return  # votes, or nothing verifiable yet: the answer may follow, or time out
        self.progress = time.monotonic()
        # Commits waiting for messages, from the core being left behind: the
        # certified history replaces them.
        n.orderer.drop_commits()
        n.ledger.discard_pending_commits()
        n.net.send(sync.peer, encode_floor(FrameType.GET_COMMITS, sync.after),
                      droppable=False)

    def on_commits(self, peer: int, items: Sequence[bytes]) -> None:
        n = self._node
        sync = self.session
        if sync is None or sync.peer != peer or sync.target is None:
            return
        try:
            records = sync.on_items(items)
        except (DecodeError, Rejected) as exc:
            log.warning("snapshot sync from validator %s failed: %s", peer, exc)
            n.stats["syncs_failed"] += 1
            n.net.strike(peer, "served commits that do not match the certificate")
            self.session = None
            return
        self.progress = time.monotonic()
        if records is None:
            if items and items[-1] == END:
                n.net.send(peer, encode_floor(FrameType.GET_COMMITS, sync.after),
                              droppable=False)
            return
        self._install(sync, records)

    def _install(self, sync: SyncSession, records: Sequence[CommitRecord]) -> None:
        """Apply certified commits through the ledger's own validation and handlers."""
        n = self._node
        target = sync.target
        assert target is not None
        cp = target.checkpoint
        # This node checked that history, it did not live it: no votes for it.
        self.voted_height = max(self.voted_height, cp.height - 1)
        n.orderer.push_synced(
            LedgerCommit(r.leader, r.round, SyncSession.ids(r), 0, 0) for r in records)
        n.ledger.finalize()  # takes them: the ledger now admits their messages as committed
        raws = [raw for r in records for raw, _, _ in r.entries]
        for start in range(0, len(raws), 1024):
            n._release(n.ledger.submit_many(raws[start : start + 1024]))
        n._apply_commits()
        n.stats["synced_commits"] += len(records)
        at = n.ledger.chain_at(cp.height)
        if at is None or at[1] != cp.chain:
            # Messages still missing (parents no commit carried) arrive by the usual
            # pulls and the ledger applies the rest; the session stays until then.
            if n.ledger.height < cp.height:
                return
            log.error("after installing certified commits up to %s this ledger's head "
                      "differs from the certificate: its handlers diverge", cp.height)
            n.stats["syncs_failed"] += 1
            self.session = None
            return
        n.checkpoints.record(target)
        if cp.ends_epoch:
            # The change was applied and the epoch switched: verify the next epoch's
            # certificates with its committee.
            self.start(sync.peer)
            return
        self._finish(cp)

    def _finish(self, cp: Checkpoint) -> None:
        """Start the epoch's core at the synced commit; the recent DAG comes from peers."""
        n = self._node
        round_ = cp.round - n._round_offset
        row = n.ledger.db.query_one(
            "SELECT COUNT(*) FROM ledger_rounds WHERE round > ?", (n._round_offset,))
        commits = int(row[0]) if row else 0
        own = max((b.round for b in n.blocks.load()
                   if b.epoch == n.committee.epoch and b.author == n.id), default=0)
        n.checkpoints.set_resume(n.committee.epoch, round_, commits)
        n.core = n._new_core(last_decided_round=round_, last_commit_round=round_,
                             commit_index=commits, last_proposed_round=own)
        self.resumed_at = commits
        n.orderer.new_epoch(n.ledger.unfinalized())
        n.gate = AvailabilityGate()
        n._own_latest = None
        self.session = None
        log.warning("snapshot sync done at height %s (epoch %s, round %s)",
                    cp.height, cp.epoch, round_)
