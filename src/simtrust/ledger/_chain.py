"""The commit chain: one hash per applied commit, over the finalized order and its outcome.

``docs/ledger.md`` ("Commit chain"). ``chain(h) = BLAKE2b-256(tag ‖ chain(h−1)
‖ round ‖ leader ‖ count ‖ (id ‖ status ‖ reason)*)``, starting from the
genesis id, so equal chain heads at a height mean equal finalized orders and
equal outcomes (applied or conflicting, and why) up to it. Validators sign
heads as checkpoints; a node that syncs finalized history from a peer
recomputes the chain and compares it with a certified head before applying.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

__all__ = ["CHAIN_TAG", "chain_genesis", "chain_step"]

CHAIN_TAG = b"simtrust/commit-chain/v1\x00"
_HEAD = struct.Struct(">QI")
_ENTRY = struct.Struct(">BH")
_APPLIED = _ENTRY.pack(0, 0)


def chain_genesis(genesis_id: bytes) -> bytes:
    """The chain head at height 0 (no commit applied)."""
    return hashlib.blake2b(CHAIN_TAG + genesis_id, digest_size=32).digest()


def chain_step(
    previous: bytes,
    round_: int,
    leader: bytes,
    entries: Iterable[tuple[bytes, int, str | None]],
) -> bytes:
    """The head after one commit: ``entries`` are (message id, status, reason) in order.

    Status 0 is applied, 1 conflicting with ``reason``; ids the commit named
    that were finalized earlier are not entries (they change nothing).
    """
    items = list(entries)
    # One hash over the joined bytes (the same bytes as hashing piece by piece).
    parts = [CHAIN_TAG, previous, _HEAD.pack(round_, len(items)), leader]
    append = parts.append
    for mid, status, reason in items:
        append(mid)
        if not status and reason is None:
            append(_APPLIED)
            continue
        text = (reason or "").encode()
        append(_ENTRY.pack(status, len(text)))
        append(text)
    return hashlib.blake2b(b"".join(parts), digest_size=32).digest()
