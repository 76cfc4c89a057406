"""TLS receipts on the ledger: which client certificate a datum arrived under, anchored.

The ``tls`` annotation made when a frame arrived over mutually-authenticated
TLS (docs/decisions/streams-live-annotations.md) names the SHA-256 fingerprint
of the client certificate beside the datum id, signed by the receiving node.
When the channel's frames are anchored, those annotations are anchored too:
their leaves (SHA-256 of the annotation's canonical body, RFC 8785, followed by
its Ed25519 signature) form an RFC 9162 Merkle tree whose root goes on the
ledger as an anchor of the node key under ``tls:<channel id, unpadded
base64url>``, positions counting the channel's receipts. Anyone can later
check, from the ledger and the kept certificate alone, that the node said at
that time that the datum came in under that certificate
(:func:`verify_tls_receipt`); the annotation names the SHA-256 of the CA-signed
OCSP response checked at arrival, so the kept response shows why.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from simtrust.crypto.merkle import (
    InclusionProof,
    inclusion_proof,
    merkle_root,
    root_from_inclusion_proof,
)
from simtrust.errors import DecodeError, InvalidSignature, NotFound
from simtrust.streams._ocsp_check import ocsp_status
from simtrust.streams._provenance import Annotation

__all__ = ["anchor_receipts", "receipt_leaf", "tls_domain", "verify_tls_receipt"]

AnchorFn = Callable[[str, int, int, int, bytes], bytes]
AnchorLookup = Callable[[str, int], dict[str, Any] | None]


def tls_domain(channel: bytes) -> str:
    """``tls:`` and the channel id in unpadded base64url (47 characters)."""
    return "tls:" + base64.urlsafe_b64encode(channel).rstrip(b"=").decode()


def annotation_from_json(document: dict[str, Any]) -> Annotation:
    try:
        return Annotation(str(document["datum"]), str(document["kind"]),
                          bool(document["satisfied"]), bytes.fromhex(document["annotator"]),
                          str(document["evidence"]), bytes.fromhex(document["signature"]))
    except (KeyError, TypeError, ValueError):
        raise DecodeError("the tls annotation is malformed") from None


def receipt_leaf(annotation: Annotation) -> bytes:
    return hashlib.sha256(annotation.body() + annotation.signature).digest()


def anchor_receipts(channel: bytes, annotations: Sequence[Annotation], first: int,
                    anchor: AnchorFn) -> list[dict[str, Any]]:
    """Anchor the receipts at positions ``first..``; each one's proof document."""
    leaves = [receipt_leaf(a) for a in annotations]
    root = merkle_root(leaves)
    domain = tls_domain(channel)
    last = first + len(leaves) - 1
    anchor_id = anchor(domain, first, last, len(leaves), root)
    return [{"domain": domain, "position": first + i, "first": first, "last": last,
             "root": root.hex(), "anchor": anchor_id.hex(),
             "inclusion": inclusion_proof(leaves, i).to_json()} for i in range(len(leaves))]


def verify_tls_receipt(annotation_json: dict[str, Any], certificate: bytes,
                       proof: dict[str, Any], *, anchor_at: AnchorLookup,
                       ocsp: tuple[bytes, bytes] | None = None) -> dict[str, Any]:
    """Check a datum's tls receipt against the ledger; the evidence, or raise.

    The annotation's signature verifies under its annotator key, it names the
    SHA-256 fingerprint of ``certificate``, and its leaf is in the tree whose root
    the ledger anchored (the anchor is read with ``anchor_at``). With ``ocsp``
    (the kept OCSP response and the CA certificate), the annotation must name that
    response's SHA-256, and the CA-signed status it gives when it was made is
    reported (``ocsp``): why the receipt says the certificate was, or was not,
    unrevoked at arrival."""
    annotation = annotation_from_json(annotation_json)
    if annotation.kind != "tls":
        raise InvalidSignature("the receipt is not a tls annotation")
    annotation.verify()
    fingerprint = hashlib.sha256(certificate).hexdigest()
    if f"sha256:{fingerprint}" not in annotation.evidence:
        raise InvalidSignature("the receipt names another client certificate")
    position = proof.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise DecodeError("the receipt's position must be a non-negative integer")
    domain = str(proof.get("domain"))
    found = anchor_at(domain, position)
    if found is None:
        raise NotFound(f"the ledger holds no anchor of {domain} at {position}")
    try:
        path = InclusionProof.from_json(proof["inclusion"])
    except (KeyError, TypeError, ValueError):
        raise DecodeError("the receipt's inclusion proof is malformed") from None
    if root_from_inclusion_proof(receipt_leaf(annotation), path) != found["root"]:
        raise InvalidSignature("the receipt is not in the anchored tree")
    checked: dict[str, str] | None = None
    if ocsp is not None:
        response, issuer = ocsp
        if f"OCSP response sha256:{hashlib.sha256(response).hexdigest()}" not in (
                annotation.evidence):
            raise InvalidSignature("the receipt names another OCSP response")
        status, detail = ocsp_status(certificate, issuer, response, None)
        checked = {"status": status, "detail": detail,
                   "issuer_sha256": hashlib.sha256(issuer).hexdigest()}
    return {"verified": True, "satisfied": annotation.satisfied,
            "client_certificate_sha256": fingerprint, "annotator": annotation.annotator.hex(),
            "evidence": annotation.evidence, "domain": domain, "position": position,
            "anchor": found["message_id"].hex(), "root": found["root"].hex(), "ocsp": checked}
