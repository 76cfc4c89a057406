"""Verifiable credentials and presentations (W3C VC Data Model 2.0).

Validates the data model (§4.1 contexts, §4.4 types, §4.7 issuer, §4.8
credentialSubject, §4.9 validity period, §4.10 status), issues and verifies
Data Integrity secured credentials, and builds/verifies presentations with
holder binding, challenge and domain (§4.13, VC-DI §2.2 authentication
proofs). Validity is checked against the ``now`` the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simtrust.identity._contexts import CREDENTIALS_V2, KNOWN_CONTEXTS
from simtrust.identity._dataintegrity import VerifiedProof, add_proof, verify_proofs
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._keys import Signer
from simtrust.identity._resolver import DidResolver
from simtrust.identity._time import parse_datetime

__all__ = [
    "StatusChecker",
    "StatusResult",
    "VerifiedCredential",
    "VerifiedPresentation",
    "check_validity_period",
    "create_presentation",
    "issue_credential",
    "issuer_of",
    "validate_credential",
    "verify_credential",
    "verify_presentation",
]


@dataclass(frozen=True, slots=True)
class StatusResult:
    """What a verifier read from one status list (Bitstring Status List §3.2)."""

    status_purpose: str
    status_list_credential: str
    index: int
    set: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "statusPurpose": self.status_purpose,
            "statusListCredential": self.status_list_credential,
            "statusListIndex": self.index,
            "set": self.set,
        }


class StatusChecker(Protocol):
    """Reads a credential's status entries; raises ``revoked``/``suspended`` when set."""

    def check(self, entry: dict[str, Any], issuer: str, now: datetime) -> StatusResult: ...


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    credential: dict[str, Any]
    issuer: str
    proofs: list[VerifiedProof]
    status: list[StatusResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    presentation: dict[str, Any]
    holder: str | None
    proofs: list[VerifiedProof]
    credentials: list[VerifiedCredential]


def _check_contexts(document: dict[str, Any]) -> None:
    context = document.get("@context")
    if not isinstance(context, list) or not context or context[0] != CREDENTIALS_V2:
        raise VerificationFailed(
            "malformed", f"@context must be a list starting with {CREDENTIALS_V2}"
        )
    for entry in context[1:]:
        if isinstance(entry, str):
            if entry not in KNOWN_CONTEXTS:
                raise VerificationFailed("unknown-context", f"unknown context {entry!r}")
        elif not isinstance(entry, dict):
            raise VerificationFailed("malformed", "@context entries are URLs or objects")


def _types(document: dict[str, Any]) -> list[str]:
    value = document.get("type")
    types = [value] if isinstance(value, str) else value
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise VerificationFailed("malformed", "type must be a string or a list of strings")
    return types


def _no_nulls(document: dict[str, Any]) -> None:
    # JSON-LD drops null values, so under eddsa-rdfc-2022 a property set to null
    # is invisible to the signature; VCDM properties never take null.
    nulls = sorted(k for k, v in document.items() if v is None)
    if nulls:
        raise VerificationFailed("malformed", f"properties may not be null: {nulls}")


def issuer_of(credential: dict[str, Any]) -> str:
    """The issuer URL (§4.7: a URL or an object with an ``id``)."""
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or ":" not in issuer:
        raise VerificationFailed("malformed", "issuer must be a URL or an object with a URL id")
    return issuer


def validate_credential(credential: object) -> dict[str, Any]:
    """Check the VCDM 2.0 shape of ``credential``; return it typed as a JSON object."""
    if not isinstance(credential, dict):
        raise VerificationFailed("malformed", "a credential is a JSON object")
    _check_contexts(credential)
    _no_nulls(credential)
    if "VerifiableCredential" not in _types(credential):
        raise VerificationFailed("malformed", "type must include VerifiableCredential")
    issuer_of(credential)
    subject = credential.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    if not subjects or not all(isinstance(s, dict) and s for s in subjects):
        raise VerificationFailed("malformed", "credentialSubject must be a non-empty object")
    for name in ("validFrom", "validUntil"):
        if name in credential:
            parse_datetime(credential[name], name)
    status = credential.get("credentialStatus")
    if status is not None:
        entries = status if isinstance(status, list) else [status]
        if not all(isinstance(e, dict) and "type" in e for e in entries):
            raise VerificationFailed("malformed", "credentialStatus entries need a type")
    return credential


def check_validity_period(credential: dict[str, Any], now: datetime) -> None:
    """§4.9: refuse before validFrom and after validUntil."""
    if "validFrom" in credential and now < parse_datetime(credential["validFrom"], "validFrom"):
        raise VerificationFailed("not-yet-valid", "the credential is not valid yet")
    if "validUntil" in credential and now > parse_datetime(credential["validUntil"], "validUntil"):
        raise VerificationFailed("expired", "the credential has expired")


def issue_credential(
    credential: dict[str, Any],
    signer: Signer,
    *,
    now: datetime,
    cryptosuite: str = "eddsa-jcs-2022",
) -> dict[str, Any]:
    """Secure ``credential`` with a Data Integrity proof by its issuer's key."""
    validate_credential(credential)
    issuer = issuer_of(credential)
    if issuer != signer.controller:
        raise VerificationFailed(
            "key-not-authorized", f"signer {signer.controller} is not the issuer {issuer}"
        )
    return add_proof(credential, signer, created=now, cryptosuite=cryptosuite)


def verify_credential(
    credential: object,
    *,
    resolver: DidResolver,
    now: datetime,
    status: StatusChecker | None = None,
) -> VerifiedCredential:
    """Verify shape, proofs, issuer binding, validity period and status; raise on failure."""
    document = validate_credential(credential)
    issuer = issuer_of(document)
    proofs = verify_proofs(document, resolver=resolver, now=now, proof_purpose="assertionMethod")
    if not any(p.controller == issuer for p in proofs):
        raise VerificationFailed(
            "key-not-authorized", f"no proof is made by a key of the issuer {issuer}"
        )
    check_validity_period(document, now)
    results: list[StatusResult] = []
    entry_value = document.get("credentialStatus")
    if entry_value is not None:
        entries = entry_value if isinstance(entry_value, list) else [entry_value]
        if status is None:
            raise VerificationFailed(
                "status-unavailable", "the credential has a status entry and no status checker"
            )
        results = [status.check(entry, issuer, now) for entry in entries]
    return VerifiedCredential(credential=document, issuer=issuer, proofs=proofs, status=results)


def create_presentation(
    credentials: list[dict[str, Any]],
    signer: Signer,
    *,
    now: datetime,
    challenge: str | None = None,
    domain: str | None = None,
    cryptosuite: str = "eddsa-jcs-2022",
) -> dict[str, Any]:
    """A presentation by ``signer``'s controller (the holder), with an authentication proof."""
    presentation: dict[str, Any] = {
        "@context": [CREDENTIALS_V2],
        "type": ["VerifiablePresentation"],
        "holder": signer.controller,
        "verifiableCredential": list(credentials),
    }
    return add_proof(
        presentation,
        signer,
        created=now,
        cryptosuite=cryptosuite,
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
    )


def verify_presentation(
    presentation: object,
    *,
    resolver: DidResolver,
    now: datetime,
    challenge: str | None = None,
    domain: str | None = None,
    status: StatusChecker | None = None,
    require_holder_binding: bool = True,
) -> VerifiedPresentation:
    """Verify the holder's proof (challenge, domain), then every enclosed credential.

    Holder binding: the proof must come from a key of ``holder``, and each
    credential whose subject has an ``id`` must name the holder.
    """
    if not isinstance(presentation, dict):
        raise VerificationFailed("malformed", "a presentation is a JSON object")
    _check_contexts(presentation)
    _no_nulls(presentation)
    if "VerifiablePresentation" not in _types(presentation):
        raise VerificationFailed("malformed", "type must include VerifiablePresentation")
    holder = presentation.get("holder")
    if holder is not None and not isinstance(holder, str):
        holder = holder.get("id") if isinstance(holder, dict) else None
        if not isinstance(holder, str):
            raise VerificationFailed("malformed", "holder must be a URL")
    proofs = verify_proofs(
        presentation,
        resolver=resolver,
        now=now,
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
    )
    if require_holder_binding:
        if holder is None:
            raise VerificationFailed("holder-binding", "the presentation names no holder")
        if not any(p.controller == holder for p in proofs):
            raise VerificationFailed("holder-binding", "no proof is made by a key of the holder")
    enclosed = presentation.get("verifiableCredential", [])
    items = enclosed if isinstance(enclosed, list) else [enclosed]
    verified = []
    for item in items:
        result = verify_credential(item, resolver=resolver, now=now, status=status)
        if require_holder_binding:
            subject = result.credential["credentialSubject"]
            subjects = subject if isinstance(subject, list) else [subject]
            ids = {s.get("id") for s in subjects if "id" in s}
            if ids and holder not in ids:
                raise VerificationFailed(
                    "holder-binding", "a credential's subject is not the presentation holder"
                )
        verified.append(result)
    return VerifiedPresentation(
        presentation=presentation, holder=holder, proofs=proofs, credentials=verified
    )
