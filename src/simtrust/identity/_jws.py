"""Compact JWS with EdDSA (RFC 7515 §7.1, RFC 8037 §3.1) for VC-JOSE and SD-JWT.

Signing input is built here so the private key can stay inside a
:class:`Signer` (a secure element); verification goes through joserfc. The
header alg is ``EdDSA`` (what deployed verifiers accept); ``Ed25519``
(RFC 9864 fully-specified) is accepted on input too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from simtrust.errors import DecodeError
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode

__all__ = [
    "MAX_TOKEN",
    "DecodedJws",
    "ed25519_jwk",
    "jwk_ed25519",
    "parse_jws",
    "sign_jws",
    "verify_jws",
]

MAX_TOKEN = 256 * 1024
_ALGS = ("EdDSA", "Ed25519")


@dataclass(frozen=True, slots=True)
class DecodedJws:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    token: str


def _json_b64(value: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def sign_jws(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    """``header.payload.signature`` with ``alg`` EdDSA, signed by ``signer``."""
    protected = {"alg": "EdDSA", **header}
    signing_input = f"{_json_b64(protected)}.{_json_b64(payload)}"
    return f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode('ascii')))}"


def _object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (DecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VerificationFailed("malformed", f"JWT {what} is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise VerificationFailed("malformed", f"JWT {what} is not a JSON object")
    return value


def parse_jws(token: object) -> DecodedJws:
    """Split and decode a compact JWS without checking its signature."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise VerificationFailed("malformed", "a JWT is a string of at most 256 KiB")
    parts = token.split(".")
    if len(parts) != 3:
        raise VerificationFailed("malformed", "a compact JWS has three parts")
    header = _object(parts[0], "header")
    payload = _object(parts[1], "payload")
    if header.get("alg") not in _ALGS:
        raise VerificationFailed(
            "unsupported-cryptosuite", f"JWS alg {header.get('alg')!r} is not EdDSA"
        )
    if "crit" in header:
        raise VerificationFailed("malformed", "JWS crit extensions are not supported")
    try:
        signature = b64url_decode(parts[2])
    except DecodeError as exc:
        raise VerificationFailed("malformed", "JWS signature is not base64url") from exc
    return DecodedJws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature, token)


def ed25519_jwk(public: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)}


def jwk_ed25519(jwk: object) -> bytes:
    """Raw key bytes of an OKP Ed25519 public JWK (RFC 8037 §2)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise VerificationFailed("key-binding", "key must be an OKP Ed25519 JWK")
    if "d" in jwk:
        raise VerificationFailed("key-binding", "a confirmation key must not hold private material")
    try:
        raw = b64url_decode(str(jwk.get("x", "")))
    except DecodeError as exc:
        raise VerificationFailed("key-binding", "JWK x is not base64url") from exc
    if len(raw) != 32:
        raise VerificationFailed("key-binding", "Ed25519 JWK x must be 32 bytes")
    return raw


def verify_jws(decoded: DecodedJws, public: bytes) -> None:
    """Check the signature with joserfc; raise ``invalid-signature``."""
    jwk: dict[str, str | list[str]] = dict(ed25519_jwk(public))
    key = OKPKey.import_key(jwk)
    try:
        with warnings.catch_warnings():
            # joserfc flags EdDSA as deprecated by RFC 9864; we still accept it on purpose.
            warnings.simplefilter("ignore")
            jws.deserialize_compact(decoded.token, key, algorithms=list(_ALGS))
    except (JoseError, ValueError) as exc:
        raise VerificationFailed("invalid-signature", "JWS signature does not verify") from exc
