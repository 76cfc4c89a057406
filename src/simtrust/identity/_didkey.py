"""did:key for Ed25519 and X25519 (W3C CCG did:key Method v0.9, §3.1 create/read).

The method-specific id is the base58btc multibase of the multicodec public key;
an Ed25519 DID document also carries the X25519 key agreement key derived from
it (§3.1.1 step 8, ``enableEncryptionKeyDerivation``). Documents use the
``Multikey`` representation (§3.1.4 ``publicKeyFormat`` default).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._ecdsa import decode_p256_multikey, p256_multikey
from simtrust.identity._errors import InvalidDid
from simtrust.identity._keys import (
    decode_multikey,
    ed25519_multikey,
    ed25519_to_x25519_public,
    x25519_multikey,
)
from simtrust.identity._multibase import ED25519_PUB

__all__ = ["DID_CONTEXT", "MULTIKEY_CONTEXT", "did_key", "did_key_x25519", "resolve_did_key"]

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
_RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "capabilityInvocation",
    "capabilityDelegation",
)


def did_key(ed25519_public: bytes) -> str:
    """The did:key of an Ed25519 public key (``did:key:z6Mk...``)."""
    return "did:key:" + ed25519_multikey(ed25519_public)


def did_key_x25519(x25519_public: bytes) -> str:
    """The did:key of an X25519 key agreement key (``did:key:z6LS...``)."""
    return "did:key:" + x25519_multikey(x25519_public)


def resolve_did_key(did: str) -> dict[str, Any]:
    """The DID document of a did:key (a fresh copy the caller may change)."""
    return _copy(_resolve(did))


def cached_did_key(did: str) -> dict[str, Any]:
    """The shared cached document of a did:key: read it, never change it."""
    return _resolve(did)


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, list):
            out[key] = [dict(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


@lru_cache(maxsize=4096)
def _resolve(did: str) -> dict[str, Any]:
    if not isinstance(did, str) or not did.startswith("did:key:"):
        raise InvalidDid("not a did:key")
    fingerprint = did.removeprefix("did:key:")
    if not fingerprint.startswith("z") or ":" in fingerprint or "#" in fingerprint:
        raise InvalidDid("did:key identifier must be a base58btc multibase value")
    if fingerprint.startswith("zDn"):
        return _p256_document(did, fingerprint)
    try:
        codec, key = decode_multikey(fingerprint)
    except DecodeError as exc:
        raise InvalidDid(f"did:key identifier does not decode: {exc.detail}") from exc
    methods: list[dict[str, Any]] = []
    document: dict[str, Any] = {"@context": [DID_CONTEXT, MULTIKEY_CONTEXT], "id": did}
    if codec == ED25519_PUB:
        # Canonical form: re-encoding must give the same text (no leading-zero games).
        if ed25519_multikey(key) != fingerprint:
            raise InvalidDid("did:key identifier is not in canonical form")
        vm_id = f"{did}#{fingerprint}"
        methods.append(_method(vm_id, did, fingerprint))
        try:
            agreement = x25519_multikey(ed25519_to_x25519_public(key))
        except DecodeError as exc:
            raise InvalidDid("Ed25519 key is not a valid curve point") from exc
        methods.append(_method(f"{did}#{agreement}", did, agreement))
        document["verificationMethod"] = methods
        for relationship in _RELATIONSHIPS:
            document[relationship] = [vm_id]
        document["keyAgreement"] = [f"{did}#{agreement}"]
    else:
        if x25519_multikey(key) != fingerprint:
            raise InvalidDid("did:key identifier is not in canonical form")
        vm_id = f"{did}#{fingerprint}"
        document["verificationMethod"] = [_method(vm_id, did, fingerprint)]
        document["keyAgreement"] = [vm_id]
    return document


def _p256_document(did: str, fingerprint: str) -> dict[str, Any]:
    """A P-256 did:key (``zDn...``, VC-DI-ECDSA issuers): one Multikey, all relationships."""

    try:
        key = decode_p256_multikey(fingerprint)
    except DecodeError as exc:
        raise InvalidDid(f"did:key identifier does not decode: {exc.detail}") from exc
    if p256_multikey(key) != fingerprint:
        raise InvalidDid("did:key identifier is not in canonical form")
    vm_id = f"{did}#{fingerprint}"
    document: dict[str, Any] = {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [_method(vm_id, did, fingerprint)],
    }
    for relationship in _RELATIONSHIPS:
        document[relationship] = [vm_id]
    return document


def _method(vm_id: str, controller: str, multikey: str) -> dict[str, Any]:
    return {
        "id": vm_id,
        "type": "Multikey",
        "controller": controller,
        "publicKeyMultibase": multikey,
    }
