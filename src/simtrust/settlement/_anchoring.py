"""Usage record batches anchored on the ledger: prove any record later from the ledger alone.

The detailed usage records stay off the ledger (issue 15 item 3); a statement
carries the RFC 9162 §2.1 Merkle root over the records of both sides. Anchoring
puts that root on the ledger as an ``anchor`` payload (docs/ledger.md
"Anchors and proofs") under the domain ``usage:`` + the unpadded base64url
SHA-256 of the agreement id (49 characters, within the 64-byte anchor
domain), its range the next ``size`` positions of that domain, so successive
periods of one agreement occupy consecutive ranges. A record proof from
``settle prove`` is then checked against the root the ledger holds, without
the statement, the other records or either party.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, NotFound, Rejected
from simtrust.ledger import LedgerNode
from simtrust.settlement._statement import statement_id, verify_record_proof, verify_statement

__all__ = ["anchor_statement", "usage_domain", "verify_anchored_record"]

_MAX_POSITION = 2**63 - 1  # anchor positions are stored as signed 64-bit integers


def usage_domain(agreement: str) -> str:
    """The anchor domain of an agreement's usage record batches."""
    digest = hashlib.sha256(agreement.encode()).digest()
    return "usage:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _records(statement: dict[str, Any]) -> tuple[bytes, int]:
    records = statement.get("records")
    if not isinstance(records, dict):
        raise InvalidInput("statement: 'records' must be {merkle_root, size}")
    size, root = records.get("size"), records.get("merkle_root")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= _MAX_POSITION:
        raise InvalidInput("statement: 'records.size' must be a positive integer")
    try:
        digest = bytes.fromhex(str(root))
    except ValueError:
        raise InvalidInput("statement: 'records.merkle_root' is not hex") from None
    if len(digest) != 32:
        raise InvalidInput("statement: 'records.merkle_root' must be 32 bytes")
    return digest, size


def anchor_statement(node: LedgerNode, statement: dict[str, Any]) -> dict[str, Any]:
    """Anchor the statement's records root on ``node``'s ledger; the receipt once finalized.

    Signatures present must verify (an unsigned statement may be anchored as soon
    as both sides exchanged their records). The receipt names the domain, the
    range and the anchor message: what ``verify_anchored_record`` needs.
    """
    verify_statement(statement, require=())
    agreement = statement.get("agreement")
    if not isinstance(agreement, str) or not agreement:
        raise InvalidInput("statement: 'agreement' must be a non-empty string")
    root, size = _records(statement)
    domain = usage_domain(agreement)
    first = node.last_anchored(domain) + 1
    last = first + size - 1
    if last > _MAX_POSITION:
        raise InvalidInput(f"the anchor domain {domain} has no room for {size} more positions")
    message_id = node.anchor(domain, first, last, size, root)
    state = node.status(message_id)
    if state.get("state") != "finalized":
        raise Rejected(str(state.get("reason") or state.get("state")),
                       "the anchor was not finalized")
    return {
        "agreement": agreement,
        "statement": statement_id(statement),
        "domain": domain,
        "first": first,
        "last": last,
        "size": size,
        "merkle_root": root.hex(),
        "anchor": message_id.hex(),
        "issuer": node.signer.public_key.hex(),
    }


def verify_anchored_record(node: LedgerNode, proof: dict[str, Any],
                           receipt: dict[str, Any]) -> dict[str, Any]:
    """Check a record proof against the root the ledger holds for ``receipt``'s range.

    Reads the anchor from the ledger (domain, first position, issuer); raises
    :class:`NotFound` when the ledger holds no such anchor and
    :class:`InvalidSignature` when the record is not in the anchored batch.
    """
    try:
        domain, first = str(receipt["domain"]), int(receipt["first"])
        issuer = bytes.fromhex(str(receipt.get("issuer") or node.signer.public_key.hex()))
    except (KeyError, TypeError, ValueError):
        raise DecodeError("anchor receipt: needs domain, first and issuer") from None
    if not 0 < first <= _MAX_POSITION or len(issuer) != 32 or len(domain.encode()) > 64:
        raise DecodeError("anchor receipt: first, issuer or domain out of range")
    anchor = node.anchor_covering(domain, first, issuer)
    if anchor is None or anchor["first"] != first:
        raise NotFound(f"the ledger holds no anchor of {domain} at {first}")
    if not isinstance(proof, dict) or proof.get("size") != anchor["size"]:
        raise InvalidSignature("the proof is for a batch of another size than the anchored one")
    verify_record_proof(proof, anchor["root"].hex())
    return {"verified": True, "domain": domain, "first": first, "size": anchor["size"],
            "merkle_root": anchor["root"].hex(), "anchor": anchor["message_id"].hex(),
            "order": anchor["order"], "record": proof.get("record")}
