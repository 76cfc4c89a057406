"""IETF Token Status List (draft-ietf-oauth-status-list) for SD-JWT VCs.

A Referenced Token (the SD-JWT VC) carries ``status.status_list`` with
``idx`` and ``uri`` (§6.1, §6.3); the Status List Token at ``uri`` (fetched
with ``Accept: application/statuslist+jwt``, §8.1) is a JWT with ``typ``
``statuslist+jwt``, ``sub`` = that URI, ``iat``, ``exp``, ``ttl`` and
``status_list`` = ``{"bits": 1, "lst": base64url(ZLIB(DEFLATE(bytes)))}``
(§4.1, §5.1). Status values: 0 VALID, 1 INVALID (§7.1).

The bits are the issuer's revocation list (Bitstring Status List storage,
_statuslist.py), one list served both ways: as a Bitstring Status List
credential and as a Status List Token. Bit order differs: Bitstring Status
List puts index 0 in the most significant bit of byte 0, the Token Status
List in the least significant (§4.1); :func:`msb_to_lsb` converts.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from simtrust.errors import DecodeError
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode
from simtrust.identity._resolver import DidResolver

__all__ = [
    "STATUS_LIST_MEDIA_TYPE",
    "STATUS_LIST_TYP",
    "decode_token_list",
    "encode_token_list",
    "msb_to_lsb",
    "reference_entry",
    "status_list_token",
    "verify_status_list_token",
]

STATUS_LIST_TYP = "statuslist+jwt"
STATUS_LIST_MEDIA_TYPE = "application/statuslist+jwt"
_TTL = timedelta(minutes=5)
_LIFETIME = timedelta(days=1)
_MAX_LIST = 16 * 1024 * 1024
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def msb_to_lsb(bits: bytes) -> bytes:
    """A one-bit-per-entry list from Bitstring order (MSB first) to Token order (LSB first)."""
    return bits.translate(_REVERSED)


def encode_token_list(lsb: bytes) -> dict[str, Any]:
    """``status_list`` of a one-bit list (§4.1): ZLIB (RFC 1950) at level 9, base64url."""
    return {"bits": 1, "lst": b64url_encode(zlib.compress(lsb, 9))}


def decode_token_list(status_list: object) -> bytes:
    """The bytes of a one-bit ``status_list`` object; DecodeError when malformed."""
    if not isinstance(status_list, dict) or status_list.get("bits") != 1:
        raise DecodeError("status_list needs bits 1 (the only size this verifier reads)")
    lst = status_list.get("lst")
    if not isinstance(lst, str):
        raise DecodeError("status_list.lst is a base64url string")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b64url_decode(lst), _MAX_LIST)
    except zlib.error as exc:
        raise DecodeError("status_list.lst is not ZLIB data") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise DecodeError("status_list.lst is truncated or too large")
    return raw


def status_list_token(*, uri: str, bitstring: bytes, signer: Signer, now: datetime) -> str:
    """The Status List Token at ``uri`` for a Bitstring-ordered one-bit list (§5.1)."""
    issued = int(now.timestamp())
    payload = {
        "sub": uri, "iat": issued, "exp": issued + int(_LIFETIME.total_seconds()),
        "ttl": int(_TTL.total_seconds()), "status_list": encode_token_list(msb_to_lsb(bitstring)),
    }  # fmt: skip
    header = {"typ": STATUS_LIST_TYP, "kid": signer.verification_method}
    return sign_jws(header, payload, signer)


def verify_status_list_token(token: object, *, uri: str, issuer: str, resolver: DidResolver,
                             now: datetime) -> bytes:  # fmt: skip
    """Check a Status List Token for ``uri`` by ``issuer`` (§8.3); its list bytes (LSB order)."""
    decoded = parse_jws(token)
    if decoded.header.get("typ") != STATUS_LIST_TYP:
        raise VerificationFailed("malformed", f"a Status List Token has typ {STATUS_LIST_TYP}")
    kid = decoded.header.get("kid")
    if not isinstance(kid, str) or kid.split("#", 1)[0] != issuer:
        raise VerificationFailed("issuer-mismatch", "the list is not signed by the issuer")
    verify_jws(decoded, resolver.verification_key(kid, "assertionMethod"))
    payload = decoded.payload
    if payload.get("sub") != uri:
        raise VerificationFailed("malformed", "the token's sub is not the referenced uri")
    exp = payload.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp < now.timestamp():
        raise VerificationFailed("status-unavailable", "the Status List Token has expired")
    try:
        return decode_token_list(payload.get("status_list"))
    except DecodeError as exc:
        raise VerificationFailed("malformed", exc.detail) from exc


def reference_entry(reference: object) -> dict[str, Any]:
    """The revocation entry a ``status`` claim (§6.1) names, in the shape the issuer's
    Bitstring Status List checker reads (same list, same index)."""
    inner = reference.get("status_list") if isinstance(reference, dict) else None
    if not isinstance(inner, dict):
        raise VerificationFailed("malformed", "status needs a status_list reference")
    idx, uri = inner.get("idx"), inner.get("uri")
    if type(idx) is not int or idx < 0 or not isinstance(uri, str) or not uri:
        raise VerificationFailed("malformed", "status_list needs a non-negative idx and a uri")
    return {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
            "statusListIndex": str(idx), "statusListCredential": uri}  # fmt: skip
