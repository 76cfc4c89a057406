"""Anchoring batches of channel messages on the ledger, and proving one message later.

A batch is the ids of consecutive messages of one channel, in the order they
were anchored; its RFC 9162 Merkle root (``simtrust.crypto.merkle``) goes on
the ledger as an anchor payload (docs/ledger.md "Anchors") under the domain
``stream:<channel id, unpadded base64url>``, its range being the channel's anchoring positions
``first..last``. A message's proof is its frame's id, its position, and the
audit path: with the anchor read from the ledger, anyone can check that the
frame is the one anchored, without the rest of the batch.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from simtrust.crypto.merkle import (
    InclusionProof,
    inclusion_proof,
    merkle_root,
    root_from_inclusion_proof,
)
from simtrust.errors import InvalidInput, InvalidSignature
from simtrust.streams._frame import frame_id

__all__ = ["AnchoredBatch", "BatchAnchorer", "stream_domain", "verify_message_proof"]

#: ``anchor(domain, first, last, size, root) -> ledger message id`` (LedgerNode.anchor).
AnchorFn = Callable[[str, int, int, int, bytes], bytes]


def stream_domain(channel: bytes) -> str:
    """``stream:`` and the channel id in unpadded base64url (50 characters, within the
    ledger's 64-byte anchor domain)."""
    return "stream:" + base64.urlsafe_b64encode(channel).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    channel: bytes
    first: int
    message_ids: tuple[bytes, ...]
    root: bytes
    anchor_id: bytes

    def proof(self, message_id: bytes) -> dict[str, Any]:
        """The proof document of one message of this batch."""
        try:
            index = self.message_ids.index(message_id)
        except ValueError as exc:
            raise InvalidInput("message is not in this batch") from exc
        path = inclusion_proof(list(self.message_ids), index)
        return {
            "message_id": message_id.hex(),
            "domain": stream_domain(self.channel),
            "position": self.first + index,
            "first": self.first,
            "last": self.first + len(self.message_ids) - 1,
            "root": self.root.hex(),
            "anchor": self.anchor_id.hex(),
            "inclusion": path.to_json(),
        }


class BatchAnchorer:
    """Anchors the messages of one channel batch by batch."""

    def __init__(self, channel: bytes, anchor: AnchorFn, start: int = 0) -> None:
        """``start``: the channel's next anchoring position (a stored channel resumes)."""
        if start < 0:
            raise InvalidInput("anchoring positions start at 0")
        self.channel = channel
        self._anchor = anchor
        self._next = start

    def anchor(self, frames: Sequence[bytes]) -> AnchoredBatch:
        if not frames:
            raise InvalidInput("an anchored batch holds at least one message")
        ids = tuple(frame_id(f) for f in frames)
        root = merkle_root(list(ids))
        first, last = self._next, self._next + len(ids) - 1
        anchor_id = self._anchor(stream_domain(self.channel), first, last, len(ids), root)
        self._next = last + 1
        return AnchoredBatch(self.channel, first, ids, root, anchor_id)


def verify_message_proof(frame: bytes, proof: dict[str, Any], ledger_root: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``frame`` is in the batch whose root the
    ledger holds (read ``ledger_root`` from the anchor named in the proof)."""
    message_id = frame_id(frame)
    if message_id.hex() != proof.get("message_id"):
        raise InvalidSignature("the proof is for another message")
    path = InclusionProof.from_json(proof["inclusion"])
    if root_from_inclusion_proof(message_id, path) != ledger_root:
        raise InvalidSignature("the message is not in the anchored batch")
