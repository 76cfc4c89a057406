"""The identity service of one runtime: registry wired to the ledger, issuer, status lists.

:func:`identity_service` builds it once per :class:`~simtrust.runtime.Runtime`
(``rt.extension("identity", ...)``): the :class:`DidRegistry` is registered
as the ledger's ``identity`` handler, so DID state and receipt anchors change
only from finalized messages; DID operations and receipts are submitted as
``identity`` payloads through the runtime's ledger node. The platform issuer
is a did:simtrust DID whose key lives in a software secure element sealed
under the runtime keyring.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simtrust.errors import InvalidInput, NotFound, Rejected
from simtrust.identity._credentials import (
    VerifiedCredential,
    VerifiedPresentation,
    issue_credential,
    verify_credential,
    verify_presentation,
)
from simtrust.identity._didsimtrust import (
    IDENTITY_PAYLOAD_TYPE,
    ApplyOutcome,
    DidRegistry,
    FinalizedMessage,
    create_operation,
    identity_payload,
    simtrust_did,
)
from simtrust.identity._errors import DidNotFound, VerificationFailed
from simtrust.identity._jose import verify_vc_jwt
from simtrust.identity._kyc import ReceiptLedger
from simtrust.identity._resolver import DidResolver, Resolution
from simtrust.identity._secure_element import SecureElementSigner, SoftwareSecureElement
from simtrust.identity._statusanchor import status_list_anchor
from simtrust.identity._statuslist import STATUS_PURPOSES, StatusListRegistry, StatusListVerifier

if TYPE_CHECKING:
    from simtrust.ledger import LedgerNode
    from simtrust.runtime import Runtime

__all__ = ["IdentityService", "LedgerIdentityHandler", "identity_service"]

_ISSUER_ELEMENT = "platform-issuer"
_ISSUER_LABEL = "assertion-1"
_ISSUER_NONCE = "platform-issuer"


class LedgerIdentityHandler:
    """The ledger's ``identity`` handler: apply to the registry; void refused operations.

    A refused operation is recorded by the registry first, then raised as
    :class:`Rejected` so the ledger marks the message void with the reason.
    """

    __slots__ = ("_registry",)

    def __init__(self, registry: DidRegistry) -> None:
        self._registry = registry

    def apply(self, fm: FinalizedMessage) -> None:
        outcome = self._registry.apply(fm)
        if outcome.outcome == "rejected":
            raise Rejected(
                outcome.reason or "identity", f"identity payload refused: {outcome.reason}"
            )


class IdentityService:
    """Identity operations of one runtime (used by the API, CLI and demo)."""

    def __init__(self, rt: Runtime) -> None:
        from simtrust.ledger import ledger_node

        self.rt = rt
        self.network = rt.settings.network_id
        self.registry = DidRegistry(rt.db, network=self.network)
        self.resolver: DidResolver = self.registry.resolver
        self.node: LedgerNode = ledger_node(rt)
        # Replay identity messages finalized while no registry listened (a CLI
        # submit, a peer's messages, a restart) before taking new ones.
        self.node.register_handler(
            IDENTITY_PAYLOAD_TYPE,
            LedgerIdentityHandler(self.registry),
            replay_from=self.registry.applied_through() + 1,
        )
        self.status = StatusListRegistry(rt.db)
        self.status_checker = StatusListVerifier(
            self.status.published, self.resolver, anchored=self.registry.latest_status_anchor
        )
        self.receipts = ReceiptLedger(rt.db, submit=self._submit_raw)
        # Serialises first-use creation of the issuer DID and status lists.
        self._lock = threading.RLock()

    def now(self) -> datetime:
        return self.rt.clock()

    # -- ledger

    def _submit_raw(self, payload_type: str, payload: bytes) -> bytes:
        result = self.node.issue(payload_type, payload)
        if result.status == "rejected" or result.message_id is None:
            raise Rejected(result.reason or "ledger", result.detail or "ledger refused the payload")
        return bytes(result.message_id)

    def submit_operation(self, operation: dict[str, Any]) -> ApplyOutcome:
        """Submit a signed DID operation; report what the registry did once it was finalized."""
        payload = identity_payload("did-operation", operation)
        message_id = self._submit_raw(IDENTITY_PAYLOAD_TYPE, payload)
        outcome = self.registry.outcome_of(message_id)
        if outcome is None:
            return ApplyOutcome("pending", "did-operation", str(operation.get("did")))
        return outcome

    def resolve(
        self,
        did: str,
        *,
        version_id: str | None = None,
        version_time: datetime | None = None,
    ) -> Resolution:
        return self.resolver.resolve(did, version_id=version_id, version_time=version_time)

    # -- secure elements and the platform issuer

    def element(self, element_id: str) -> SoftwareSecureElement:
        """A software secure element whose keys are sealed under the runtime keyring."""
        return SoftwareSecureElement(element_id, db=self.rt.db, keyring=self.rt.keyring)

    def issuer(self) -> SecureElementSigner:
        """The platform issuer (did:simtrust, created on the ledger on first use)."""
        with self._lock:
            return self._issuer()

    def _issuer(self) -> SecureElementSigner:
        element = self.element(_ISSUER_ELEMENT)
        if _ISSUER_LABEL not in element.labels():
            element.generate_key(_ISSUER_LABEL)
        did = simtrust_did(self.network, element.public_key(_ISSUER_LABEL), _ISSUER_NONCE)
        signer = element.signer(_ISSUER_LABEL, f"{did}#key-1")
        try:
            self.registry.resolve(did)
        except DidNotFound:
            operation = create_operation(
                signer, network=self.network, nonce=_ISSUER_NONCE, now=self.now()
            )
            outcome = self.submit_operation(operation)
            if outcome.outcome != "applied":
                raise Rejected(
                    outcome.reason or "identity", "the platform issuer DID was not created"
                ) from None
        return signer

    def status_list(self, purpose: str) -> str:
        """The issuer's current status list of ``purpose`` (created on first use)."""
        if purpose not in STATUS_PURPOSES:
            raise InvalidInput(f"statusPurpose must be one of {STATUS_PURPOSES}")
        signer = self.issuer()
        list_id = f"urn:simtrust:status:{self.network}:{purpose}:1"
        with self._lock:
            if (list_id, purpose) in self.status.lists(signer.controller):
                return list_id
            published = self.status.create(
                list_id, issuer=signer.controller, purpose=purpose, signer=signer, now=self.now()
            )
            self._anchor_status_list(published, signer)
        return list_id

    def _anchor_status_list(self, published: dict[str, Any], signer: SecureElementSigner) -> None:
        body = status_list_anchor(published, signer, self.now())
        self._submit_raw(IDENTITY_PAYLOAD_TYPE, identity_payload("status-list", body))

    # -- credentials

    def issue(self, credential: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """VC-API issue: set the issuer, add requested status entries, sign."""
        if not isinstance(credential, dict):
            raise InvalidInput("credential must be a JSON object")
        signer = self.issuer()
        credential = dict(credential)
        issuer = credential.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
        if issuer_id is None:
            credential["issuer"] = signer.controller
        elif issuer_id != signer.controller:
            raise InvalidInput(f"this issuer is {signer.controller}, not {issuer_id}")
        status = options.get("credentialStatus")
        if status is not None:
            if not isinstance(status, dict) or status.get("type") != "BitstringStatusListEntry":
                raise InvalidInput("options.credentialStatus.type must be BitstringStatusListEntry")
            purposes = status.get("statusPurpose", "revocation")
            wanted = purposes if isinstance(purposes, list) else [purposes]
            entries = [
                self.status.allocate(self.status_list(str(p)), credential_id=credential.get("id"))
                for p in wanted
            ]
            credential["credentialStatus"] = entries[0] if len(entries) == 1 else entries
        suite = str(options.get("cryptosuite", "eddsa-jcs-2022"))
        try:
            return issue_credential(credential, signer, now=self.now(), cryptosuite=suite)
        except VerificationFailed as exc:
            raise InvalidInput(f"cannot issue: {exc.detail}", reason=exc.reason) from exc

    def set_status(self, entry: dict[str, Any], value: bool) -> dict[str, Any]:
        """Set (revoke/suspend) or clear the status bit an entry points at; republish."""
        url, index = entry.get("statusListCredential"), entry.get("statusListIndex")
        if (not isinstance(url, str) or not isinstance(index, str)
                or not (index.isascii() and index.isdigit())):
            raise InvalidInput("a status entry has statusListCredential and statusListIndex")
        signer = self.issuer()
        published = self.status.set_status(url, int(index), value, signer=signer, now=self.now())
        self._anchor_status_list(published, signer)
        return published

    def update_status(self, credential_id: str, purpose: str, value: bool) -> dict[str, Any]:
        """Set or clear ``credential_id``'s bit in its ``purpose`` list (VC-API status update)."""
        for list_id, index, list_purpose in self.status.entries_for(credential_id):
            if list_purpose == purpose:
                return self.set_status(
                    {"statusListCredential": list_id, "statusListIndex": str(index)}, value
                )
        raise NotFound(f"credential {credential_id} has no {purpose} status entry")

    def verify_credential(self, document: object) -> VerifiedCredential:
        if isinstance(document, str):
            return verify_vc_jwt(
                document, resolver=self.resolver, now=self.now(), status=self.status_checker
            )
        return verify_credential(
            document, resolver=self.resolver, now=self.now(), status=self.status_checker
        )

    def verify_presentation(
        self, document: object, *, challenge: str | None, domain: str | None
    ) -> VerifiedPresentation:
        return verify_presentation(
            document,
            resolver=self.resolver,
            now=self.now(),
            challenge=challenge,
            domain=domain,
            status=self.status_checker,
        )

    def published_status_list(self, list_id: str) -> dict[str, Any]:
        return self.status.published(list_id)


def identity_service(rt: Runtime) -> IdentityService:
    """The runtime's identity service (one per runtime)."""
    return rt.extension("identity", lambda: IdentityService(rt))
