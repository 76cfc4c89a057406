"""Anchoring the audit log on the ledger, and proving one event's inclusion.

A batch of consecutive audit records ``first..last`` becomes a Merkle tree
(RFC 9162 §2.1, :mod:`simtrust.crypto.merkle`) whose leaves are
``u64 seq ‖ record hash``; its root goes on the ledger in an *anchor*
message signed by the node key (``docs/ledger.md``, "Anchors and proofs").
:func:`prove_event` returns a self-contained JSON proof: the event's record
hash, the audit path, and the complete signed anchor message.
:func:`verify_event_proof` checks it with nothing but that JSON (and,
optionally, a ledger node to confirm the anchor is finalized).
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simtrust.audit._log import AuditEvent, AuditLog, chain_hash
from simtrust.crypto.merkle import InclusionProof, inclusion_proof, merkle_root, verify_inclusion
from simtrust.errors import IntegrityError, InvalidInput, InvalidSignature, NotFound, Rejected
from simtrust.ledger import Anchor, LedgerNode, decode_message, verify_ed25519

__all__ = [
    "AUDIT_DOMAIN",
    "PROOF_VERSION",
    "AnchorReceipt",
    "VerifiedInclusion",
    "anchor_pending",
    "anchor_records",
    "leaf_data",
    "prove_event",
    "verify_event_proof",
]

AUDIT_DOMAIN = "audit"
PROOF_VERSION = 1
_SIGNATURE = 64


@dataclass(frozen=True, slots=True)
class AnchorReceipt:
    """An anchored batch: records ``first..last`` under ``root`` in message ``message_id``."""

    message_id: bytes
    first: int
    last: int
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id.hex(),
            "first": self.first,
            "last": self.last,
            "size": self.last - self.first + 1,
            "root": self.root.hex(),
        }


@dataclass(frozen=True, slots=True)
class VerifiedInclusion:
    """What a successful verification establishes."""

    event_id: str
    seq: int
    record_hash: bytes
    anchor_message_id: bytes
    anchor_issuer: bytes
    root: bytes


def leaf_data(seq: int, record_hash: bytes) -> bytes:
    """Leaf of the anchored tree: big-endian u64 sequence number ‖ 32-byte record hash."""
    if len(record_hash) != 32:
        raise InvalidInput("an audit record hash is 32 bytes")
    return struct.pack(">Q", seq) + record_hash


def anchor_records(
    node: LedgerNode, records: Sequence[tuple[int, bytes]], domain: str = AUDIT_DOMAIN
) -> AnchorReceipt:
    """Anchor consecutive ``(seq, record_hash)`` records as one Merkle root."""
    if not records:
        raise InvalidInput("nothing to anchor")
    first = records[0][0]
    for offset, (seq, _) in enumerate(records):
        if seq != first + offset:
            raise InvalidInput("anchored records must have consecutive sequence numbers")
    root = merkle_root([leaf_data(s, h) for s, h in records])
    last = records[-1][0]
    mid = node.anchor(domain, first, last, len(records), root)
    return AnchorReceipt(mid, first, last, root)


def anchor_pending(audit: AuditLog, node: LedgerNode,
                   max_batch: int = 10_000) -> AnchorReceipt | None:
    """Anchor every audit record not anchored yet (up to ``max_batch``); None if none."""
    after = node.last_anchored(AUDIT_DOMAIN)
    events = audit.query(after_seq=after, limit=max(1, min(max_batch, 10_000)))
    if not events:
        return None
    return anchor_records(node, [(e.seq, e.hash) for e in events])


def prove_event(audit: AuditLog, node: LedgerNode, event_id: str) -> dict[str, Any]:
    """The inclusion proof of audit event ``event_id`` against its finalized anchor (JSON)."""
    event = audit.get(event_id)
    if event is None:
        raise NotFound(f"no audit event {event_id!r}")
    anchor = node.anchor_covering(AUDIT_DOMAIN, event.seq)
    if anchor is None:
        raise NotFound(f"audit event {event_id!r} is not anchored yet")
    first, size = anchor["first"], anchor["size"]
    batch = audit.query(after_seq=first - 1, limit=size)
    if [e.seq for e in batch] != list(range(first, first + size)):
        raise IntegrityError("the audit log no longer holds every record of the anchored batch")
    leaves = [leaf_data(e.seq, e.hash) for e in batch]
    if not hmac.compare_digest(merkle_root(leaves), anchor["root"]):
        raise IntegrityError("the audit records differ from what was anchored")
    proof = inclusion_proof(leaves, event.seq - first)
    status = node.status(anchor["message_id"])
    return {
        "version": PROOF_VERSION,
        "event": {
            "event_id": event.event_id,
            "seq": event.seq,
            "record_hash": event.hash.hex(),
        },
        "proof": proof.to_json(),
        "anchor": {
            "message_id": anchor["message_id"].hex(),
            "message": node.get_raw(anchor["message_id"]).hex(),
            "order": anchor["order"],
            "state": status["state"],
            "network_id": node.network_id.hex(),
        },
    }


def _field(doc: dict[str, Any], *path: str) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise InvalidInput(f"proof lacks {'.'.join(path)}")
        value = value[key]
    return value


def verify_event_proof(
    proof: dict[str, Any],
    *,
    trusted_issuer: bytes | None = None,
    event: AuditEvent | None = None,
    ledger: LedgerNode | None = None,
) -> VerifiedInclusion:
    """Check a proof from :func:`prove_event`; raise unless every step holds.

    Steps: the anchor message decodes strictly and its Ed25519 signature
    verifies; its id is BLAKE2b-256 of its bytes; its issuer is
    ``trusted_issuer`` when given; its payload is an ``audit`` anchor whose
    range holds the event; the audit path leads from the event's leaf to the
    anchored root. With ``event``, the record hash is recomputed from the
    event itself; with ``ledger``, the anchor must be finalized there.
    """
    if _field(proof, "version") != PROOF_VERSION:
        raise InvalidInput("unknown proof version")
    try:
        raw = bytes.fromhex(str(_field(proof, "anchor", "message")))
        claimed_id = bytes.fromhex(str(_field(proof, "anchor", "message_id")))
        record_hash = bytes.fromhex(str(_field(proof, "event", "record_hash")))
    except ValueError as exc:
        raise InvalidInput("proof fields must be hex") from exc
    seq = _field(proof, "event", "seq")
    event_id = str(_field(proof, "event", "event_id"))
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise InvalidInput("event seq must be an integer")
    path = InclusionProof.from_json(_field(proof, "proof"))
    try:
        message = decode_message(raw)
    except Rejected as exc:
        raise InvalidInput(f"anchor message does not decode: {exc.detail}") from exc
    verify_ed25519(message.issuer, message.signature, raw[:-_SIGNATURE])
    if message.id != claimed_id:
        raise InvalidSignature("anchor message id does not match its bytes")
    if trusted_issuer is not None and not hmac.compare_digest(message.issuer, trusted_issuer):
        raise InvalidSignature("anchor message was not issued by the trusted node key")
    body = message.body
    if not isinstance(body, Anchor) or body.domain != AUDIT_DOMAIN:
        raise InvalidInput("the message is not an audit anchor")
    if not body.first <= seq <= body.last or path.index != seq - body.first:
        raise InvalidInput("the anchor's range does not hold this event at this position")
    if path.tree_size != body.size:
        raise InvalidInput("the proof's tree size differs from the anchored batch size")
    if event is not None:
        if event.event_id != event_id or event.seq != seq:
            raise InvalidInput("the proof is for another event")
        if chain_hash(event.prev_hash, event.canonical()) != record_hash:
            raise IntegrityError("the event's content does not match the proven record hash")
    verify_inclusion(leaf_data(seq, record_hash), path, body.root)
    if ledger is not None:
        state = ledger.status(message.id)["state"]
        if state != "finalized":
            raise IntegrityError(f"the anchor message is {state} on this ledger, not finalized")
        if not hmac.compare_digest(ledger.get_raw(message.id), raw):
            raise IntegrityError("the ledger holds different bytes for the anchor message")
    return VerifiedInclusion(event_id, seq, record_hash, message.id, message.issuer, body.root)
