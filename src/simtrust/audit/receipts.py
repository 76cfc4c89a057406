"""Signed receipts of access decisions, provable later from the ledger.

Issue 18 item 5 ("every access decision audited and receipted"); design in
``docs/decisions/capability-receipts.md``. The enforcement point records each
decision (permit or deny) as a ``capability.access`` audit record, durably,
before it answers; the receipt is a statement *derived from that record* and
signed by the node's ledger key (Ed25519, RFC 8032), so it needs no storage of
its own and can be issued again, byte for byte, from the record at any time.

Compact form: ``v1.<base64url(payload)>.<base64url(signature)>`` where the
payload is JSON with sorted keys and no whitespace (the same canonical form as
the audit chain, ``simtrust.audit._log``) and the signature covers
``RECEIPT_CONTEXT ‖ payload``. The payload names the audit record (``event_id``,
``seq``, ``record_hash``), the decision (``decision``, ``reason``), what was asked
(``resource``, ``action``), by whom (``requester``, ``holder``), under which
capability (``capability``: the root credential id, ``chain_digest``: SHA-256 of
the chain's credential ids), when (``at``) and the signing ``node`` key.

Anchoring is the audit trail's own (``simtrust.audit.anchoring``: batches of
record hashes as RFC 9162 Merkle roots in ledger anchor messages); a receipt's
proof is the audit record, its inclusion proof, and the signed anchor.
:func:`verify_receipt_proof` checks all three against the receipt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from simtrust.audit._log import AuditEvent, AuditLog, chain_hash
from simtrust.audit.anchoring import prove_event, verify_event_proof
from simtrust.errors import InvalidInput, InvalidSignature, NotFound
from simtrust.ledger import Ed25519Signer, LedgerNode, verify_ed25519

__all__ = [
    "DECISION_ACTION",
    "RECEIPT_CONTEXT",
    "chain_digest",
    "event_from_json",
    "issue_receipt",
    "prove_receipt",
    "receipt_claims",
    "record_decision",
    "verify_receipt",
    "verify_receipt_proof",
]

DECISION_ACTION = "capability.access"
RECEIPT_CONTEXT = b"simtrust access-decision receipt v1\x00"
_TYPE = "simtrust/access-decision-receipt"
_MAX_COMPACT = 8192


def chain_digest(chain: Sequence[str]) -> str | None:
    """SHA-256 (hex) of the chain's credential ids, root first, newline-separated."""
    if not chain:
        return None
    return hashlib.sha256("\n".join(chain).encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("receipt parts must be base64url") from exc


def receipt_claims(event: AuditEvent, node_key: bytes) -> dict[str, Any]:
    """The receipt payload of ``event`` (a ``capability.access`` record) under ``node_key``."""
    if event.action != DECISION_ACTION:
        raise NotFound(f"audit event {event.event_id!r} is not an access decision")
    details = event.details
    return {
        "typ": _TYPE,
        "event_id": event.event_id,
        "seq": event.seq,
        "record_hash": event.hash.hex(),
        "at": event.to_json()["at"],
        "requester": event.actor,
        "holder": details.get("holder"),
        "resource": event.subject,
        "action": details.get("action"),
        "decision": "permit" if event.outcome == "allow" else "deny",
        "reason": details.get("reason", event.reason),
        "capability": details.get("root"),
        "chain_digest": details.get("chain_digest"),
        "node": node_key.hex(),
    }


def _payload(claims: dict[str, Any]) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()  # fmt: skip


def issue_receipt(event: AuditEvent, signer: Ed25519Signer) -> str:
    """The compact signed receipt of ``event`` (deterministic: Ed25519 signatures are)."""
    payload = _payload(receipt_claims(event, signer.public_key))
    return f"v1.{_b64(payload)}.{_b64(signer.sign(RECEIPT_CONTEXT + payload))}"


def record_decision(
    audit: AuditLog,
    signer: Ed25519Signer,
    *,
    requester: str,
    resource: str,
    action: str,
    decision: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> tuple[AuditEvent, str]:
    """Record one decision durably (on disk before this returns), then sign its receipt.

    ``decision`` is the enforcement point's JSON (``decision``, ``reason``,
    ``holder``, ``root``, ``chain``...); the chain digest is added to the record.
    """
    permit = decision.get("decision") == "permit"
    details = {"action": action, **(extra or {}), **decision,
               "chain_digest": chain_digest(decision.get("chain") or ())}  # fmt: skip
    event = audit.append(
        actor=requester, action=DECISION_ACTION, subject=resource,
        outcome="allow" if permit else "deny", details=details, durable=True,
    )  # fmt: skip
    return event, issue_receipt(event, signer)


def verify_receipt(compact: str, *, trusted_node: bytes | None = None) -> dict[str, Any]:
    """Check a compact receipt's form and signature; return its claims or raise."""
    if not isinstance(compact, str) or len(compact) > _MAX_COMPACT:
        raise InvalidInput(f"a receipt is a string of at most {_MAX_COMPACT} characters")
    parts = compact.strip().split(".")
    if len(parts) != 3 or parts[0] != "v1":
        raise InvalidInput("a receipt is v1.<payload>.<signature>")
    payload, signature = _unb64(parts[1]), _unb64(parts[2])
    try:
        claims = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the receipt payload is not JSON") from exc
    if not isinstance(claims, dict) or claims.get("typ") != _TYPE:
        raise InvalidInput(f"the receipt payload is not a {_TYPE}")
    if _payload(claims) != payload:
        raise InvalidInput("the receipt payload is not in canonical form")
    try:
        node = bytes.fromhex(str(claims.get("node")))
    except ValueError as exc:
        raise InvalidInput("the receipt's node key must be hex") from exc
    if len(node) != 32 or len(signature) != 64:
        raise InvalidInput("the receipt's node key is 32 bytes and its signature 64")
    if trusted_node is not None and not hmac.compare_digest(node, trusted_node):
        raise InvalidSignature("the receipt was not signed by the trusted node key")
    verify_ed25519(node, signature, RECEIPT_CONTEXT + payload)
    return claims


def prove_receipt(audit: AuditLog, node: LedgerNode, event_id: str) -> dict[str, Any]:
    """The receipt of decision ``event_id``, its audit record and its ledger inclusion proof."""
    event = audit.get(event_id)
    if event is None:
        raise NotFound(f"no access decision {event_id!r}")
    receipt = issue_receipt(event, node.signer)
    return {"receipt": receipt, "event": event.to_json(),
            "proof": prove_event(audit, node, event_id)}  # fmt: skip


def event_from_json(doc: Any) -> AuditEvent:
    """An audit record from its JSON (``AuditEvent.to_json``); InvalidInput if malformed."""
    try:
        tenant = doc["tenant_id"]
        event = AuditEvent(
            int(doc["seq"]), str(doc["event_id"]), datetime.fromisoformat(
                str(doc["at"]).replace("Z", "+00:00")),
            str(doc["actor"]), str(doc["action"]), str(doc["subject"]), str(doc["outcome"]),
            str(doc["reason"]), None if tenant is None else str(tenant), dict(doc["details"]),
            bytes.fromhex(str(doc["prev_hash"])), bytes.fromhex(str(doc["hash"])),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("the proof's event is not an audit record") from exc
    return event


def verify_receipt_proof(
    doc: Any, *, trusted_node: bytes | None = None, ledger: LedgerNode | None = None
) -> dict[str, Any]:
    """Check a receipt, the audit record it names and its anchoring; raise unless all hold.

    The receipt's signature verifies; the record recomputes to its hash and says
    exactly what the receipt says; the Merkle path leads from that record to the
    root of an anchor message signed by the same node key (and, with
    ``ledger``, finalized there). Returns ``{"receipt": claims, "anchor": ...}``.
    """
    if not isinstance(doc, dict):
        raise InvalidInput("a receipt proof is a JSON object")
    receipt = doc.get("receipt")
    if not isinstance(receipt, str):
        raise InvalidInput("the receipt proof lacks the compact receipt")
    claims = verify_receipt(receipt, trusted_node=trusted_node)
    node = bytes.fromhex(claims["node"])
    event = event_from_json(doc.get("event"))
    if event.action != DECISION_ACTION:
        raise InvalidInput("the audit record is not an access decision")
    if chain_hash(event.prev_hash, event.canonical()) != event.hash:
        raise InvalidInput("the audit record does not match its hash")
    if receipt_claims(event, node) != claims:
        raise InvalidInput("the receipt differs from the audit record it names")
    proof = doc.get("proof")
    if not isinstance(proof, dict):
        raise InvalidInput("the receipt proof lacks the inclusion proof")
    inclusion = verify_event_proof(proof, trusted_issuer=node, event=event, ledger=ledger)
    return {
        "valid": True,
        "receipt": claims,
        "anchor": {"message_id": inclusion.anchor_message_id.hex(),
                   "root": inclusion.root.hex(), "issuer": inclusion.anchor_issuer.hex()},
    }  # fmt: skip
