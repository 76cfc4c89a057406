"""OpenID4VCI 1.0 credential requests: key proofs (Appendix F.1) and what is asked for (§8.2).

A ``jwt`` key proof is an ``openid4vci-proof+jwt`` JWS naming the holder's
key in ``jwk`` or as a ``did:key`` ``kid`` (Ed25519 with EdDSA, P-256 with
ES256), with ``aud`` the credential issuer, ``iat`` within five minutes and
the ``c_nonce``. A request names its credential by ``credential_identifier``
when the token response returned identifiers (§6.2), else by
``credential_configuration_id``, and carries exactly one proof in
``proofs.jwt`` (or the older ``proof``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simtrust.errors import SimtrustError
from simtrust.identity._didkey import did_key, resolve_did_key
from simtrust.identity._ecdsa import (
    decode_p256_multikey,
    p256_compressed,
    p256_multikey,
    p256_point,
)
from simtrust.identity._errors import ProtocolError, VerificationFailed
from simtrust.identity._jws import (
    HOLDER_ALGS,
    ed25519_jwk,
    holder_jwk,
    parse_jws,
    sign_jws,
    signer_jwk,
    verify_jws_jwk,
)
from simtrust.identity._keys import Signer, decode_multikey
from simtrust.identity._multibase import ED25519_PUB, b64url_decode, b64url_encode

__all__ = ["PROOF_TYP", "check_key_proof", "key_proof", "one_proof", "wanted_configuration"]

PROOF_TYP = "openid4vci-proof+jwt"
_PROOF_SKEW = timedelta(minutes=5)


def check_key_proof(proof: str, *, issuer_url: str,
                    now: datetime) -> tuple[dict[str, str], str, object]:  # fmt: skip
    """Appendix F.1 checks; the holder's JWK, its did:key and the proof's nonce."""
    try:
        decoded = parse_jws(proof, HOLDER_ALGS)
    except VerificationFailed as exc:
        raise ProtocolError("invalid_proof", f"key proof: {exc.detail}") from exc
    header, payload = decoded.header, decoded.payload
    if header.get("typ") != PROOF_TYP:
        raise ProtocolError("invalid_proof", f"key proof typ must be {PROOF_TYP}")
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid or "x5c" in header:
        raise ProtocolError("invalid_proof", "a key proof names its key by jwk or by kid")
    try:
        public = holder_jwk(header["jwk"]) if has_jwk else _did_key_jwk(header["kid"])
        verify_jws_jwk(decoded, public)
    except VerificationFailed as exc:
        raise ProtocolError("invalid_proof", f"key proof: {exc.detail}") from exc
    if payload.get("aud") != issuer_url:
        raise ProtocolError("invalid_proof", "key proof aud must be the credential issuer")
    iat = payload.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ProtocolError("invalid_proof", "key proof needs iat")
    if abs(now.timestamp() - iat) > _PROOF_SKEW.total_seconds():
        raise ProtocolError("invalid_proof", "key proof iat is too far from now")
    return public, _jwk_did(public), payload.get("nonce")


def key_proof(signer: Signer, *, issuer_url: str, nonce: str, now: datetime) -> str:
    """A wallet's ``openid4vci-proof+jwt`` for ``signer``'s key (Appendix F.1), e.g. a SIM's."""
    header = {"typ": PROOF_TYP, "jwk": signer_jwk(signer)}
    payload = {"aud": issuer_url, "iat": int(now.timestamp()), "nonce": nonce}
    return sign_jws(header, payload, signer)


def _did_key_jwk(kid: object) -> dict[str, str]:
    """The JWK of a did:key key proof's ``kid`` (Ed25519 ``z6Mk…`` or P-256 ``zDn…``)."""
    if not isinstance(kid, str) or not kid.startswith("did:key:"):
        raise VerificationFailed("key-binding", "a key proof kid must be a did:key URL")
    try:
        document = resolve_did_key(kid.split("#", 1)[0])
    except SimtrustError as exc:
        raise VerificationFailed("key-binding", "the key proof kid is not a valid did:key") from exc
    multikey = document["verificationMethod"][0]["publicKeyMultibase"]
    if multikey.startswith("zDn"):
        x, y = p256_point(decode_p256_multikey(multikey))
        return {"kty": "EC", "crv": "P-256", "x": b64url_encode(x), "y": b64url_encode(y)}
    codec, public = decode_multikey(multikey)
    if codec != ED25519_PUB:
        raise VerificationFailed("key-binding", "a key proof key is Ed25519 or P-256")
    return ed25519_jwk(public)


def _jwk_did(jwk: dict[str, str]) -> str:
    """The did:key of a holder JWK (the subject of W3C credentials issued to it)."""
    if jwk["kty"] == "OKP":
        return did_key(b64url_decode(jwk["x"]))
    return "did:key:" + p256_multikey(p256_compressed(b64url_decode(jwk["x"]),
                                                      b64url_decode(jwk["y"])))  # fmt: skip


def wanted_configuration(request: dict[str, Any], identifier: object) -> object:
    """§8.2: ``credential_identifier`` when the token response returned identifiers
    (§6.2), else ``credential_configuration_id``; never both."""
    if identifier is None:
        if "credential_identifier" in request:
            raise ProtocolError("invalid_credential_request", "no credential_identifiers were"
                                " returned with this token; use credential_configuration_id")
        return request.get("credential_configuration_id")
    if "credential_configuration_id" in request:
        raise ProtocolError("invalid_credential_request", "credential_identifiers were returned"
                            " with this token: send credential_identifier (§8.2)")
    named = request.get("credential_identifier")
    if named != identifier:
        raise ProtocolError("unknown_credential_identifier",
                            "credential_identifier is not one the token response returned")
    return named


def one_proof(request: dict[str, Any]) -> str:
    """The one JWT key proof of a request: ``proofs.jwt`` (§8.2) or the older ``proof``."""
    proofs, proof = request.get("proofs"), request.get("proof")
    if proofs is not None and proof is not None:
        raise ProtocolError("invalid_credential_request", "send proofs or proof, not both")
    if proofs is not None:
        if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
            raise ProtocolError("invalid_proof", "proofs must hold exactly the jwt proof type")
        jwts = proofs["jwt"]
        if not isinstance(jwts, list) or len(jwts) != 1 or not isinstance(jwts[0], str):
            raise ProtocolError("invalid_proof", "this issuer takes exactly one jwt key proof")
        return jwts[0]
    if isinstance(proof, dict) and proof.get("proof_type") == "jwt" and isinstance(
        proof.get("jwt"), str
    ):
        return str(proof["jwt"])
    raise ProtocolError("invalid_proof", "a key proof (proofs.jwt) is required")
