"""The ``did:simtrust`` method: operations, the ledger-state registry, resolution.

Specified in docs/did-method.md. An operation (create, update, deactivate) is
a JSON object secured by an ``eddsa-jcs-2022`` proof with proofPurpose
``capabilityInvocation``; it travels as the body of a ledger ``identity``
payload (JCS bytes) and changes registry state only when
:meth:`DidRegistry.apply` sees it in a finalized message, in finalized order.
Resolution follows W3C DID Resolution §4 (metadata §7.1: created, updated,
versionId, nextVersionId, deactivated; ``versionId`` / ``versionTime``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from simtrust.errors import DecodeError
from simtrust.identity._dataintegrity import add_proof, proofs_of, verify_proofs
from simtrust.identity._didkey import DID_CONTEXT, MULTIKEY_CONTEXT
from simtrust.identity._errors import (
    DidNotFound,
    InvalidDid,
    OperationRejected,
    VerificationFailed,
)
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer, decode_multikey, ed25519_multikey
from simtrust.identity._multibase import b58encode
from simtrust.identity._receipt import receipt_hash
from simtrust.identity._resolver import DidResolver, Resolution, method_key
from simtrust.identity._statusanchor import check_status_anchor
from simtrust.store import Database

__all__ = [
    "IDENTITY_PAYLOAD_TYPE",
    "PAYLOAD_KINDS",
    "RELATIONSHIPS",
    "ApplyOutcome",
    "DidRegistry",
    "FinalizedMessage",
    "add_key_patch",
    "create_operation",
    "deactivate_operation",
    "decode_identity_payload",
    "identity_payload",
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


class FinalizedMessage(Protocol):
    """What the ledger hands to handlers for each finalized message, in order."""

    @property
    def message_id(self) -> bytes: ...
    @property
    def issuer(self) -> bytes: ...
    @property
    def issued_at(self) -> datetime | int | float: ...
    @property
    def payload_type(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def order(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What :meth:`DidRegistry.apply` did with one finalized message."""

    outcome: str  # "applied", "rejected" or "ignored"
    kind: str | None = None
    did: str | None = None
    version: int | None = None
    reason: str | None = None


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


def _parse(did: str) -> tuple[str, str]:
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
    _check_document(did, document)
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
    _parse(did)
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
    _parse(did)
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


def _check_document(did: str, document: dict[str, Any]) -> None:
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


def _apply_patches(did: str, document: dict[str, Any], patches: object) -> dict[str, Any]:
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
    _check_document(did, doc)
    return doc


# ------------------------------------------------------------------- registry


def _timestamp(value: datetime | int | float) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(float(value), UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _aware(value: datetime | int | float) -> datetime:
    return datetime.fromisoformat(_timestamp(value).replace("Z", "+00:00"))


def _public_time(stored: str) -> str:
    return stored[:19] + "Z"


class DidRegistry:
    """did:simtrust state, applied only from finalized ledger messages, in order.

    Also a :class:`DidMethod` for :class:`DidResolver` (``resolver.register("simtrust", reg)``).
    """

    __slots__ = ("_db", "_network", "_resolver")

    def __init__(
        self, db: Database, resolver: DidResolver | None = None, *, network: str | None = None
    ) -> None:
        """``network``: when given, operations on DIDs of other networks are refused."""
        self._db = db
        self._network = network
        self._resolver = resolver or DidResolver()
        self._resolver.register("simtrust", self)

    @property
    def resolver(self) -> DidResolver:
        return self._resolver

    # -- applying finalized messages

    def applied_through(self) -> int:
        """The finalized order of the last message this registry applied (0: none)."""
        row = self._db.query_one(
            "SELECT ledger_order FROM identity_ledger_cursor WHERE component = 'registry'"
        )
        return 0 if row is None else int(row[0])

    def apply(self, message: FinalizedMessage) -> ApplyOutcome:
        """Apply one finalized message; invalid operations are recorded and refused, not raised."""
        if message.payload_type != IDENTITY_PAYLOAD_TYPE:
            return ApplyOutcome("ignored", reason="not an identity payload")
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT ledger_order FROM identity_ledger_cursor WHERE component = 'registry'"
            )
            if row is not None and int(message.order) <= int(row[0]):
                return ApplyOutcome("ignored", reason="already applied")
            if row is None:
                self._db.execute(
                    "INSERT INTO identity_ledger_cursor (component, ledger_order)"
                    " VALUES ('registry', ?)",
                    (int(message.order),),
                )
            else:
                self._db.execute(
                    "UPDATE identity_ledger_cursor SET ledger_order = ?"
                    " WHERE component = 'registry'",
                    (int(message.order),),
                )
            try:
                kind, body = decode_identity_payload(message.payload)
            except DecodeError as exc:
                return ApplyOutcome("rejected", reason="malformed: " + exc.detail)
            if kind == "verification-receipt":
                return self._anchor_receipt(message, body)
            if kind == "status-list":
                return self._anchor_status_list(message, body)
            return self._apply_operation(message, body)

    def _apply_operation(self, message: FinalizedMessage, op: dict[str, Any]) -> ApplyOutcome:
        op_hash = hashlib.sha256(canonicalize(op)).hexdigest()
        did = op.get("did") if isinstance(op.get("did"), str) else ""
        kind = str(op.get("type"))
        if self._db.query_one(
            "SELECT 1 FROM identity_did_operation WHERE operation_hash = ? AND outcome = 'applied'",
            (op_hash,),
        ):
            self._record(op_hash, str(did), message, "rejected", "replayed")
            return ApplyOutcome("rejected", kind, did, reason="replayed")
        try:
            version = self._check_and_write(message, op, op_hash)
        except (OperationRejected, VerificationFailed, InvalidDid) as exc:
            reason = (
                exc.reason
                if isinstance(exc, OperationRejected | VerificationFailed)
                else "invalid-did"
            )
            self._record(op_hash, str(did), message, "rejected", f"{reason}: {exc.detail}")
            return ApplyOutcome("rejected", kind, did, reason=reason)
        self._record(op_hash, str(did), message, "applied", "")
        return ApplyOutcome("applied", kind, did, version)

    def _record(
        self, op_hash: str, did: str, message: FinalizedMessage, outcome: str, reason: str
    ) -> None:
        self._db.execute(
            "INSERT INTO identity_did_operation (operation_hash, did, message_id, ledger_order,"
            " outcome, reason) VALUES (?, ?, ?, ?, ?, ?)",
            (op_hash, did, bytes(message.message_id), int(message.order), outcome, reason[:500]),
        )

    def _check_and_write(self, message: FinalizedMessage, op: dict[str, Any], op_hash: str) -> int:
        did = op.get("did")
        kind = op.get("type")
        if not isinstance(did, str):
            raise OperationRejected("malformed", "operation names no DID")
        network, _ = _parse(did)
        if self._network is not None and network != self._network:
            raise OperationRejected(
                "wrong-network", f"this ledger is {self._network}, not {network}"
            )
        proofs = proofs_of(op)
        if len(proofs) != 1 or proofs[0].get("cryptosuite") != "eddsa-jcs-2022":
            raise OperationRejected("unauthorized", "an operation carries one eddsa-jcs-2022 proof")
        when = _timestamp(message.issued_at)
        now = _aware(message.issued_at)
        current = self._db.query_one(
            "SELECT version, deactivated FROM identity_did WHERE did = ?", (did,)
        )
        if kind == "create":
            if set(op) != {"type", "did", "nonce", "document", "proof"}:
                raise OperationRejected("malformed", "create has type, did, nonce, document, proof")
            if current is not None:
                raise OperationRejected("exists", f"{did} already exists")
            document = op["document"]
            if not isinstance(document, dict):
                raise OperationRejected("malformed", "document must be an object")
            _check_document(did, document)
            vm = str(proofs[0].get("verificationMethod", ""))
            key = method_key(document, vm, "capabilityInvocation")
            if simtrust_did(network, key, str(op["nonce"])) != did:
                raise OperationRejected(
                    "unauthorized", "the DID is not derived from the signing key and nonce"
                )
            verify_proofs(
                op,
                resolver=self._resolver,
                now=now,
                proof_purpose="capabilityInvocation",
                key_for=lambda vm_url, purpose: method_key(document, vm_url, purpose),
            )
            self._db.execute(
                "INSERT INTO identity_did (did, network, version, deactivated, created, updated)"
                " VALUES (?, ?, 1, 0, ?, ?)",
                (did, network, when, when),
            )
            self._write_version(
                did=did, version=1, document=document, op_hash=op_hash, message=message, when=when
            )
            return 1
        if kind not in ("update", "deactivate"):
            raise OperationRejected("malformed", f"unknown operation type {kind!r}")
        expected = {"type", "did", "previousVersion", "proof"} | (
            {"patches"} if kind == "update" else set()
        )
        if set(op) != expected:
            raise OperationRejected("malformed", f"{kind} has exactly {sorted(expected)}")
        if current is None:
            raise OperationRejected("not-found", f"{did} does not exist")
        version, deactivated = int(current[0]), bool(current[1])
        if deactivated:
            raise OperationRejected("deactivated", f"{did} is deactivated")
        if op["previousVersion"] != str(version):
            raise OperationRejected(
                "stale",
                f"operation is based on version {op['previousVersion']!r}, current is {version}",
            )
        document = self._document(did, version)
        verify_proofs(
            op,
            resolver=self._resolver,
            now=now,
            proof_purpose="capabilityInvocation",
            key_for=lambda vm_url, purpose: self._controller_key(document, vm_url),
        )
        if kind == "update":
            new_document = _apply_patches(did, document, op["patches"])
            deactivated_now = 0
        else:
            new_document = {"@context": document["@context"], "id": did}
            deactivated_now = 1
        self._db.execute(
            "UPDATE identity_did SET version = ?, deactivated = ?, updated = ? WHERE did = ?",
            (version + 1, deactivated_now, when, did),
        )
        self._write_version(
            did=did,
            version=version + 1,
            document=new_document,
            op_hash=op_hash,
            message=message,
            when=when,
        )
        return version + 1

    def _controller_key(self, document: dict[str, Any], vm_url: str) -> bytes:
        """A capabilityInvocation key of the DID itself or of one of its controllers."""
        did = document["id"]
        vm_did = vm_url.split("#", 1)[0]
        if vm_did == did:
            return method_key(document, vm_url, "capabilityInvocation")
        if vm_did not in (document.get("controller") or []):
            raise VerificationFailed("key-not-authorized", f"{vm_did} is not a controller of {did}")
        return self._resolver.verification_key(vm_url, "capabilityInvocation")

    def _write_version(
        self,
        *,
        did: str,
        version: int,
        document: dict[str, Any],
        op_hash: str,
        message: FinalizedMessage,
        when: str,
    ) -> None:
        self._db.execute(
            "INSERT INTO identity_did_version (did, version, document, operation_hash, message_id,"
            " ledger_order, valid_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                did,
                version,
                canonicalize(document).decode("utf-8"),
                op_hash,
                bytes(message.message_id),
                int(message.order),
                when,
            ),
        )

    def _anchor_receipt(self, message: FinalizedMessage, body: dict[str, Any]) -> ApplyOutcome:
        try:
            digest = receipt_hash(body)
        except DecodeError as exc:
            return ApplyOutcome(
                "rejected", "verification-receipt", reason="malformed: " + exc.detail
            )
        stored = self._db.query_one(
            "SELECT message_id FROM identity_receipt WHERE receipt_hash = ?", (digest,)
        )
        if stored is not None and stored[0] is not None:
            return ApplyOutcome("rejected", "verification-receipt", reason="replayed")
        if stored is None:
            self._db.execute(
                "INSERT INTO identity_receipt (receipt_hash, presentation_hash, verifier, issuer,"
                " verified_at, message_id, ledger_order, relying_party, credential_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    body["presentationHash"],
                    body["verifier"],
                    body["issuer"],
                    body["verifiedAt"],
                    bytes(message.message_id),
                    int(message.order),
                    body.get("relyingParty"),
                    body.get("credentialType"),
                ),
            )
        else:
            self._db.execute(
                "UPDATE identity_receipt SET message_id = ?, ledger_order = ?"
                " WHERE receipt_hash = ?",
                (bytes(message.message_id), int(message.order), digest),
            )
        return ApplyOutcome("applied", "verification-receipt")

    def _anchor_status_list(self, message: FinalizedMessage, body: dict[str, Any]) -> ApplyOutcome:
        """Record the digest of an issuer's status list credential (signed by the issuer)."""
        try:
            list_id, issuer, digest = check_status_anchor(
                body, resolver=self._resolver, now=_aware(message.issued_at)
            )
        except VerificationFailed as exc:
            return ApplyOutcome("rejected", "status-list", reason=exc.reason)
        self._db.execute(
            "INSERT INTO identity_status_anchor (message_id, list_id, issuer, digest, ledger_order)"
            " VALUES (?, ?, ?, ?, ?)",
            (bytes(message.message_id), list_id, issuer, digest, int(message.order)),
        )
        return ApplyOutcome("applied", "status-list")

    def latest_status_anchor(self, list_id: str) -> str | None:
        """Digest of the status list credential last anchored for ``list_id``."""
        row = self._db.query_one(
            "SELECT digest FROM identity_status_anchor WHERE list_id = ?"
            " ORDER BY ledger_order DESC LIMIT 1",
            (list_id,),
        )
        return None if row is None else str(row[0])

    # -- reading

    def _document(self, did: str, version: int) -> dict[str, Any]:
        row = self._db.query_one(
            "SELECT document FROM identity_did_version WHERE did = ? AND version = ?",
            (did, version),
        )
        if row is None:
            raise DidNotFound(f"{did} has no version {version}")
        document: dict[str, Any] = json.loads(str(row[0]))
        return document

    def resolve(
        self,
        did: str,
        *,
        version_id: str | None = None,
        version_time: datetime | None = None,
    ) -> Resolution:
        """Resolve the current, a given (``versionId``) or a past (``versionTime``) version."""
        _parse(did)
        head = self._db.query_one(
            "SELECT version, deactivated, created FROM identity_did WHERE did = ?", (did,)
        )
        if head is None:
            raise DidNotFound(f"{did} is not on the ledger", error="notFound")
        latest, deactivated, created = int(head[0]), bool(head[1]), str(head[2])
        if version_id is not None:
            numeric = version_id.isascii() and version_id.isdigit()
            if not numeric or not 1 <= int(version_id) <= latest:
                raise DidNotFound(f"{did} has no version {version_id!r}", error="notFound")
            version = int(version_id)
        elif version_time is not None:
            stamp = _timestamp(version_time)
            row = self._db.query_one(
                "SELECT MAX(version) FROM identity_did_version WHERE did = ? AND valid_from <= ?",
                (did, stamp),
            )
            if row is None or row[0] is None:
                raise DidNotFound(f"{did} did not exist at {stamp}", error="notFound")
            version = int(row[0])
        else:
            version = latest
        row = self._db.query_one(
            "SELECT document, valid_from FROM identity_did_version WHERE did = ? AND version = ?",
            (did, version),
        )
        if row is None:
            raise DidNotFound(f"{did} has no version {version}", error="notFound")
        metadata: dict[str, Any] = {
            "created": _public_time(created),
            "updated": _public_time(str(row[1])),
            "versionId": str(version),
        }
        if version < latest:
            following = self._db.query_one(
                "SELECT valid_from FROM identity_did_version WHERE did = ? AND version = ?",
                (did, version + 1),
            )
            metadata["nextVersionId"] = str(version + 1)
            if following is not None:
                metadata["nextUpdate"] = _public_time(str(following[0]))
        if deactivated and version == latest:
            metadata["deactivated"] = True
        document: dict[str, Any] = json.loads(str(row[0]))
        return Resolution(document=document, document_metadata=metadata)

    def operations(self, did: str) -> list[dict[str, Any]]:
        """Every operation seen for ``did`` (applied or rejected), in ledger order."""
        rows = self._db.query(
            "SELECT operation_hash, outcome, reason, ledger_order FROM identity_did_operation"
            " WHERE did = ? ORDER BY ledger_order",
            (did,),
        )
        return [
            {"operationHash": r[0], "outcome": r[1], "reason": r[2], "order": int(r[3])}
            for r in rows
        ]

    def outcome_of(self, message_id: bytes) -> ApplyOutcome | None:
        """What applying the finalized message ``message_id`` did (None: not seen yet)."""
        row = self._db.query_one(
            "SELECT did, outcome, reason FROM identity_did_operation WHERE message_id = ?",
            (bytes(message_id),),
        )
        if row is None:
            return None
        did, outcome, reason = str(row[0]), str(row[1]), str(row[2])
        if outcome != "applied":
            return ApplyOutcome(outcome, "did-operation", did, reason=reason.split(":", 1)[0])
        version = self._db.query_one(
            "SELECT version FROM identity_did_version WHERE message_id = ?", (bytes(message_id),)
        )
        return ApplyOutcome(outcome, "did-operation", did, int(version[0]) if version else None)

    def current_version(self, did: str) -> str:
        return str(self.resolve(did).document_metadata["versionId"])
