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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._resolver import DidResolver

__all__ = ["CREDENTIALS_V1", "JWT_VC_JSON", "issue_jwt_vc_json", "verify_jwt_vc_json"]

JWT_VC_JSON = "jwt_vc_json"
CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
_SKEW = timedelta(minutes=5)


def issue_jwt_vc_json(
    *, types: list[str], claims: dict[str, Any], subject: str, credential_id: str,
    signer: Signer, issuer: str, now: datetime, valid_for: timedelta | None = None,
) -> str:
    """A ``jwt_vc_json`` credential about ``subject`` signed by ``signer`` (§6.3.1)."""
    issued = int(now.timestamp())
    payload: dict[str, Any] = {
        "iss": issuer, "sub": subject, "jti": credential_id, "nbf": issued, "iat": issued,
        "vc": {
            "@context": [CREDENTIALS_V1],
            "type": ["VerifiableCredential", *[t for t in types if t != "VerifiableCredential"]],
            "credentialSubject": dict(claims),
        },
    }  # fmt: skip
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


def verify_jwt_vc_json(token: object, *, resolver: DidResolver, now: datetime) -> dict[str, Any]:
    """Check a ``jwt_vc_json`` credential; return its JWT claims. Raise VerificationFailed."""
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
    return payload
