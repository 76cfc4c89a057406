"""Selective disclosure JWTs (IETF SD-JWT, draft-ietf-oauth-selective-disclosure-jwt,
and the SD-JWT VC profile draft-ietf-oauth-sd-jwt-vc for ``typ`` and ``vct``).

Written by hand over :mod:`simtrust.identity._jws` (signatures verified with
joserfc): the IETF reference implementation (``sd-jwt`` on PyPI, last released
2024-02) signs with jwcrypto key objects holding the private key, which a
secure element never hands out, and would add a second JOSE library.
Holder keys may be Ed25519 (``EdDSA``) or P-256 (``ES256``).
Covered: disclosures of top-level object properties (§4.2.1), ``_sd`` and
``_sd_alg`` sha-256 (§4.1), decoy digests (§4.2.5), the key binding JWT with
``nonce``, ``aud``, ``iat`` and ``sd_hash`` (§4.3), and the verifier's checks
(§7.1 issuer-signed JWT, §7.3 key binding), including duplicate and
unreferenced disclosures. Interoperability with the reference implementation
is tested both ways (tests/identity/test_sdjwt_interop.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._credentials import StatusChecker, StatusResult
from simtrust.identity._ecdsa import p256_compressed
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import (
    HOLDER_ALGS,
    MAX_TOKEN,
    ed25519_jwk,
    holder_jwk,
    parse_jws,
    sign_jws,
    verify_jws,
    verify_jws_jwk,
)
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode
from simtrust.identity._resolver import DidResolver
from simtrust.identity._tokenstatus import TokenStatusListVerifier, reference_entry

__all__ = [
    "SD_JWT_TYP",
    "VerifiedSdJwt",
    "issue_sd_jwt",
    "present_sd_jwt",
    "sd_digest",
    "verify_sd_jwt",
]

SD_JWT_TYP = "dc+sd-jwt"
_TYPS = ("dc+sd-jwt", "vc+sd-jwt")
_RESERVED = {"_sd", "_sd_alg", "...", "iss", "iat", "exp", "nbf", "cnf", "vct", "status", "sub"}
_SKEW = timedelta(seconds=60)


def sd_digest(disclosure: str) -> str:
    """base64url(SHA-256(ASCII of the disclosure)) (§4.2.3)."""
    return b64url_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def _disclosure(salt: str, name: str, value: Any) -> str:
    return b64url_encode(json.dumps([salt, name, value], ensure_ascii=False).encode("utf-8"))


def issue_sd_jwt(
    claims: dict[str, Any],
    signer: Signer,
    *,
    disclosable: Iterable[str],
    holder_key: bytes | dict[str, Any],
    now: datetime,
    vct: str,
    valid_for: timedelta | None = None,
    decoys: int = 3,
) -> str:
    """Issue ``<issuer JWT>~<disclosure>~...~`` with the named claims selectively disclosable.

    ``holder_key`` (raw Ed25519, or a public JWK: Ed25519 or P-256) goes into
    ``cnf.jwk`` so presentations need key binding.
    """
    hidden = set(disclosable)
    if hidden & _RESERVED or not hidden <= set(claims):
        raise VerificationFailed("malformed", "disclosable claims must be present and not reserved")
    payload: dict[str, Any] = {k: v for k, v in claims.items() if k not in hidden}
    disclosures = [
        _disclosure(b64url_encode(secrets.token_bytes(16)), k, claims[k]) for k in sorted(hidden)
    ]
    digests = [sd_digest(d) for d in disclosures]
    digests += [b64url_encode(secrets.token_bytes(32)) for _ in range(decoys)]
    payload.update(
        {
            "iss": signer.controller,
            "iat": int(now.timestamp()),
            "vct": vct,
            "_sd": sorted(digests),
            "_sd_alg": "sha-256",
            "cnf": {
                "jwk": ed25519_jwk(holder_key)
                if isinstance(holder_key, bytes)
                else holder_jwk(holder_key)
            },
        }
    )
    if valid_for is not None:
        payload["exp"] = int((now + valid_for).timestamp())
    header = {"typ": SD_JWT_TYP, "kid": signer.verification_method}
    return sign_jws(header, payload, signer) + "~" + "".join(d + "~" for d in disclosures)


def _split(sd_jwt: object) -> tuple[str, list[str], str]:
    if not isinstance(sd_jwt, str) or len(sd_jwt) > MAX_TOKEN or "~" not in sd_jwt:
        raise VerificationFailed("malformed", "an SD-JWT is <JWT>~<disclosures>~[<KB-JWT>]")
    parts = sd_jwt.split("~")
    return parts[0], parts[1:-1], parts[-1]


def _decode_disclosure(disclosure: str) -> tuple[str, Any]:
    try:
        value = json.loads(b64url_decode(disclosure).decode("utf-8"))
    except (DecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VerificationFailed("disclosure", "a disclosure is not base64url JSON") from exc
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], str)
        or not isinstance(value[1], str)
    ):
        raise VerificationFailed("disclosure", "an object disclosure is [salt, name, value]")
    if value[1] in ("_sd", "...", "_sd_alg"):
        raise VerificationFailed("disclosure", "a disclosure may not name _sd or ...")
    return value[1], value[2]


def present_sd_jwt(
    sd_jwt: str,
    *,
    disclose: Iterable[str],
    holder: Signer,
    nonce: str,
    audience: str,
    now: datetime,
) -> str:
    """Keep only the disclosures of ``disclose`` and append a key binding JWT (§4.3)."""
    jwt, disclosures, _ = _split(sd_jwt)
    wanted = set(disclose)
    kept = [d for d in disclosures if _decode_disclosure(d)[0] in wanted]
    presented = jwt + "~" + "".join(d + "~" for d in kept)
    sd_hash = b64url_encode(hashlib.sha256(presented.encode("ascii")).digest())
    kb = sign_jws(
        {"typ": "kb+jwt"},
        {"iat": int(now.timestamp()), "aud": audience, "nonce": nonce, "sd_hash": sd_hash},
        holder,
    )
    return presented + kb


@dataclass(frozen=True, slots=True)
class VerifiedSdJwt:
    """Claims after disclosure processing, and what was checked.

    ``holder_key`` is the raw key (32-byte Ed25519 or 33-byte compressed
    P-256); ``holder_jwk`` the same key as the JWK the credential binds.
    """

    issuer: str
    claims: dict[str, Any]
    disclosed: tuple[str, ...]
    holder_key: bytes
    status: tuple[StatusResult, ...]
    holder_jwk: dict[str, str] = field(default_factory=dict)


def verify_sd_jwt(
    presentation: object,
    *,
    resolver: DidResolver,
    now: datetime,
    nonce: str,
    audience: str,
    max_age: timedelta = timedelta(minutes=5),
    status: StatusChecker | None = None,
    token_status: TokenStatusListVerifier | None = None,
) -> VerifiedSdJwt:
    """Verify an SD-JWT presentation with key binding; raise :class:`VerificationFailed`.

    A ``status`` reference is read from its Status List Token with ``token_status``
    (any of 1, 2, 4, 8 bits), or else as the issuer's one-bit Bitstring list.
    """
    jwt, disclosures, kb_jwt = _split(presentation)
    decoded = parse_jws(jwt)
    header, payload = decoded.header, decoded.payload
    if header.get("typ") not in _TYPS:
        raise VerificationFailed("malformed", "SD-JWT typ must be dc+sd-jwt")
    kid, issuer = header.get("kid"), payload.get("iss")
    if not isinstance(kid, str) or not isinstance(issuer, str) or kid.split("#", 1)[0] != issuer:
        raise VerificationFailed("key-not-authorized", "kid must be a key of the iss DID")
    verify_jws(decoded, resolver.verification_key(kid, "assertionMethod"))
    if payload.get("_sd_alg", "sha-256") != "sha-256":
        raise VerificationFailed("malformed", "only _sd_alg sha-256 is supported")
    _check_times(payload, now)
    digests = payload.get("_sd", [])
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise VerificationFailed("malformed", "_sd must be a list of digests")
    claims = {k: v for k, v in payload.items() if k not in ("_sd", "_sd_alg")}
    seen: set[str] = set()
    disclosed = []
    for disclosure in disclosures:
        digest = sd_digest(disclosure) if disclosure.isascii() else ""
        if digest in seen:
            raise VerificationFailed("disclosure", "a disclosure appears twice")
        seen.add(digest)
        if digest not in digests:
            raise VerificationFailed("disclosure", "a disclosure is not referenced by the SD-JWT")
        name, value = _decode_disclosure(disclosure)
        if name in claims:
            raise VerificationFailed("disclosure", f"claim {name!r} is disclosed twice")
        claims[name] = value
        disclosed.append(name)
    cnf = payload.get("cnf")
    holder = holder_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None)
    _check_key_binding(
        jwt=jwt,
        disclosures=disclosures,
        kb_jwt=kb_jwt,
        holder_key=holder,
        now=now,
        nonce=nonce,
        audience=audience,
        max_age=max_age,
    )
    results: list[StatusResult] = []
    entry = payload.get("credentialStatus")
    if entry is not None:
        if status is None:
            raise VerificationFailed("status-unavailable", "no status checker for credentialStatus")
        results.append(status.check(entry, issuer, now))
    reference = payload.get("status")
    if reference is not None:
        # Token Status List (draft-ietf-oauth-status-list §6.1): the issuer's list by index.
        if token_status is not None:
            results.append(token_status.check(reference, issuer, now))
        elif status is None:
            raise VerificationFailed("status-unavailable", "no status checker for status")
        else:
            results.append(status.check(reference_entry(reference), issuer, now))
    return VerifiedSdJwt(
        issuer, claims, tuple(disclosed), _raw(holder), tuple(results), holder
    )


def _raw(jwk: dict[str, str]) -> bytes:
    if jwk["kty"] == "OKP":
        return b64url_decode(jwk["x"])
    return p256_compressed(b64url_decode(jwk["x"]), b64url_decode(jwk["y"]))


def _check_times(payload: dict[str, Any], now: datetime) -> None:
    stamp = now.timestamp()
    for name in ("iat", "exp", "nbf"):
        if name in payload and not isinstance(payload[name], int | float):
            raise VerificationFailed("malformed", f"{name} must be a NumericDate")
    if "exp" in payload and stamp > payload["exp"]:
        raise VerificationFailed("expired", "the SD-JWT has expired")
    if "nbf" in payload and stamp < payload["nbf"]:
        raise VerificationFailed("not-yet-valid", "the SD-JWT is not valid yet")
    if "iat" in payload and payload["iat"] > stamp + _SKEW.total_seconds():
        raise VerificationFailed("not-yet-valid", "the SD-JWT was issued in the future")


def _check_key_binding(
    *,
    jwt: str,
    disclosures: list[str],
    kb_jwt: str,
    holder_key: dict[str, str],
    now: datetime,
    nonce: str,
    audience: str,
    max_age: timedelta,
) -> None:
    if not kb_jwt:
        raise VerificationFailed("key-binding", "the presentation has no key binding JWT")
    decoded = parse_jws(kb_jwt, HOLDER_ALGS)
    if decoded.header.get("typ") != "kb+jwt":
        raise VerificationFailed("key-binding", "key binding JWT typ must be kb+jwt")
    try:
        verify_jws_jwk(decoded, holder_key)
    except VerificationFailed as exc:
        raise VerificationFailed(
            "key-binding", "key binding JWT signature does not verify"
        ) from exc
    claims = decoded.payload
    presented = jwt + "~" + "".join(d + "~" for d in disclosures)
    expected_hash = b64url_encode(hashlib.sha256(presented.encode("ascii", "replace")).digest())
    if claims.get("sd_hash") != expected_hash:
        raise VerificationFailed("key-binding", "sd_hash does not match the presentation")
    if claims.get("nonce") != nonce:
        raise VerificationFailed("challenge", "key binding nonce does not match")
    if claims.get("aud") != audience:
        raise VerificationFailed("domain", "key binding audience does not match")
    iat = claims.get("iat")
    if not isinstance(iat, int | float):
        raise VerificationFailed("key-binding", "key binding JWT needs iat")
    age = now.timestamp() - iat
    if age > max_age.total_seconds() or age < -_SKEW.total_seconds():
        raise VerificationFailed("key-binding", "key binding JWT is too old or from the future")
