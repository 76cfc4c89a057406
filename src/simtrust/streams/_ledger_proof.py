"""Prove a stored reading from the ledger alone: unchanged, anchored, signed by a SIM's key.

Three checks, each against what the ledger holds rather than what the platform
says (issue 17, "Done when"): the frame's Ed25519 signature (RFC 8032) by its
author key verifies; the frame's id is in the batch whose RFC 9162 Merkle root
the ledger anchored for the channel (``stream:<channel>``, docs/ledger.md
"Anchors and proofs"); and the SIM's DID, resolved on the ledger's DID
registry (docs/did-method.md), names that author key as an Ed25519
verification method, so the key that signed is the one held in the SIM.
Why the reading scores what it does is its provenance graph
(:meth:`ProvenanceGraph.check` verifies every annotation in it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from simtrust.errors import DecodeError, InvalidSignature, NotFound
from simtrust.identity import decode_multikey, verify_ed25519
from simtrust.streams._anchor import stream_domain, verify_message_proof
from simtrust.streams._frame import decode_frame, frame_id

__all__ = ["did_ed25519_keys", "prove_reading_on_ledger"]

_ED25519_PUB = 0xED

#: ``(domain, position) -> {"root", "message_id", "order", ...}`` of the anchor covering it.
AnchorLookup = Callable[[str, int], dict[str, Any] | None]


def did_ed25519_keys(document: dict[str, Any]) -> list[bytes]:
    """The Ed25519 public keys a DID document names as verification methods (Multikey)."""
    keys = []
    for method in document.get("verificationMethod", []):
        value = method.get("publicKeyMultibase") if isinstance(method, dict) else None
        if isinstance(value, str):
            try:
                codec, key = decode_multikey(value)
            except (DecodeError, ValueError):
                continue
            if codec == _ED25519_PUB:
                keys.append(key)
    return keys


def prove_reading_on_ledger(frame: bytes, proof: dict[str, Any] | None, sim_did: str, *,
                            anchor_at: AnchorLookup,
                            sim_keys: Callable[[str], Sequence[bytes]]) -> dict[str, Any]:
    """Check ``frame`` against the ledger; the evidence, or :class:`InvalidSignature`.

    ``proof`` is the message's inclusion proof (``GET /v1/streams/messages/{id}``);
    ``anchor_at`` reads the ledger's anchor covering a position of a domain and
    ``sim_keys`` the Ed25519 keys of a DID document resolved on the ledger.
    Raises :class:`NotFound` when the batch is not anchored (yet) or the DID does
    not resolve, :class:`DecodeError` for bytes that are not a frame.
    """
    parsed = decode_frame(frame)
    verify_ed25519(parsed.author, parsed.signature, parsed.signed_bytes())
    if not isinstance(proof, dict):
        raise NotFound("the message is not anchored yet: no inclusion proof")
    domain = stream_domain(parsed.channel)
    if proof.get("domain") not in (None, domain):
        raise InvalidSignature("the proof is for another channel")
    position = proof.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise DecodeError("the proof's position must be a non-negative integer")
    anchor = anchor_at(domain, position)
    if anchor is None:
        raise NotFound(f"the ledger holds no anchor of {domain} at {position}")
    try:
        verify_message_proof(frame, proof, anchor["root"])
    except (KeyError, TypeError, ValueError):
        raise DecodeError("the inclusion proof is malformed") from None
    keys = list(sim_keys(sim_did))
    if parsed.author not in keys:
        raise InvalidSignature(f"the frame's author key is not a key of the SIM {sim_did}")
    return {
        "verified": True,
        "message_id": frame_id(frame).hex(),
        "author": parsed.author.hex(),
        "sim_did": sim_did,
        "domain": domain,
        "position": position,
        "anchor": anchor["message_id"].hex(),
        "anchor_order": anchor["order"],
        "root": anchor["root"].hex(),
    }
