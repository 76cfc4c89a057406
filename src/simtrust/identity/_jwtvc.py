"""``jwt_vc_json`` credentials: VCDM 1.1 as a JWT (OpenID4VCI 1.0 Appendix A.1.1).

The JWT encoding of W3C Verifiable Credentials Data Model 1.1 §6.3.1: a JWS
(``typ`` ``JWT``, ``alg`` EdDSA, ``kid`` a DID URL of the issuer's key)
whose claims are ``iss`` (the issuer DID), ``sub`` (the subject, here the
holder's did:key the key proof proved), ``jti`` (the credential id),
``nbf``/``iat`` (issuance) and optionally ``exp``, and ``vc``: the credential
without the members the registered claims carry (``issuer``, ``id``,
``issuanceDate``, ``expirationDate``, ``credentialSubject.id``), with the VCDM
1.1 context and types. Not JSON-LD processed (the format's point).

:func:`verify_jwt_vc_json` checks the header, resolves ``kid`` through the DID
resolver, requires ``iss`` to be the DID of ``kid``, the signature, the time
claims, and the ``vc`` shape (§6.3.1 rules for ``sub``/``jti``).

Status: the credential is a W3C credential, so its status is the data model's
``credentialStatus`` (VCDM 1.1 §4.9) inside the ``vc`` claim, a Bitstring
Status List entry (v1.0 §2.1) in the issuer's revocation list; a verifier
reads it as for any other credential of the issuer (§3.2). A JWT-level
``status`` claim (IETF Token Status List, draft-ietf-oauth-status-list §6.1)
is read too when present, as a reference to the same list
(docs/decisions/identity-jwt-vc-json-status.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simtrust.identity._credentials import StatusChecker, StatusResult
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._resolver import DidResolver
from simtrust.identity._tokenstatus import reference_entry

__all__ = ["CREDENTIALS_V1", "JWT_VC_JSON", "issue_jwt_vc_json", "verify_jwt_vc_json"]

JWT_VC_JSON = "jwt_vc_json"
CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
_SKEW = timedelta(minutes=5)


def issue_jwt_vc_json(
    *, types: list[str], claims: dict[str, Any], subject: str, credential_id: str,
    signer: Signer, issuer: str, now: datetime, valid_for: timedelta | None = None,
    credential_status: dict[str, Any] | None = None,
) -> str:
    """A ``jwt_vc_json`` credential about ``subject`` signed by ``signer`` (§6.3.1);
    ``credential_status`` (a Bitstring Status List entry) goes into the ``vc`` claim."""
    issued = int(now.timestamp())
    payload: dict[str, Any] = {
        "iss": issuer, "sub": subject, "jti": credential_id, "nbf": issued, "iat": issued,
        "vc": {
            "@context": [CREDENTIALS_V1],
            "type": ["VerifiableCredential", *[t for t in types if t != "VerifiableCredential"]],
            "credentialSubject": dict(claims),
        },
    }  # fmt: skip
    if credential_status is not None:
        payload["vc"]["credentialStatus"] = dict(credential_status)
    if valid_for is not None:
        payload["exp"] = issued + int(valid_for.total_seconds())
    header = {"typ": "JWT", "kid": signer.verification_method}
    return sign_jws(header, payload, signer)


def _number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise VerificationFailed("malformed", f"JWT {name} must be a NumericDate")
    return float(value)


def verify_jwt_vc_json(token: object, *, resolver: DidResolver, now: datetime,
                       status: StatusChecker | None = None) -> dict[str, Any]:
    """Check a ``jwt_vc_json`` credential; return its JWT claims. Raise VerificationFailed.

    A status entry (``vc.credentialStatus`` or a ``status`` claim) is checked with
    ``status``; a credential with one and no checker is ``status-unavailable``.
    """
    decoded = parse_jws(token)
    header, payload = decoded.header, decoded.payload
    if header.get("typ") not in (None, "JWT"):
        raise VerificationFailed("malformed", "a jwt_vc_json credential has typ JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or "#" not in kid:
        raise VerificationFailed("malformed", "kid must be a DID URL of the issuer's key")
    if payload.get("iss") != kid.split("#", 1)[0]:
        raise VerificationFailed("issuer-mismatch", "iss is not the DID of the signing key")
    public = resolver.verification_key(kid, "assertionMethod")
    verify_jws(decoded, public)
    at = now.timestamp()
    nbf, exp = _number(payload, "nbf"), _number(payload, "exp")
    if nbf is not None and nbf > at + _SKEW.total_seconds():
        raise VerificationFailed("not-yet-valid", "the credential is not valid yet (nbf)")
    if exp is not None and exp < at - _SKEW.total_seconds():
        raise VerificationFailed("expired", "the credential has expired (exp)")
    vc = payload.get("vc")
    if not isinstance(vc, dict):
        raise VerificationFailed("malformed", "the vc claim is a JSON object")
    context, types = vc.get("@context"), vc.get("type")
    if not isinstance(context, list) or not context or context[0] != CREDENTIALS_V1:
        raise VerificationFailed("malformed", f"vc @context starts with {CREDENTIALS_V1}")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise VerificationFailed("malformed", "vc type includes VerifiableCredential")
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict):
        raise VerificationFailed("malformed", "vc credentialSubject is a JSON object")
    if "id" in subject and subject["id"] != payload.get("sub"):
        raise VerificationFailed("malformed", "credentialSubject.id differs from sub")
    check_status(payload, str(payload["iss"]), status, now)
    return payload


def check_status(payload: dict[str, Any], issuer: str, status: StatusChecker | None,
                 now: datetime) -> list[StatusResult]:
    """Read every status entry of a ``jwt_vc_json`` (``vc.credentialStatus``, ``status``)."""
    found = payload["vc"].get("credentialStatus")
    entries: list[Any] = [] if found is None else found if isinstance(found, list) else [found]
    if "status" in payload:
        entries.append(reference_entry(payload["status"]))
    if not entries:
        return []
    if status is None:
        raise VerificationFailed("status-unavailable",
                                 "the credential has a status entry and no status checker")
    return [status.check(e, issuer, now) for e in entries]
