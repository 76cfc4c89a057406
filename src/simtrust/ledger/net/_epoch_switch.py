"""Epoch changes of a consortium validator (``docs/network.md``, "Committee changes").

A committee change is tagged data the ledger finalizes; its handler checks
it against the current committee inside the ledger's transaction and ends
the epoch with that commit (``docs/consensus.md`` §12). The node then
retires its core (keeping it to answer peers still in the old epoch, and
pushing them the tail they need), starts the new epoch's core and relinks
to the new committee.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from simtrust.errors import DecodeError, InvalidInput, Rejected
from simtrust.ledger import FinalizedMessage, TaggedData
from simtrust.ledger.consensus import Core
from simtrust.ledger.net._epochs import COMMITTEE_CHANGE_TAG, EpochCommittee, SignedCommitteeChange
from simtrust.ledger.net._gate import AvailabilityGate, chunks
from simtrust.ledger.net._wire import FrameType, encode_get_tail, encode_items

if TYPE_CHECKING:
    from simtrust.ledger.net._node import ConsortiumNode

__all__ = ["CommitteeChangeHandler", "EpochSwitch"]

log = logging.getLogger("simtrust.ledger.net")


class CommitteeChangeHandler:
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
        self._node.epoch_switch.committee_change_finalized(fm, change)


class EpochSwitch:
    """The epoch transition state of one node: the change pending and the retired core."""

    __slots__ = ("_last_tail", "_node", "next_epoch", "retired")

    def __init__(self, node: ConsortiumNode) -> None:
        self._node = node
        #: (committee, ledger round offset, change message id) once a change is applied.
        self.next_epoch: tuple[EpochCommittee, int, bytes] | None = None
        #: The previous epoch's core, answering peers still in that epoch.
        self.retired: Core | None = None
        self._last_tail = 0.0

    def ask_tail(self, peer: int, now: float) -> None:
        """Peers are in a later epoch: ask one for the last blocks of ours (§12 of
        ``docs/consensus.md``); their ancestors follow by the usual block requests."""
        n = self._node
        if now - self._last_tail < n.options.retry_s:
            return
        self._last_tail = now
        n.stats["tail_requests"] += 1
        n.net.send(peer, encode_get_tail(n.committee.epoch), droppable=False)

    def send_tail(self, peer: int, epoch: int) -> None:
        """Answer a tail request when the retired core is of the epoch asked for."""
        old = self.retired
        if old is not None and old.committee.epoch == epoch:
            self.push_tail(peer)

    def push_tail(self, peer: int | None) -> None:
        """The last two rounds of the retired core, to ``peer`` or to every peer."""
        n = self._node
        old = self.retired
        if old is None:
            return
        top = old.highest_round
        found = [b for r in (top - 1, top) if r > 0 for b in old.blocks_at(r)]
        for chunk in chunks([b.encode() for b in found]):
            frame = encode_items(FrameType.BLOCKS, chunk)
            if peer is None:
                n.net.broadcast(frame, droppable=False)
            else:
                n.net.send(peer, frame, droppable=False)

    def maybe_switch(self) -> None:
        """Start the next epoch if the ledger just finalized a committee change."""
        n = self._node
        nxt, self.next_epoch = self.next_epoch, None
        if nxt is None:
            return
        target, offset, change_id = nxt
        if n.ledger.status(change_id)["state"] != "finalized":
            return  # the batch that applied it was rolled back; it comes again
        self._switch(target, offset)

    def _switch(self, target: EpochCommittee, round_offset: int) -> None:
        """Stop the old core after the switching commit and start the new epoch's."""
        n = self._node
        log.warning("epoch %s begins: %s validators", target.epoch, len(target.validators))
        # The blocks that let this node decide the switching commit go to every
        # old-epoch peer first: one still short of that commit needs them, and
        # this node no longer proposes in the old epoch.
        self.retired = n.core
        self.push_tail(None)
        n.epoch_committee = target
        n.committee = target.committee()
        n._round_offset = round_offset
        n.id = target.index_of(n._keys.public_key)
        n.core = n._new_core()
        n.orderer.new_epoch(n.ledger.unfinalized())
        n.gate = AvailabilityGate()
        n._own_latest = None
        n._last_proposal = 0.0
        n.peer_status.clear()
        n.requests.buckets.clear()
        n.net.set_committee(target.validators, n._keys.public_key)
        n.probe.forget()
        n.stats["epoch_switches"] += 1

    def committee_change_finalized(
        self, fm: FinalizedMessage, change: SignedCommitteeChange
    ) -> None:
        """The ledger is applying a valid change: record it and end the epoch with this commit."""
        n = self._node
        pending = self.next_epoch
        # A change recorded by a batch that was rolled back is not final (and this
        # may be that batch again); one finalized earlier in this commit is.
        if pending is not None and n.ledger.status(pending[2])["state"] == "finalized":
            raise Rejected("committee-change", "another change already ends this epoch")
        change.verify(n.committee)
        n.epochs.record(change.target, fm.round)
        n.ledger.end_commits_here()
        self.next_epoch = (change.target, fm.round, fm.message_id)
