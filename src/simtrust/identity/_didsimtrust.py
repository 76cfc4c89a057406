"""The ``did:simtrust`` method: operations, the ledger-state registry, resolution.

Specified in docs/did-method.md. An operation (create, update, deactivate) is
a JSON object secured by an ``eddsa-jcs-2022`` proof with proofPurpose
``capabilityInvocation``; it travels as the body of a ledger ``identity``
payload (JCS bytes) and changes registry state only when
:meth:`DidRegistry.apply` sees it in a finalized message, in finalized order.
Resolution follows W3C DID Resolution §4 (metadata §7.1: created, updated,
versionId, nextVersionId, deactivated; ``versionId`` / ``versionTime``).
Identifiers, operations and document checks are in :mod:`._didsimtrust_ops`
(exported here too); this module is the registry and the resolver.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from simtrust.errors import DecodeError
from simtrust.identity._dataintegrity import proofs_of, verify_proofs
from simtrust.identity._didsimtrust_ops import (
    IDENTITY_PAYLOAD_TYPE,
    PAYLOAD_KINDS,
    RELATIONSHIPS,
    add_key_patch,
    apply_patches,
    check_document,
    create_operation,
    deactivate_operation,
    decode_identity_payload,
    identity_payload,
    parse_did,
    remove_key_patch,
    simtrust_did,
    update_operation,
)
from simtrust.identity._errors import (
    DidNotFound,
    InvalidDid,
    OperationRejected,
    VerificationFailed,
)
from simtrust.identity._jcs import canonicalize
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
        network, _ = parse_did(did)
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
            check_document(did, document)
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
            new_document = apply_patches(did, document, op["patches"])
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
        parse_did(did)
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
