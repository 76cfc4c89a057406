"""``did:simtrust`` identifiers, operations and documents (docs/did-method.md §3–§6).

Building a DID from its network, key and nonce (§3); create, update and
deactivate operations secured by an ``eddsa-jcs-2022`` proof with
proofPurpose ``capabilityInvocation`` (§5); the patches an update applies and
the checks every resulting DID document passes (§4); the ledger ``identity``
payload that carries an operation, a verification receipt or a status-list
anchor (§6). Applying operations in finalized order is the registry's work
(:mod:`._didsimtrust`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._dataintegrity import add_proof
from simtrust.identity._didkey import DID_CONTEXT, MULTIKEY_CONTEXT
from simtrust.identity._errors import (
    InvalidDid,
    OperationRejected,
)
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer, decode_multikey, ed25519_multikey, x25519_multikey
from simtrust.identity._multibase import b58encode

__all__ = [
    "IDENTITY_PAYLOAD_TYPE",
    "MAX_PAYLOAD_BYTES",
    "PAYLOAD_KINDS",
    "RELATIONSHIPS",
    "add_key_patch",
    "apply_patches",
    "check_document",
    "create_operation",
    "deactivate_operation",
    "decode_identity_payload",
    "identity_payload",
    "key_agreement_patch",
    "parse_did",
    "remove_key_patch",
    "simtrust_did",
    "update_operation",
]

IDENTITY_PAYLOAD_TYPE = "identity"
#: Kinds of identity payload bodies (docs/did-method.md §6, docs/identity.md).
PAYLOAD_KINDS = ("did-operation", "verification-receipt", "status-list")
RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "keyAgreement",
    "capabilityInvocation",
    "capabilityDelegation",
)
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_METHODS = 32
MAX_SERVICES = 32
_NETWORK = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_SIMTRUST_DID = re.compile(r"did:simtrust:([a-z0-9][a-z0-9-]{0,31}):([1-9A-HJ-NP-Za-km-z]{16,32})")
_FRAGMENT = re.compile(r"[A-Za-z0-9._~-]{1,64}")


# ---------------------------------------------------------------- identifiers


def simtrust_did(network: str, public_key: bytes, nonce: str) -> str:
    """The DID a create operation by ``public_key`` with ``nonce`` yields (§3 of the spec).

    id = base58btc(first 16 bytes of SHA-256(JCS({network, nonce, publicKeyMultibase}))).
    """
    if not _NETWORK.fullmatch(network):
        raise InvalidDid("network must be 1-32 of [a-z0-9-], starting alphanumeric")
    if not isinstance(nonce, str) or not 1 <= len(nonce) <= 64:
        raise InvalidDid("nonce must be 1-64 characters")
    genesis = {
        "network": network,
        "nonce": nonce,
        "publicKeyMultibase": ed25519_multikey(public_key),
    }
    return (
        f"did:simtrust:{network}:{b58encode(hashlib.sha256(canonicalize(genesis)).digest()[:16])}"
    )


def parse_did(did: str) -> tuple[str, str]:
    match = _SIMTRUST_DID.fullmatch(did) if isinstance(did, str) else None
    if match is None:
        raise InvalidDid("not a did:simtrust DID (did:simtrust:<network>:<base58 id>)")
    return match.group(1), match.group(2)


# ----------------------------------------------------------------- operations


def _method(did: str, fragment: str, public_key: bytes) -> dict[str, Any]:
    return {
        "id": f"{did}#{fragment}",
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": ed25519_multikey(public_key),
    }


def create_operation(
    signer: Signer,
    *,
    network: str,
    nonce: str,
    now: datetime,
    services: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A signed create: the signer's key becomes every relationship of the new DID.

    ``signer.verification_method`` must be ``simtrust_did(network, key, nonce) + "#key-1"``.
    """
    did = simtrust_did(network, signer.public_key, nonce)
    if signer.verification_method != f"{did}#key-1":
        raise InvalidDid(f"signer must be {did}#key-1 for this key and nonce")
    vm = f"{did}#key-1"
    document: dict[str, Any] = {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [_method(did, "key-1", signer.public_key)],
        "authentication": [vm],
        "assertionMethod": [vm],
        "capabilityInvocation": [vm],
        "capabilityDelegation": [vm],
    }
    if services:
        document["service"] = [dict(s) for s in services]
    check_document(did, document)
    operation = {"type": "create", "did": did, "nonce": nonce, "document": document}
    return add_proof(operation, signer, created=now, proof_purpose="capabilityInvocation")


def update_operation(
    signer: Signer,
    *,
    did: str,
    previous_version: str,
    patches: Sequence[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """A signed update applying ``patches`` (docs/did-method.md §4.2) to ``previous_version``."""
    parse_did(did)
    operation = {
        "type": "update",
        "did": did,
        "previousVersion": previous_version,
        "patches": [dict(p) for p in patches],
    }
    return add_proof(operation, signer, created=now, proof_purpose="capabilityInvocation")


def deactivate_operation(
    signer: Signer, *, did: str, previous_version: str, now: datetime
) -> dict[str, Any]:
    parse_did(did)
    operation = {"type": "deactivate", "did": did, "previousVersion": previous_version}
    return add_proof(operation, signer, created=now, proof_purpose="capabilityInvocation")


def add_key_patch(
    did: str, fragment: str, public_key: bytes, relationships: Sequence[str]
) -> dict[str, Any]:
    """Patch adding an Ed25519 key (used for rotation together with :func:`remove_key_patch`)."""
    return {
        "op": "add-verification-method",
        "method": _method(did, fragment, public_key),
        "relationships": list(relationships),
    }


def key_agreement_patch(did: str, fragment: str, x25519_public: bytes) -> dict[str, Any]:
    """Patch adding an X25519 ``Multikey`` under ``keyAgreement`` (DID Core §5.3.4)."""
    return {
        "op": "add-verification-method",
        "method": {"id": f"{did}#{fragment}", "type": "Multikey", "controller": did,
                   "publicKeyMultibase": x25519_multikey(x25519_public)},
        "relationships": ["keyAgreement"],
    }


def remove_key_patch(vm_id: str) -> dict[str, Any]:
    return {"op": "remove-verification-method", "id": vm_id}


def identity_payload(kind: str, body: dict[str, Any]) -> bytes:
    """The ledger ``identity`` payload body: JCS of ``{"v": 1, "kind": ..., kind: body}``."""
    if kind not in PAYLOAD_KINDS:
        raise DecodeError(f"unknown identity payload kind {kind!r}")
    data = canonicalize({"v": 1, "kind": kind, kind: body})
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError("identity payload over 32 KiB")
    return data


def decode_identity_payload(data: bytes) -> tuple[str, dict[str, Any]]:
    """(kind, body) of an identity payload, or :class:`DecodeError`."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError("identity payload must be at most 32 KiB of bytes")
    try:
        envelope = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError("identity payload is not JSON") from exc
    if not isinstance(envelope, dict) or envelope.get("v") != 1:
        raise DecodeError("identity payload must be an object with v = 1")
    kind = envelope.get("kind")
    body = envelope.get(kind) if isinstance(kind, str) else None
    if kind not in PAYLOAD_KINDS or not isinstance(body, dict):
        raise DecodeError("identity payload has an unknown kind or no body")
    if set(envelope) != {"v", "kind", kind}:
        raise DecodeError("identity payload has unexpected members")
    return str(kind), body


# ------------------------------------------------------------------ documents


def check_document(did: str, document: dict[str, Any]) -> None:
    """Structural rules of docs/did-method.md §2 (raise OperationRejected("invalid-document"))."""

    def bad(detail: str) -> OperationRejected:
        return OperationRejected("invalid-document", detail, did=did)

    if document.get("id") != did:
        raise bad("document id must be the DID")
    methods = document.get("verificationMethod", [])
    if not isinstance(methods, list) or len(methods) > MAX_METHODS:
        raise bad(f"verificationMethod must be a list of at most {MAX_METHODS}")
    ids = set()
    for method in methods:
        if not isinstance(method, dict) or set(method) != {
            "id",
            "type",
            "controller",
            "publicKeyMultibase",
        }:
            raise bad("a verification method has id, type, controller, publicKeyMultibase")
        vm_id = method["id"]
        if (
            not isinstance(vm_id, str)
            or not vm_id.startswith(did + "#")
            or not _FRAGMENT.fullmatch(vm_id[len(did) + 1 :])
        ):
            raise bad("verification method ids are <did>#<fragment>")
        if vm_id in ids:
            raise bad(f"duplicate verification method {vm_id}")
        ids.add(vm_id)
        if method["type"] != "Multikey" or method["controller"] != did:
            raise bad("verification methods are Multikey keys controlled by the DID")
        try:
            decode_multikey(str(method["publicKeyMultibase"]))
        except DecodeError as exc:
            raise bad(f"{vm_id}: {exc.detail}") from exc
    for relationship in RELATIONSHIPS:
        refs = document.get(relationship, [])
        if not isinstance(refs, list) or not all(r in ids for r in refs):
            raise bad(f"{relationship} must list verification method ids of the document")
    services = document.get("service", [])
    if not isinstance(services, list) or len(services) > MAX_SERVICES:
        raise bad(f"service must be a list of at most {MAX_SERVICES}")
    for service in services:
        if (
            not isinstance(service, dict)
            or not isinstance(service.get("id"), str)
            or not service["id"].startswith(did + "#")
            or not isinstance(service.get("type"), str)
            or not isinstance(service.get("serviceEndpoint"), str | dict | list)
        ):
            raise bad("a service has id <did>#<fragment>, a type and a serviceEndpoint")
        if service["id"] in ids:
            raise bad(f"duplicate id {service['id']}")
        ids.add(service["id"])
    controller = document.get("controller")
    if controller is not None and not (
        isinstance(controller, list)
        and all(isinstance(c, str) and c.startswith("did:") for c in controller)
    ):
        raise bad("controller must be a list of DIDs")
    if not document.get("capabilityInvocation") and not controller:
        raise bad("a DID needs a capabilityInvocation key or a controller")
    if len(canonicalize(document)) > MAX_PAYLOAD_BYTES // 2:
        raise bad("document over 16 KiB")


def apply_patches(did: str, document: dict[str, Any], patches: object) -> dict[str, Any]:
    if not isinstance(patches, list) or not patches or len(patches) > 16:
        raise OperationRejected("invalid-document", "patches must be a list of 1-16 items", did=did)
    doc: dict[str, Any] = json.loads(json.dumps(document))
    for patch in patches:
        if not isinstance(patch, dict):
            raise OperationRejected("invalid-document", "a patch is an object", did=did)
        op = patch.get("op")
        if op == "add-verification-method":
            method = patch.get("method")
            rels = patch.get("relationships", [])
            if (
                not isinstance(method, dict)
                or not isinstance(rels, list)
                or not all(r in RELATIONSHIPS for r in rels)
            ):
                raise OperationRejected("invalid-document", "bad add-verification-method", did=did)
            doc.setdefault("verificationMethod", []).append(method)
            for rel in rels:
                doc.setdefault(rel, []).append(method.get("id"))
        elif op == "remove-verification-method":
            vm_id = patch.get("id")
            before = len(doc.get("verificationMethod", []))
            doc["verificationMethod"] = [
                m for m in doc.get("verificationMethod", []) if m.get("id") != vm_id
            ]
            if len(doc["verificationMethod"]) == before:
                raise OperationRejected("invalid-document", f"no method {vm_id}", did=did)
            for rel in RELATIONSHIPS:
                if rel in doc:
                    doc[rel] = [r for r in doc[rel] if r != vm_id]
        elif op == "add-service":
            service = patch.get("service")
            if not isinstance(service, dict):
                raise OperationRejected("invalid-document", "bad add-service", did=did)
            doc.setdefault("service", []).append(service)
        elif op == "remove-service":
            before = len(doc.get("service", []))
            doc["service"] = [s for s in doc.get("service", []) if s.get("id") != patch.get("id")]
            if len(doc["service"]) == before:
                raise OperationRejected(
                    "invalid-document", f"no service {patch.get('id')}", did=did
                )
        elif op == "set-controller":
            controller = patch.get("controller")
            if controller:
                doc["controller"] = controller
            else:
                doc.pop("controller", None)
        else:
            raise OperationRejected("invalid-document", f"unknown patch op {op!r}", did=did)
    for key in [*RELATIONSHIPS, "service", "verificationMethod"]:
        if key in doc and doc[key] == []:
            del doc[key]
    check_document(did, doc)
    return doc
