"""Compact JWS with EdDSA (RFC 7515 §7.1, RFC 8037 §3.1) for VC-JOSE and SD-JWT.

Holders (wallet keys in ``cnf.jwk``, key binding JWTs, OpenID4VCI key proofs)
may also use ES256 (RFC 7518 §3.4, P-256), which wallets following the HAIP
profile require; :func:`holder_jwk` and :func:`verify_jws_jwk` handle both.

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
from joserfc.jwk import ECKey, OKPKey

from simtrust.errors import DecodeError
from simtrust.identity._ecdsa import EcdsaP256Signer, p256_point
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode

__all__ = [
    "HOLDER_ALGS",
    "MAX_TOKEN",
    "DecodedJws",
    "ed25519_jwk",
    "holder_jwk",
    "jwk_ed25519",
    "parse_jws",
    "sign_jws",
    "signer_jwk",
    "verify_jws",
    "verify_jws_jwk",
]

MAX_TOKEN = 256 * 1024
_ALGS = ("EdDSA", "Ed25519")
#: What a holder may sign with: EdDSA, or ES256 (HAIP wallets).
HOLDER_ALGS = ("EdDSA", "Ed25519", "ES256")


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
    alg = "ES256" if isinstance(signer, EcdsaP256Signer) else "EdDSA"
    protected = {"alg": alg, **header}
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


def parse_jws(token: object, algs: tuple[str, ...] = _ALGS) -> DecodedJws:
    """Split and decode a compact JWS without checking its signature; ``alg`` in ``algs``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise VerificationFailed("malformed", "a JWT is a string of at most 256 KiB")
    parts = token.split(".")
    if len(parts) != 3:
        raise VerificationFailed("malformed", "a compact JWS has three parts")
    header = _object(parts[0], "header")
    payload = _object(parts[1], "payload")
    if header.get("alg") not in algs:
        raise VerificationFailed(
            "unsupported-cryptosuite", f"JWS alg {header.get('alg')!r} is not one of {algs}"
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


def signer_jwk(signer: Signer) -> dict[str, str]:
    """The public JWK of a holder's signer (OKP Ed25519 or EC P-256)."""
    if isinstance(signer, EcdsaP256Signer):
        x, y = p256_point(signer.public_key)
        return {"kty": "EC", "crv": "P-256", "x": b64url_encode(x), "y": b64url_encode(y)}
    return ed25519_jwk(signer.public_key)


def _coordinate(jwk: dict[str, Any], name: str) -> bytes:
    try:
        raw = b64url_decode(str(jwk.get(name, "")))
    except DecodeError as exc:
        raise VerificationFailed("key-binding", f"JWK {name} is not base64url") from exc
    return raw


def holder_jwk(jwk: object) -> dict[str, str]:
    """A holder's public key as a checked, minimal JWK: OKP Ed25519 or EC P-256 (RFC 7518 §6.2)."""
    if isinstance(jwk, dict) and jwk.get("kty") == "OKP":
        return ed25519_jwk(jwk_ed25519(jwk))
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise VerificationFailed("key-binding", "a holder key is an Ed25519 or P-256 public JWK")
    if "d" in jwk:
        raise VerificationFailed("key-binding", "a confirmation key must not hold private material")
    x, y = _coordinate(jwk, "x"), _coordinate(jwk, "y")
    if len(x) != 32 or len(y) != 32:
        raise VerificationFailed("key-binding", "P-256 JWK x and y are 32 bytes each")
    out = {"kty": "EC", "crv": "P-256", "x": b64url_encode(x), "y": b64url_encode(y)}
    try:
        ECKey.import_key(dict(out))
    except (JoseError, ValueError) as exc:
        raise VerificationFailed("key-binding", "the JWK is not a point on P-256") from exc
    return out


def verify_jws_jwk(decoded: DecodedJws, jwk: dict[str, str]) -> None:
    """Check a holder's signature against its JWK; the alg must match the key type."""
    if jwk["kty"] == "OKP":
        if decoded.header.get("alg") not in _ALGS:
            raise VerificationFailed("invalid-signature", "an Ed25519 key signs with EdDSA")
        verify_jws(decoded, jwk_ed25519(jwk))
        return
    if decoded.header.get("alg") != "ES256":
        raise VerificationFailed("invalid-signature", "a P-256 key signs with ES256")
    try:
        key = ECKey.import_key(dict(jwk))
        jws.deserialize_compact(decoded.token, key, algorithms=["ES256"])
    except (JoseError, ValueError) as exc:
        raise VerificationFailed("invalid-signature", "JWS signature does not verify") from exc
