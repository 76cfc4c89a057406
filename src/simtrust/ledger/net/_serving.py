"""Answers to peers' requests for blocks, messages, tails, checkpoints and commits.

``docs/network.md`` ("Frames", "Flood control"): each request costs this
node reads and bandwidth, so every peer has a token bucket of requests
(``requests_per_s``, ``request_burst``); requests past it are dropped and
counted. Blocks are served from the core, then the retired core (a peer
still in the previous epoch), then the store (below the core's horizon).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from simtrust.errors import NotFound
from simtrust.ledger.net._gate import chunks
from simtrust.ledger.net._peers import TokenBucket
from simtrust.ledger.net._sync import END, commit_items
from simtrust.ledger.net._wire import Frame, FrameType, encode_items

if TYPE_CHECKING:
    from simtrust.ledger.net._node import ConsortiumNode

__all__ = ["REQUESTS", "RequestServer"]

#: Frames that ask this node for work; each peer has a budget of them.
REQUESTS = frozenset({FrameType.GET_BLOCKS, FrameType.GET_MSGS, FrameType.GET_TAIL,
                      FrameType.GET_CHECKPOINTS, FrameType.GET_COMMITS})


class RequestServer:
    """Serves one node's peers within their request budgets."""

    __slots__ = ("_node", "buckets")

    def __init__(self, node: ConsortiumNode) -> None:
        self._node = node
        self.buckets: dict[int, TokenBucket] = {}

    def may_ask(self, peer: int) -> bool:
        """Requests cost this node reads and bandwidth: a token bucket per peer bounds them."""
        bucket = self.buckets.get(peer)
        if bucket is None:
            options = self._node.options
            bucket = self.buckets[peer] = TokenBucket(options.requests_per_s,
                                                      options.request_burst)
        if bucket.take(1) > 0:
            bucket.take(-1)  # refused requests cost nothing
            return False
        return True

    def serve(self, peer: int, frame: Frame) -> None:
        """Answer one request frame (a kind in :data:`REQUESTS`) unless over budget."""
        n = self._node
        if not self.may_ask(peer):
            n.stats["requests_dropped"] += 1
            return
        n.stats["requests_in"] += 1
        kind = frame.type
        if kind == FrameType.GET_BLOCKS:
            self._blocks(peer, frame)
        elif kind == FrameType.GET_TAIL:
            n.epoch_switch.send_tail(peer, frame.floor)
        elif kind == FrameType.GET_MSGS:
            raws = []
            for mid in frame.items:
                with contextlib.suppress(NotFound):
                    raws.append(n.ledger.get_raw(mid))
            for chunk in chunks(raws):
                n.net.send(peer, encode_items(FrameType.MSGS, chunk), droppable=False)
        elif kind == FrameType.GET_CHECKPOINTS:
            certs = n.checkpoints.for_sync(frame.floor)
            if certs:
                n.net.send(peer, encode_items(FrameType.CHECKPOINTS,
                                              [c.encode() for c in certs]), droppable=False)
        elif kind == FrameType.GET_COMMITS:
            records = n.ledger.commit_records(frame.floor, 1024, n.options.sync_bytes)
            for chunk in chunks([*commit_items(records), END]):
                n.net.send(peer, encode_items(FrameType.COMMITS, chunk), droppable=False)

    def _blocks(self, peer: int, frame: Frame) -> None:
        n = self._node
        limit = n.options.response_blocks
        found = n.core.history(frame.items, frame.floor, limit)
        retired = n.epoch_switch.retired
        if retired is not None and len(found) < limit:
            # A peer still in the previous epoch completes it from the retired core.
            found += retired.history(frame.items, frame.floor, limit - len(found))
        if len(found) < limit and len(found) < len(frame.items):
            # Blocks the core dropped below its horizon, for a peer resuming after
            # a snapshot sync: from the store.
            stored = n.blocks.history(frame.items, frame.floor, limit - len(found),
                                      {b.digest for b in found})
            n.stats["blocks_from_store"] += len(stored)
            found += stored
        for chunk in chunks([b.encode() for b in found]):
            n.net.send(peer, encode_items(FrameType.BLOCKS, chunk), droppable=False)
