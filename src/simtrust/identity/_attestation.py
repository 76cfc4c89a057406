"""Wallet attestation: OAuth 2.0 Attestation-Based Client Authentication
(draft-ietf-oauth-attestation-based-client-auth, as HAIP 1.0 §4.3 uses it).

A wallet sends two headers: ``OAuth-Client-Attestation``, a JWT its wallet
provider signed (``typ`` ``oauth-client-attestation+jwt``, ``iss`` the
provider, ``sub`` the ``client_id``, ``exp``, the wallet instance key in
``cnf.jwk``; §5.1), and ``OAuth-Client-Attestation-PoP``, a JWT that key
signed (``typ`` ``oauth-client-attestation-pop+jwt``, ``iss`` the
``client_id``, ``aud`` this authorization server's issuer, ``jti``, ``iat``;
§5.2). Checked here: both types and signatures (ES256 or EdDSA), the
provider among the trusted ones, ``sub`` = ``iss`` of the PoP = the request's
``client_id``, ``exp``, ``aud``, ``iat`` within five minutes and ``jti``
single use (stored as DPoP ``jti`` are). Failures are ``invalid_client``
(401, §6). When the server asks for it, the PoP also carries a ``challenge``
the server handed out (§8, the challenge endpoint, or the OpenID4VCI nonce
endpoint's ``c_nonce``: one store, single use, short-lived); a missing, unknown,
used or expired one is ``use_attestation_challenge`` (400), answered with a
fresh challenge in the ``OAuth-Client-Attestation-Challenge`` header. The
attested key also verifies a signed request object pushed to PAR (RFC 9126 §3
with RFC 9101), :func:`open_pushed_request`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from simtrust.identity._dpop import DPOP_ALGS
from simtrust.identity._errors import ProtocolError, VerificationFailed
from simtrust.identity._jws import DecodedJws, holder_jwk, parse_jws, verify_jws_jwk

__all__ = [
    "ATTESTATION_CHALLENGE_HEADER",
    "ATTESTATION_HEADER",
    "ATTESTATION_POP_HEADER",
    "check_client_attestation",
    "open_pushed_request",
]

ATTESTATION_HEADER = "OAuth-Client-Attestation"
ATTESTATION_POP_HEADER = "OAuth-Client-Attestation-PoP"
ATTESTATION_CHALLENGE_HEADER = "OAuth-Client-Attestation-Challenge"
_SKEW = timedelta(minutes=5)
_MAX = 16384


def _refuse(detail: str) -> ProtocolError:
    return ProtocolError("invalid_client", f"wallet attestation: {detail}", http_status=401)


def _signed(token: object, typ: str, key: object) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > _MAX:
        raise _refuse(f"the {typ} is missing or too large")
    try:
        decoded: DecodedJws = parse_jws(token, DPOP_ALGS)
        if decoded.header.get("typ") != typ:
            raise VerificationFailed("malformed", f"typ must be {typ}")
        verify_jws_jwk(decoded, holder_jwk(key))
    except VerificationFailed as exc:
        raise _refuse(f"{typ}: {exc.detail}") from exc
    return decoded.payload


def _number(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _refuse(f"{name} is required")
    return float(value)


def check_client_attestation(
    attestation: str | None, pop: str | None, *, client_id: str, audience: str,
    providers: Mapping[str, dict[str, Any]], now: datetime,
    spend_jti: Callable[[str, str, datetime], None],
    take_challenge: Callable[[str, datetime], None] | None = None,
) -> tuple[str, dict[str, str]]:
    """Check a wallet's attestation and its proof of possession; return the ``client_id``
    and the attested wallet key (which also signs the wallet's request objects).

    ``providers``: trusted wallet provider (``iss``) → its public JWK. An empty
    ``client_id`` takes the attested one (``sub``). ``spend_jti(jti, key id, now)``
    raises if the PoP's ``jti`` was seen. ``take_challenge(value, now)``, when given,
    spends the PoP's ``challenge`` (raises ProtocolError if unknown, used or expired).
    """
    if not attestation or not pop:
        raise _refuse(f"{ATTESTATION_HEADER} and {ATTESTATION_POP_HEADER} are required")
    try:
        unverified = parse_jws(attestation, DPOP_ALGS).payload
    except VerificationFailed as exc:
        raise _refuse(exc.detail) from exc
    provider = unverified.get("iss")
    if not isinstance(provider, str) or provider not in providers:
        raise _refuse("the wallet provider is not trusted")
    claims = _signed(attestation, "oauth-client-attestation+jwt", providers[provider])
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or (client_id and subject != client_id):
        raise _refuse("the attestation's sub is not the client_id")
    if _number(claims, "exp") < now.timestamp():
        raise _refuse("the attestation has expired")
    cnf = claims.get("cnf")
    key = cnf.get("jwk") if isinstance(cnf, dict) else None
    proof = _signed(pop, "oauth-client-attestation-pop+jwt", key)
    if proof.get("iss") != subject:
        raise _refuse("the PoP's iss is not the attested client_id")
    aud = proof.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise _refuse("the PoP's aud is not this authorization server")
    if abs(_number(proof, "iat") - now.timestamp()) > _SKEW.total_seconds():
        raise _refuse("the PoP's iat is too far from now")
    jti = proof.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _refuse("the PoP needs a jti")
    if take_challenge is not None:
        challenge = proof.get("challenge")
        if not isinstance(challenge, str) or not challenge or len(challenge) > 256:
            raise ProtocolError("use_attestation_challenge", "the attestation PoP needs the"
                                " challenge this server handed out", http_status=400)
        try:
            take_challenge(challenge, now)
        except ProtocolError as exc:
            raise ProtocolError("use_attestation_challenge", "the attestation PoP's challenge"
                                " is unknown, used or expired", http_status=400) from exc
    try:
        spend_jti(jti, f"attestation:{subject}", now)
    except ProtocolError as exc:
        raise _refuse("the PoP was already used (jti)") from exc
    return subject, holder_jwk(key)


def open_pushed_request(request: object, *, key: dict[str, str], client_id: str,
                        audience: str, now: datetime) -> dict[str, str]:  # fmt: skip
    """The parameters of a signed request object pushed to PAR (RFC 9126 §3, RFC 9101 §4,
    §6.3): signed by the attested wallet key, ``iss`` = ``client_id``, ``aud`` this server,
    not expired; the pushed form is these parameters alone."""
    if not isinstance(request, str) or len(request) > _MAX:
        raise ProtocolError("invalid_request_object", "request is a compact JWS")
    try:
        decoded = parse_jws(request, DPOP_ALGS)
        verify_jws_jwk(decoded, key)
    except VerificationFailed as exc:
        raise ProtocolError("invalid_request_object", f"request: {exc.detail}") from exc
    claims = decoded.payload
    if claims.get("iss") != client_id or claims.get("client_id", client_id) != client_id:
        raise ProtocolError("invalid_request_object", "iss and client_id are the client's")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise ProtocolError("invalid_request_object", "aud must be this authorization server")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp < now.timestamp():
        raise ProtocolError("invalid_request_object", "the request object needs a future exp")
    if "request" in claims or "request_uri" in claims:
        raise ProtocolError("invalid_request_object", "a request object holds no request")
    params = {name: value if isinstance(value, str) else json.dumps(value)
              for name, value in claims.items()
              if name not in ("iss", "aud", "exp", "iat", "nbf", "jti")}  # fmt: skip
    params["client_id"] = client_id
    return params
