"""Messages coming into a consortium validator, from its clients and from its peers.

``docs/network.md`` ("Node"). Client batches are ingested at once and
gossiped to every peer; gossiped messages queue in a bounded inbox and are
ingested in chunks between other work (admission control refuses clients
while the inbox is long). Messages a held block waits for that the ledger
refused only for their age or their issuer's quota are stashed until a
commit names them (``docs/ledger.md``, "Committed messages").
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simtrust.errors import RateLimited
from simtrust.ledger import SubmitResult, message_id
from simtrust.ledger.net._gate import chunks
from simtrust.ledger.net._wire import FrameType, encode_items

if TYPE_CHECKING:
    from simtrust.ledger.net._node import ConsortiumNode

__all__ = ["MessageIntake"]

#: Refusals that depend on when a message arrives, not on what it is: a message a
#: validator's block carries may have been refused so only because this node
#: comes back after a long absence (``docs/network.md``, "Catch-up").
STASHABLE = frozenset({"timestamp-skew", "rate-limit"})


class MessageIntake:
    """The inbox of gossiped messages, the gossip to send, and the stash of one node."""

    __slots__ = ("_node", "gossip", "inbox", "queued_ids", "stash")

    def __init__(self, node: ConsortiumNode) -> None:
        self._node = node
        self.gossip: list[bytes] = []
        #: Queued messages as (id, raw): each is hashed once, on arrival.
        self.inbox: deque[tuple[bytes, bytes]] = deque()
        self.queued_ids: dict[bytes, int] = {}
        # Messages a held block carries that the ledger refused only for their
        # age or their issuer's quota, kept until a commit names them.
        self.stash: OrderedDict[bytes, bytes] = OrderedDict()

    async def submit_async(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """:meth:`submit` in chunks, yielding to links and blocks between them.

        Admission control: while the gossip inbox holds more than ``busy_inbox``
        messages this validator is behind its peers, and taking more client
        messages would only lengthen every queue; clients get ``RateLimited``
        (HTTP 429) and retry, so overload degrades to the node's capacity
        instead of growing latency without bound.
        """
        n = self._node
        if len(self.inbox) > n.options.busy_inbox:
            n.stats["clients_refused"] += 1
            raise RateLimited("validator is busy ingesting its peers' messages; retry shortly",
                              inbox=len(self.inbox))
        chunk = n.options.ingest_chunk
        results: list[SubmitResult] = []
        for start in range(0, len(raws), chunk):
            results.extend(self.submit(raws[start : start + chunk]))
            if start + chunk < len(raws):
                await asyncio.sleep(0)
        return results

    def submit(self, raws: Sequence[bytes]) -> list[SubmitResult]:
        """Ingest messages from this node's clients and gossip the admitted ones."""
        n = self._node
        n.orderer.local(True)
        try:
            results = n.ledger.submit_many(raws)
        finally:
            n.orderer.local(False)
        for raw, result in zip(raws, results, strict=True):
            if result.status in ("accepted", "pending"):
                self.gossip.append(raw)
        n.probe.admitted(r.message_id for r in results
                         if r.message_id is not None and r.status in ("accepted", "pending"))
        n._release(results)
        return results

    def has_room(self) -> bool:
        n = self._node
        return len(self.inbox) < n.options.inbox_max

    def on_msgs(self, raws: Sequence[bytes]) -> None:
        """Queue gossiped messages; they are ingested in chunks between other work."""
        n = self._node
        inbox, ids = self.inbox, self.queued_ids
        holds = n.ledger.ingest.holds  # memory only (LedgerNode.holds without the hop)
        for raw in raws:
            mid = message_id(raw)
            # Queued or held already: dropping it here saves the inbox slot.
            if mid in ids or mid in self.stash or holds(mid):
                n.stats["msgs_duplicate"] += 1
                continue
            ids[mid] = 1
            inbox.append((mid, raw))
        n.stats["msgs_in"] += len(raws)

    def ingest_some(self) -> None:
        """Ingest one chunk of queued gossip (the loop comes back at once while any is left)."""
        n = self._node
        inbox = self.inbox
        if not inbox:
            return
        pairs = [inbox.popleft() for _ in range(min(len(inbox), n.options.ingest_chunk))]
        ids = [mid for mid, _ in pairs]
        chunk = [raw for _, raw in pairs]
        queued = self.queued_ids
        try:
            results = n.ledger.submit_many(chunk, ids)
        finally:
            for mid in ids:
                queued.pop(mid, None)
        n.stats["msgs_rejected"] += sum(r.status == "rejected" for r in results)
        n._release(results)
        self._stash_refused(chunk, results)

    def _stash_refused(self, raws: Sequence[bytes], results: Sequence[SubmitResult]) -> None:
        """Keep messages held blocks wait for that the ledger refused for age or quota.

        Their signature was verified before the refusal, so this node holds the
        payload and the block may go to the core; once a commit names them the
        ledger admits them (``docs/ledger.md``, "Committed messages").
        """
        n = self._node
        gate, stash = n.gate, self.stash
        if not len(gate):
            return
        ids: list[bytes] = []
        for raw, r in zip(raws, results, strict=True):
            mid = r.message_id
            if r.status != "rejected" or r.reason not in STASHABLE or mid is None:
                continue
            if not gate.wants(mid):
                continue
            stash[mid] = raw
            ids.append(mid)
            while len(stash) > n.options.stash_max:
                stash.popitem(last=False)
        if ids:
            n.stats["stashed"] += len(ids)
            released = gate.arrived(ids)
            if released:
                n._feed(released, None)

    def replay_stash(self) -> None:
        """Hand the ledger the stashed messages its commits now name (and their parents)."""
        n = self._node
        stash = self.stash
        while stash:
            wanted = [m for m in n.ledger.missing() if m in stash]
            if not wanted:
                return
            n._release(n.ledger.submit_many([stash.pop(m) for m in wanted], wanted))

    def holds(self, mid: bytes) -> bool:
        """Whether this node has message ``mid`` (stored, waiting for parents, or queued)."""
        n = self._node
        return mid in self.queued_ids or mid in self.stash or n.ledger.ingest.holds(mid)

    def flush_gossip(self) -> None:
        n = self._node
        if self.gossip:
            batch, self.gossip = self.gossip, []
            for chunk in chunks(batch):
                n.net.broadcast(encode_items(FrameType.MSGS, chunk))
