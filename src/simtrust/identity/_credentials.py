"""Verifiable credentials and presentations (W3C VC Data Model 2.0).

Validates the data model (§4.1 contexts, §4.4 types, §4.7 issuer, §4.8
credentialSubject, §4.9 validity period, §4.10 status), issues and verifies
Data Integrity secured credentials, and builds/verifies presentations with
holder binding, challenge and domain (§4.13, VC-DI §2.2 authentication
proofs). Validity is checked against the ``now`` the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simtrust.identity._contexts import CREDENTIALS_V2
from simtrust.identity._dataintegrity import VerifiedProof, add_proof, verify_proofs
from simtrust.identity._datamodel import (
    data_model_version,
    validate_credential_model,
    validate_presentation_model,
)
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
    value: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "statusPurpose": self.status_purpose,
            "statusListCredential": self.status_list_credential,
            "statusListIndex": self.index,
            "set": self.set,
        }
        if self.value is not None:
            out["status"] = f"0x{self.value:x}"
        if self.message is not None:
            out["message"] = self.message
        return out


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


def issuer_of(credential: dict[str, Any]) -> str:
    """The issuer URL (§4.7: a URL or an object with an ``id``)."""
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or ":" not in issuer:
        raise VerificationFailed("malformed", "issuer must be a URL or an object with a URL id")
    return issuer


def validate_credential(credential: object, *, secured: bool = False) -> dict[str, Any]:
    """Check every data-model MUST of ``credential`` (VCDM 2.0 or 1.1); return it typed.

    ``secured``: a proof is required (verifiers; §4.12).
    """
    return validate_credential_model(credential, secured=secured)


def check_validity_period(credential: dict[str, Any], now: datetime) -> None:
    """VCDM 2.0 §4.9 (validFrom/validUntil) or 1.1 §4.6-4.7 (issuanceDate/expirationDate)."""
    if data_model_version(credential) == "1.1":
        start_name, end_name = "issuanceDate", "expirationDate"
    else:
        start_name, end_name = "validFrom", "validUntil"
    if start_name in credential and now < _moment(credential[start_name], start_name):
        raise VerificationFailed("not-yet-valid", "the credential is not valid yet")
    if end_name in credential and now > _moment(credential[end_name], end_name):
        raise VerificationFailed("expired", "the credential has expired")


def _moment(value: str, name: str) -> datetime:
    zoned = (
        value if value.endswith("Z") or (value[-6:-5] in "+-" and value[-3] == ":") else value + "Z"
    )
    return parse_datetime(zoned, name)


def issue_credential(
    credential: dict[str, Any],
    signer: Signer,
    *,
    now: datetime,
    cryptosuite: str = "eddsa-jcs-2022",
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """Secure ``credential`` with a Data Integrity proof by its issuer's key.

    ``now`` is the proof's ``created``; ``challenge`` and ``domain`` go into
    the proof options (VC-API issue options).
    """
    validate_credential(credential)
    issuer = issuer_of(credential)
    if issuer != signer.controller:
        raise VerificationFailed(
            "key-not-authorized", f"signer {signer.controller} is not the issuer {issuer}"
        )
    return add_proof(
        credential,
        signer,
        created=now,
        cryptosuite=cryptosuite,
        challenge=challenge,
        domain=domain,
    )


def verify_credential(
    credential: object,
    *,
    resolver: DidResolver,
    now: datetime,
    status: StatusChecker | None = None,
) -> VerifiedCredential:
    """Verify shape, proofs, issuer binding, validity period and status; raise on failure."""
    document = validate_credential(credential, secured=True)
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


def _is_enveloped(item: dict[str, Any]) -> bool:
    types = item.get("type")
    return "EnvelopedVerifiableCredential" in (types if isinstance(types, list) else [types])


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
    require_holder_binding: bool = False,
    envelope: Callable[[str], VerifiedCredential] | None = None,
) -> VerifiedPresentation:
    """Verify the presentation's proof (challenge, domain), then every enclosed credential.

    VCDM 2.0 §4.13 makes ``holder`` optional; holder binding is checked only
    when the verifier asks for it (``require_holder_binding``): then the proof
    must come from a key of ``holder``, and each credential whose subject has
    an ``id`` must name the holder. Enveloped credentials (§4.13.1) are
    verified by ``envelope(data_url)`` (the service reads ``vc+jwt``) and
    refused when no envelope verifier is given.
    """
    validate_presentation_model(presentation, secured=True)
    assert isinstance(presentation, dict)
    holder = presentation.get("holder")
    if isinstance(holder, dict):
        holder = holder.get("id")
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
        if _is_enveloped(item):
            if envelope is None:
                raise VerificationFailed(
                    "unsupported-envelope", "this verifier reads no enveloped credentials"
                )
            result = envelope(str(item["id"]))
        else:
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
