"""The identity service of one runtime: registry wired to the ledger, issuer, status lists.

The composition root builds one :class:`IdentityService` per process with the
store, keyring, ledger node and clock: the :class:`DidRegistry` is registered
as the ledger's ``identity`` handler, so DID state and receipt anchors change
only from finalized messages; DID operations and receipts are submitted as
``identity`` payloads through that ledger node. The platform issuer is a
did:simtrust DID whose key lives in a software secure element sealed under
the master keyring.

Issuing secures a credential with Data Integrity (the default) or, with the
issue option ``securingMechanism: "vc+jwt"``, as a VC-JOSE ``vc+jwt`` returned
enveloped (VC-JOSE-COSE §3.1.1, VCDM 2.0 §4.13.1). The ECDSA cryptosuites
(``ecdsa-rdfc-2019``, ``ecdsa-jcs-2019``) sign as the platform's did:web with
a P-256 key (``#key-p256`` in its document); the did:simtrust holds only the
Ed25519 key. The issuer's status lists are
:class:`~simtrust.identity._issuer_status.IssuerStatusLists`, the credentials
offered over OpenID4VCI :mod:`._offers`; the service answers their methods.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from simtrust.crypto import Keyring
from simtrust.errors import InvalidInput, Rejected
from simtrust.identity._capability import CapabilityEnforcer, grant_capability
from simtrust.identity._contexts import CREDENTIALS_V2
from simtrust.identity._credentials import (
    VerifiedCredential,
    VerifiedPresentation,
    issue_credential,
    issuer_of,
    validate_credential,
    verify_credential,
    verify_presentation,
)
from simtrust.identity._didkey import DID_CONTEXT, MULTIKEY_CONTEXT, did_key
from simtrust.identity._didsimtrust import (
    IDENTITY_PAYLOAD_TYPE,
    ApplyOutcome,
    DidRegistry,
    FinalizedMessage,
    create_operation,
    identity_payload,
    simtrust_did,
)
from simtrust.identity._dpop import DpopProofs
from simtrust.identity._ecdsa import EcdsaP256Signer, p256_multikey
from simtrust.identity._errors import DidNotFound, VerificationFailed
from simtrust.identity._issuer_status import IssuerStatusLists
from simtrust.identity._jose import (
    VC_JWT_MEDIA_TYPE,
    issue_vc_jwt,
    verify_enveloped_vc_jwt,
    verify_vc_jwt,
)
from simtrust.identity._jws import holder_jwk
from simtrust.identity._jwtvc import issue_jwt_vc_json
from simtrust.identity._keys import Signer, ed25519_multikey
from simtrust.identity._kyc import KycIssuer, ReceiptLedger
from simtrust.identity._offers import (
    DEVICE_CONFIGURATION,
    DEVICE_JWT_CONFIGURATION,
    KYC_CONFIGURATION,
    credential_configurations,
    device_credential,
    issue_refusal,
)
from simtrust.identity._oid4vci import CredentialIssuer, Minted
from simtrust.identity._oid4vp import PresentationVerifier
from simtrust.identity._resolver import DidResolver, Resolution
from simtrust.identity._sdjwt import VerifiedSdJwt, issue_sd_jwt, verify_sd_jwt
from simtrust.identity._secure_element import (
    SecureElementSigner,
    SoftwareSecureElement,
    sealed_p256_key,
)
from simtrust.identity._statuslist import (
    StatusListRegistry,
    StatusListVerifier,
)
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.identity._tokens import IssuerTokens
from simtrust.identity._tokenstatus import TOKEN_STATUS_MESSAGES, TokenStatusListVerifier
from simtrust.ledger import LedgerNode
from simtrust.store import Database

__all__ = ["IdentityService", "LedgerIdentityHandler"]

_ISSUER_ELEMENT = "platform-issuer"
_ISSUER_P256_LABEL = "assertion-p256"
#: VC-API IssueCredentialOptions (plus ``cryptosuite``, which picks the Data Integrity suite).
_ISSUE_OPTIONS = frozenset(
    {"created", "challenge", "domain", "credentialStatus", "mandatoryPointers", "cryptosuite",
     "securingMechanism"}
)
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
    """Identity operations of one process (used by the API, CLI and demo)."""

    def __init__(self, db: Database, keyring: Keyring, node: LedgerNode, *, network: str,
                 clock: Callable[[], datetime], public_url: str) -> None:
        self.db = db
        self.public_url = public_url.rstrip("/")
        self.keyring = keyring
        self.clock = clock
        self.network = network
        self.registry = DidRegistry(db, network=self.network)
        self.resolver: DidResolver = self.registry.resolver
        self.node: LedgerNode = node
        # Replay identity messages finalized while no registry listened (a CLI
        # submit, a peer's messages, a restart) before taking new ones.
        self.node.register_handler(
            IDENTITY_PAYLOAD_TYPE,
            LedgerIdentityHandler(self.registry),
            replay_from=self.registry.applied_through() + 1,
        )
        self.resolver.register("web", _LocalDidWeb(self))
        self.status = StatusListRegistry(db)
        self.status_checker = StatusListVerifier(
            self.status.published, self.resolver, anchored=self.registry.latest_status_anchor
        )
        self.receipts = ReceiptLedger(db, submit=self._submit_raw)
        # Serialises first-use creation of the issuer DID and status lists.
        self._lock = threading.RLock()
        self.status_lists = IssuerStatusLists(
            self.status, network=network, public_url=self.public_url, issuer=self.issuer,
            now=self.now, submit=self._submit_raw, p256=self.p256_issuer)
        self.token_status = TokenStatusListVerifier(self.status_lists.token_for, self.resolver)
        self.status_list = self.status_lists.status_list
        self.status_list_url = self.status_lists.url
        self.set_status = self.status_lists.set_status
        self.update_status = self.status_lists.update_status
        self.published_status_list = self.status_lists.published
        self.oid4vci = CredentialIssuer(
            db, keyring, issuer_url=self.public_url, configurations=credential_configurations(),
            mint=self._mint,
        )  # fmt: skip
        #: Refresh tokens and DPoP binding at the issuer's token and credential endpoints.
        self.oid4vci_tokens = IssuerTokens(db, self.oid4vci, DpopProofs(db, keyring))
        self.capabilities = CapabilityEnforcer(
            audience=self.public_url,
            owner_of=lambda resource: self.issuer().controller,
            verify_credential=self.verify_credential,
            verify_presentation=lambda vp, domain: self.verify_presentation(
                vp, challenge=None, domain=domain, require_holder_binding=True
            ),
            status_epoch=lambda: self.status_lists.epoch,
        )
        self.oid4vp = PresentationVerifier(
            db, keyring, base_url=self.public_url,
            signer=lambda: self.issuer_for(self.web_did()),
            check_sd_jwt=self._check_sd_jwt, check_ldp=self._check_ldp, receipts=self.receipts,
        )  # fmt: skip

    def now(self) -> datetime:
        return self.clock()

    @property
    def status_epoch(self) -> int:
        """Status changes this process made (capability caches key on it)."""
        return self.status_lists.epoch

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
        return SoftwareSecureElement(element_id, db=self.db, keyring=self.keyring)

    def web_did(self) -> str:
        """The platform issuer's did:web, from the public base URL (W3C CCG did:web §3.2)."""
        parts = urlsplit(self.public_url)
        segments = [quote(unquote(p), safe="") for p in parts.path.split("/") if p]
        return ":".join(["did:web", parts.netloc.replace(":", "%3A"), *segments])

    def web_document(self) -> dict[str, Any]:
        """The did:web document simtrust serves at ``/.well-known/did.json``.

        It holds the platform issuer's key (the one its did:simtrust holds)
        and names the other identifiers of that key in ``alsoKnownAs``.
        """
        element = self.element(_ISSUER_ELEMENT)
        if _ISSUER_LABEL not in element.labels():
            raise DidNotFound("the platform issuer has no key yet")
        public = element.public_key(_ISSUER_LABEL)
        did = self.web_did()
        vm = f"{did}#key-1"
        p256 = self.p256_issuer()
        return {
            "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
            "id": did,
            "alsoKnownAs": [simtrust_did(self.network, public, _ISSUER_NONCE), did_key(public)],
            "verificationMethod": [
                {
                    "id": vm,
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": ed25519_multikey(public),
                },
                {
                    "id": p256.verification_method,
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": p256_multikey(p256.public_key),
                },
            ],
            "authentication": [vm],
            "assertionMethod": [vm, p256.verification_method],
        }

    def p256_issuer(self) -> EcdsaP256Signer:
        """The platform's P-256 key as its did:web ``#key-p256`` (for the ECDSA suites)."""
        key = sealed_p256_key(self.db, self.keyring, _ISSUER_ELEMENT, _ISSUER_P256_LABEL)
        return EcdsaP256Signer(key, f"{self.web_did()}#key-p256")

    def _p256_for(self, issuer_id: str) -> EcdsaP256Signer:
        if issuer_id != self.web_did():
            raise InvalidInput(f"the ECDSA cryptosuites sign as {self.web_did()} (its P-256 key"
                               f" #key-p256), not as {issuer_id}", rule="VC-API issuer")
        self.issuer()  # the did:web document also names the platform's Ed25519 key
        return self.p256_issuer()

    def issuer_for(self, issuer_id: str) -> SecureElementSigner:
        """The platform issuer's signer as ``issuer_id``: its did:simtrust, did:web or did:key."""
        signer = self.issuer()
        if issuer_id == signer.controller:
            return signer
        element = self.element(_ISSUER_ELEMENT)
        public = element.public_key(_ISSUER_LABEL)
        if issuer_id == self.web_did():
            return element.signer(_ISSUER_LABEL, f"{issuer_id}#key-1")
        if issuer_id == did_key(public):
            return element.signer(_ISSUER_LABEL, f"{issuer_id}#{ed25519_multikey(public)}")
        raise InvalidInput(
            f"this issuer is {signer.controller} (also {self.web_did()} and {did_key(public)}),"
            f" not {issuer_id}",
            rule="VC-API issuer",
        )

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

    # -- credentials

    def issue(self, credential: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """VC-API issue: check the data model, add requested status entries, sign.

        Nothing is repaired: a credential the data model forbids is refused
        with the rule it breaks. Only an absent ``issuer`` is filled in with
        this issuer (the VC-API issuer instance's own identifier); ``issuer:
        null``, an issuer object without ``id`` or another issuer is refused.
        Status entries the caller supplies must name one of this issuer's
        status lists, with the list's purpose and an unused index in range.
        """
        if not isinstance(credential, dict):
            raise InvalidInput("credential must be a JSON object")
        unknown = sorted(set(options) - _ISSUE_OPTIONS)
        if unknown:
            raise InvalidInput(f"unknown issue options {unknown}", rule="VC-API issue options")
        if "mandatoryPointers" in options:
            raise InvalidInput(
                "mandatoryPointers applies to selective-disclosure cryptosuites, which this"
                " issuer does not offer",
                rule="VC-API issue options",
            )
        securing = options.get("securingMechanism", "data-integrity")
        if securing not in ("data-integrity", "vc+jwt"):
            raise InvalidInput("options.securingMechanism is data-integrity or vc+jwt",
                               rule="VC-JOSE-COSE §3.1.1")  # fmt: skip
        if securing == "vc+jwt" and set(options) & {"cryptosuite", "created", "challenge",
                                                    "domain"}:  # fmt: skip
            raise InvalidInput("cryptosuite, created, challenge and domain are Data Integrity"
                               " proof options; a vc+jwt has none", rule="VC-JOSE-COSE §3.1.1")
        suite = str(options.get("cryptosuite", "eddsa-jcs-2022"))
        ecdsa = suite.startswith("ecdsa-")
        credential = dict(credential)
        if "issuer" not in credential:
            # The issuer instance's identifier: the did:web for the P-256 suites.
            credential["issuer"] = self.web_did() if ecdsa else self.issuer().controller
        try:
            validate_credential(credential)
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc
        signer: Signer = (self._p256_for(issuer_of(credential)) if ecdsa
                          else self.issuer_for(issuer_of(credential)))  # fmt: skip
        wants_status = "credentialStatus" in credential or "credentialStatus" in options
        if wants_status and not ecdsa and signer.controller != self.issuer().controller:
            raise InvalidInput(
                "status lists are published by the platform issuer "
                f"{self.issuer().controller} (EdDSA) and its did:web (ECDSA): issue revocable"
                " credentials as one of them", rule="Bitstring Status List §3.2")  # fmt: skip
        supplied = credential.get("credentialStatus")
        if supplied is not None:
            entries = supplied if isinstance(supplied, list) else [supplied]
            for entry in entries:
                self.status_lists.claim(entry, credential.get("id"), ecdsa=ecdsa)
        status = options.get("credentialStatus")
        if status is not None:
            if not isinstance(status, dict) or status.get("type") != "BitstringStatusListEntry":
                raise InvalidInput("options.credentialStatus.type must be BitstringStatusListEntry")
            purposes = status.get("statusPurpose", "revocation")
            wanted = purposes if isinstance(purposes, list) else [purposes]
            size = status.get("statusSize", 1)
            messages = status.get("statusMessage")
            if type(size) is not int or (messages is not None and not isinstance(messages, list)):
                raise InvalidInput("options.credentialStatus.statusSize is an integer and "
                                   "statusMessage a list")  # fmt: skip
            allocated = [
                self.status.allocate(
                    self.status_list(str(p), size, messages, ecdsa=ecdsa),
                    credential_id=credential.get("id"),
                )
                for p in wanted
            ]
            existing = (
                [] if supplied is None else (supplied if isinstance(supplied, list) else [supplied])
            )
            entries = [*existing, *allocated]
            credential["credentialStatus"] = entries[0] if len(entries) == 1 else entries
        if securing == "vc+jwt":
            try:
                token = issue_vc_jwt(credential, signer)
            except VerificationFailed as exc:
                raise issue_refusal(exc) from exc
            return {"@context": [CREDENTIALS_V2], "id": f"data:{VC_JWT_MEDIA_TYPE},{token}",
                    "type": "EnvelopedVerifiableCredential"}  # fmt: skip
        created = self.now()
        if "created" in options:
            try:
                created = parse_datetime(options["created"], "options.created")
            except VerificationFailed as exc:
                raise issue_refusal(exc) from exc
        texts = {k: options.get(k) for k in ("challenge", "domain")}
        for name, text in texts.items():
            if text is not None and (not isinstance(text, str) or not text):
                raise InvalidInput(f"options.{name} must be a non-empty string")
        try:
            return issue_credential(
                credential,
                signer,
                now=created,
                cryptosuite=suite,
                challenge=texts["challenge"],
                domain=texts["domain"],
            )
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc

    def verify_credential(self, document: object) -> VerifiedCredential:
        """A secured credential: Data Integrity, a ``vc+jwt`` string, or the latter
        enveloped in an ``EnvelopedVerifiableCredential`` (VCDM 2.0 §4.13.1)."""
        if isinstance(document, dict) and "proof" not in document and document.get("type") in (
            "EnvelopedVerifiableCredential", ["EnvelopedVerifiableCredential"]
        ):
            return verify_enveloped_vc_jwt(document, resolver=self.resolver, now=self.now(),
                                           status=self.status_checker)  # fmt: skip
        if isinstance(document, str):
            return verify_vc_jwt(
                document, resolver=self.resolver, now=self.now(), status=self.status_checker
            )
        return verify_credential(
            document, resolver=self.resolver, now=self.now(), status=self.status_checker
        )

    def verify_presentation(
        self,
        document: object,
        *,
        challenge: str | None,
        domain: str | None,
        require_holder_binding: bool = False,
    ) -> VerifiedPresentation:
        """VC-API presentation verify; holder binding only when the verifier asks for it."""
        return verify_presentation(
            document,
            resolver=self.resolver,
            now=self.now(),
            challenge=challenge,
            domain=domain,
            status=self.status_checker,
            require_holder_binding=require_holder_binding,
            envelope=self._enveloped,
        )

    def _enveloped(self, data_url: str) -> VerifiedCredential:
        """An enveloped credential (VCDM 2.0 §4.13.1): a ``data:application/vc+jwt`` URL."""
        media, separator, payload = data_url.partition(",")
        if not separator or media not in ("data:application/vc+jwt", "data:application/vc-ld+jwt"):
            raise VerificationFailed(
                "unsupported-envelope",
                "enveloped credentials are read as data:application/vc+jwt URLs",
            )
        return verify_vc_jwt(
            payload, resolver=self.resolver, now=self.now(), status=self.status_checker
        )

    def issue_sd_jwt_vc(
        self, *, vct: object, claims: object, disclosable: object, holder: object,
        revocable: bool = True,
        status_bits: int = 1,
    ) -> dict[str, Any]:
        """An SD-JWT VC (``dc+sd-jwt``, IETF SD-JWT VC §3) bound to ``holder`` (a public JWK)
        with the named claims selectively disclosable; a revocation entry unless not
        ``revocable`` (``status_bits`` 2: in the two-bit list of VALID, INVALID, SUSPENDED,
        draft-ietf-oauth-status-list §7.1). Refusals name the rule they break."""
        if status_bits not in (1, 2):
            raise InvalidInput("statusBits is 1 (revocation) or 2 (VALID, INVALID, SUSPENDED)",
                               rule="draft-ietf-oauth-status-list §4.1")  # fmt: skip
        rule = "SD-JWT VC §3.2.2"
        if not isinstance(vct, str) or not vct or len(vct) > 300 or any(c.isspace() for c in vct):
            raise InvalidInput("vct is a type identifier (a URI) without spaces", rule=rule)
        if not isinstance(claims, dict) or not claims:
            raise InvalidInput("claims is a non-empty JSON object", rule=rule)
        if not isinstance(disclosable, list) or not all(isinstance(n, str) for n in disclosable):
            raise InvalidInput("disclosable is a list of claim names", rule="SD-JWT §4.2")
        issuer_set = sorted(set(claims) & {"iss", "iat", "exp", "nbf", "cnf", "vct", "status",
                                           "_sd", "_sd_alg", "..."})  # fmt: skip
        if issuer_set:
            raise InvalidInput(f"claims {issuer_set} are set by the issuer, not the caller",
                               rule="SD-JWT VC §3.2.2.2")  # fmt: skip
        hidden = set(disclosable)
        if not hidden <= set(claims) or "sub" in hidden:
            raise InvalidInput("disclosable names claims present in claims (not sub)",
                               rule="SD-JWT §4.2")  # fmt: skip
        try:
            key = holder_jwk(holder)
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc
        body = dict(claims)
        entry: dict[str, Any] | None = None
        if revocable:
            if "credentialStatus" in body:
                raise InvalidInput("credentialStatus is added by the issuer", rule=rule)
            listed = (self.status_list("revocation") if status_bits == 1
                      else self.status_list("message", 2, TOKEN_STATUS_MESSAGES))
            entry = self.status.allocate(listed, credential_id=str(body.get("sub", "")) or None)
            body["status"] = {"status_list": {"idx": int(entry["statusListIndex"]),  # IETF TSL
                                              "uri": str(entry["statusListCredential"])}}
        try:
            token = issue_sd_jwt(body, self.issuer(), disclosable=disclosable, holder_key=key,
                                 now=self.now(), vct=vct)  # fmt: skip
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc
        return {"credential": token, "format": "dc+sd-jwt", "credentialStatus": entry}

    # -- capabilities

    def grant_capability(
        self,
        *,
        grantee: str,
        resource: str,
        actions: list[str],
        valid_until: datetime | None = None,
        delegation_depth: int = 0,
        rate_per_minute: int | None = None,
    ) -> dict[str, Any]:
        """A root capability on a dataset behind simtrust, revocable through the status list."""
        credential_id = f"urn:uuid:{uuid.uuid4()}"
        entry = self.status.allocate(self.status_list("revocation"), credential_id=credential_id)
        try:
            return grant_capability(
                self.issuer(), grantee=grantee, resource=resource, actions=actions,
                now=self.now(), valid_until=valid_until, delegation_depth=delegation_depth,
                rate_per_minute=rate_per_minute, credential_status=entry,
                credential_id=credential_id,
            )  # fmt: skip
        except VerificationFailed as exc:
            raise issue_refusal(exc) from exc

    # -- OpenID4VCI minting and OpenID4VP checks

    def _mint(
        self,
        configuration_id: str,
        claims: dict[str, Any],
        holder_key: dict[str, str],
        holder_did: str,
    ) -> Minted:
        """Sign what an OpenID4VCI offer promised, bound to the key the wallet proved."""
        if configuration_id == KYC_CONFIGURATION:
            attributes = {k: v for k, v in claims.items() if k != "kyc_level"}
            kyc = KycIssuer(self.issuer(), self.status, self.status_list("revocation"))
            token, _ = kyc.issue(
                subject=holder_did, holder_key=holder_key, attributes=attributes,
                level=str(claims["kyc_level"]), now=self.now(),
            )  # fmt: skip
            return Minted(token, holder_did)
        credential_id = f"urn:uuid:{uuid.uuid4()}"
        if configuration_id == DEVICE_JWT_CONFIGURATION:
            issuer = self.issuer()
            entry = self.status.allocate(self.status_list("revocation"),
                                         credential_id=credential_id)
            token = issue_jwt_vc_json(
                types=[DEVICE_CONFIGURATION], claims=claims, subject=holder_did,
                credential_id=credential_id, signer=issuer, issuer=issuer.controller,
                now=self.now(), credential_status=entry,
            )  # fmt: skip
            return Minted(token, credential_id)
        credential = device_credential(claims, holder_did, credential_id)
        credential["issuer"] = self.issuer().controller
        credential["validFrom"] = format_datetime(self.now())
        issued = self.issue(credential, {"credentialStatus": {"type": "BitstringStatusListEntry"}})
        return Minted(issued, credential_id)

    def _check_sd_jwt(self, presentation: str, nonce: str, audience: str) -> VerifiedSdJwt:
        return verify_sd_jwt(
            presentation, resolver=self.resolver, now=self.now(), nonce=nonce,
            audience=audience, status=self.status_checker, token_status=self.token_status,
        )  # fmt: skip

    def _check_ldp(
        self, presentation: dict[str, Any], challenge: str, domain: str
    ) -> VerifiedPresentation:
        return self.verify_presentation(
            presentation, challenge=challenge, domain=domain, require_holder_binding=True
        )



class _LocalDidWeb:
    """did:web resolution for this deployment's own did:web (never fetched over the network).

    A did:web of another host is ``notFound`` here: simtrust does not make
    outbound HTTPS requests while verifying (docs/decisions/identity-did-web.md).
    """

    __slots__ = ("_service",)

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    def resolve(
        self,
        did: str,
        *,
        version_id: str | None = None,
        version_time: datetime | None = None,
    ) -> Resolution:
        if did != self._service.web_did():
            raise DidNotFound(f"{did} is not served by this simtrust (did:web is not fetched)")
        if version_id is not None or version_time is not None:
            raise DidNotFound("did:web has no version history")
        return Resolution(document=self._service.web_document())
