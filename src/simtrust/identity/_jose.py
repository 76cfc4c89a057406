"""Verifiable credentials secured with JOSE (W3C VC-JOSE-COSE, §3.1.1).

The JWS payload is the unsecured credential itself; the protected header
carries ``typ`` ``vc+jwt`` (media type ``application/vc+jwt``), ``cty`` ``vc``
and ``kid``, a DID URL of the issuer's assertion key (§3.3 key discovery).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simtrust.identity._credentials import (
    StatusChecker,
    StatusResult,
    VerifiedCredential,
    check_validity_period,
    issuer_of,
    validate_credential,
)
from simtrust.identity._dataintegrity import VerifiedProof
from simtrust.identity._datamodel import validate_enveloped
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._resolver import DidResolver

__all__ = ["VC_JWT_MEDIA_TYPE", "issue_vc_jwt", "verify_enveloped_vc_jwt", "verify_vc_jwt"]

VC_JWT_MEDIA_TYPE = "application/vc+jwt"


def issue_vc_jwt(credential: dict[str, Any], signer: Signer) -> str:
    """Sign ``credential`` (no ``proof``) as a ``vc+jwt`` by its issuer's key."""
    validate_credential(credential)
    if "proof" in credential:
        raise VerificationFailed("malformed", "a vc+jwt secures an unsecured credential")
    if issuer_of(credential) != signer.controller:
        raise VerificationFailed("key-not-authorized", "signer is not the credential issuer")
    header = {"kid": signer.verification_method, "typ": "vc+jwt", "cty": "vc"}
    return sign_jws(header, credential, signer)


def verify_vc_jwt(
    token: object,
    *,
    resolver: DidResolver,
    now: datetime,
    status: StatusChecker | None = None,
) -> VerifiedCredential:
    """Verify a ``vc+jwt``: header, issuer key, signature, data model, validity, status."""
    decoded = parse_jws(token)
    if decoded.header.get("typ") != "vc+jwt":
        raise VerificationFailed("malformed", "JWS typ must be vc+jwt")
    kid = decoded.header.get("kid")
    if not isinstance(kid, str) or "#" not in kid:
        raise VerificationFailed("malformed", "kid must be a DID URL")
    credential = validate_credential(decoded.payload)
    issuer = issuer_of(credential)
    if kid.split("#", 1)[0] != issuer:
        raise VerificationFailed("key-not-authorized", "kid is not a key of the issuer")
    verify_jws(decoded, resolver.verification_key(kid, "assertionMethod"))
    check_validity_period(credential, now)
    results: list[StatusResult] = []
    entry = credential.get("credentialStatus")
    if entry is not None:
        if status is None:
            raise VerificationFailed("status-unavailable", "no status checker for credentialStatus")
        entries = entry if isinstance(entry, list) else [entry]
        results = [status.check(e, issuer, now) for e in entries]
    proof = VerifiedProof(kid, issuer, "vc+jwt", "assertionMethod", None)
    return VerifiedCredential(credential=credential, issuer=issuer, proofs=[proof], status=results)


def verify_enveloped_vc_jwt(
    item: object,
    *,
    resolver: DidResolver,
    now: datetime,
    status: StatusChecker | None = None,
) -> VerifiedCredential:
    """An ``EnvelopedVerifiableCredential`` (VCDM 2.0 §4.13.1) whose ``data:`` URL holds a
    ``vc+jwt`` (VC-JOSE-COSE §3.1.1): the envelope's shape, then the JWT."""
    media, separator, token = validate_enveloped(item).partition(",")
    if not separator or media not in (f"data:{VC_JWT_MEDIA_TYPE}", "data:application/vc-ld+jwt"):
        raise VerificationFailed(
            "unsupported-envelope", "enveloped credentials are read as data:application/vc+jwt URLs"
        )
    return verify_vc_jwt(token, resolver=resolver, now=now, status=status)
