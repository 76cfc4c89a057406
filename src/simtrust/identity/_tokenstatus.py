"""IETF Token Status List (draft-ietf-oauth-status-list) for SD-JWT VCs.

A Referenced Token (the SD-JWT VC) carries ``status.status_list`` with
``idx`` and ``uri`` (§6.1, §6.3); the Status List Token at ``uri`` (fetched
with ``Accept: application/statuslist+jwt``, §8.1) is a JWT with ``typ``
``statuslist+jwt``, ``sub`` = that URI, ``iat``, ``exp``, ``ttl`` and
``status_list`` = ``{"bits": B, "lst": base64url(ZLIB(DEFLATE(bytes)))}``
with B of 1, 2, 4 or 8 bits per Referenced Token (§4.1, §5.1). Status values
(§7.1): 0x00 VALID, 0x01 INVALID, 0x02 SUSPENDED, 0x03 and 0x0C-0x0F
application-specific; a verifier here accepts VALID only and names the others.

The bits are the issuer's lists (Bitstring Status List storage,
_statuslist.py), each served both ways: as a Bitstring Status List
credential and as a Status List Token whose ``bits`` is the list's
``statusSize``. Order within a byte differs: Bitstring Status List puts entry
0 in the most significant bits of byte 0, the Token Status List in the least
significant (§4.1); :func:`to_token_order` regroups. A two-bit list whose
``statusMessage`` values are :data:`TOKEN_STATUS_MESSAGES` carries the
registered statuses, so revoking (INVALID) and suspending (SUSPENDED) one
credential are values of one entry.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from simtrust.errors import DecodeError, NotFound
from simtrust.identity._credentials import StatusResult
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import b64url_decode, b64url_encode
from simtrust.identity._resolver import DidResolver

__all__ = [
    "STATUS_LIST_MEDIA_TYPE",
    "STATUS_LIST_TYP",
    "TOKEN_BITS",
    "TOKEN_STATUSES",
    "TOKEN_STATUS_MESSAGES",
    "TokenStatusListVerifier",
    "decode_token_list",
    "encode_token_list",
    "msb_to_lsb",
    "read_token_list",
    "reference_entry",
    "status_list_token",
    "to_token_order",
    "token_status_at",
    "verify_status_list_token",
]

STATUS_LIST_TYP = "statuslist+jwt"
STATUS_LIST_MEDIA_TYPE = "application/statuslist+jwt"
_TTL = timedelta(minutes=5)
_LIFETIME = timedelta(days=1)
_MAX_LIST = 16 * 1024 * 1024
TOKEN_BITS = (1, 2, 4, 8)
#: §7.1 registered status values.
TOKEN_STATUSES = {0x00: "VALID", 0x01: "INVALID", 0x02: "SUSPENDED"}
#: The statusMessage of a two-bit Bitstring list whose values are the registered ones.
TOKEN_STATUS_MESSAGES = [{"status": f"0x{v:x}", "message": name}
                         for v, name in TOKEN_STATUSES.items()]


def _regroup(size: int) -> bytes:
    """Translation table: a byte's ``size``-bit groups from MSB-first to LSB-first order."""
    mask, per = (1 << size) - 1, 8 // size
    table = bytearray(256)
    for byte in range(256):
        out = 0
        for k in range(per):
            out |= ((byte >> (8 - size * (k + 1))) & mask) << (size * k)
        table[byte] = out
    return bytes(table)


_TABLES = {size: _regroup(size) for size in TOKEN_BITS}


def to_token_order(bitstring: bytes, bits: int) -> bytes:
    """A Bitstring-ordered list of ``bits``-bit entries in Token order (§4.1)."""
    if bits not in TOKEN_BITS:
        raise DecodeError("a Token Status List has 1, 2, 4 or 8 bits per entry")
    return bitstring.translate(_TABLES[bits])


def msb_to_lsb(bits: bytes) -> bytes:
    """A one-bit-per-entry list from Bitstring order (MSB first) to Token order (LSB first)."""
    return to_token_order(bits, 1)


def encode_token_list(lsb: bytes, bits: int = 1) -> dict[str, Any]:
    """``status_list`` (§4.1): ZLIB (RFC 1950) at level 9, base64url, ``bits`` per entry."""
    if bits not in TOKEN_BITS:
        raise DecodeError("a Token Status List has 1, 2, 4 or 8 bits per entry")
    return {"bits": bits, "lst": b64url_encode(zlib.compress(lsb, 9))}


def token_status_at(raw: bytes, bits: int, idx: int) -> int:
    """The status of entry ``idx`` (§4.1: bits ``idx*bits`` onwards, least significant first)."""
    position = idx * bits
    if idx < 0 or position // 8 >= len(raw):
        raise DecodeError("status list index out of range")
    return (raw[position // 8] >> (position % 8)) & ((1 << bits) - 1)


def decode_token_list(status_list: object) -> bytes:
    """The bytes of a ``status_list`` object; DecodeError when malformed."""
    return read_token_list(status_list)[1]


def read_token_list(status_list: object) -> tuple[int, bytes]:
    """(bits, bytes) of a ``status_list`` object of 1, 2, 4 or 8 bits; DecodeError otherwise."""
    if not isinstance(status_list, dict):
        raise DecodeError("status_list is a JSON object")
    bits = status_list.get("bits")
    if type(bits) is not int or bits not in TOKEN_BITS:
        raise DecodeError("status_list.bits is 1, 2, 4 or 8")
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
    return bits, raw


def status_list_token(*, uri: str, bitstring: bytes, signer: Signer, now: datetime,
                      bits: int = 1) -> str:
    """The Status List Token at ``uri`` for a Bitstring-ordered list of ``bits``-bit
    entries (§5.1)."""
    issued = int(now.timestamp())
    listed = encode_token_list(to_token_order(bitstring, bits), bits)
    payload = {
        "sub": uri, "iat": issued, "exp": issued + int(_LIFETIME.total_seconds()),
        "ttl": int(_TTL.total_seconds()), "status_list": listed,
    }  # fmt: skip
    header = {"typ": STATUS_LIST_TYP, "kid": signer.verification_method}
    return sign_jws(header, payload, signer)


def verify_status_list_token(token: object, *, uri: str, issuer: str, resolver: DidResolver,
                             now: datetime) -> bytes:  # fmt: skip
    """Check a Status List Token for ``uri`` by ``issuer`` (§8.3); its list bytes (LSB order)."""
    return _verified_list(token, uri=uri, issuer=issuer, resolver=resolver, now=now)[1]


def _verified_list(token: object, *, uri: str, issuer: str, resolver: DidResolver,
                   now: datetime) -> tuple[int, bytes]:
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
        return read_token_list(payload.get("status_list"))
    except DecodeError as exc:
        raise VerificationFailed("malformed", exc.detail) from exc


class TokenStatusListVerifier:
    """Reads a ``status`` reference (§6.1) from the Status List Token at its ``uri`` (§8.3).

    ``fetch(uri)`` returns the token (over HTTP with ``Accept:
    application/statuslist+jwt`` in a deployment, from the issuer's own lists
    here). VALID passes; INVALID is ``revoked``, SUSPENDED ``suspended``, an
    application-specific value ``status-application-specific`` (§7.1).
    """

    __slots__ = ("_fetch", "_resolver")

    def __init__(self, fetch: Callable[[str], str], resolver: DidResolver) -> None:
        self._fetch = fetch
        self._resolver = resolver

    def __repr__(self) -> str:
        return "TokenStatusListVerifier()"

    def check(self, reference: object, issuer: str, now: datetime) -> StatusResult:
        entry = reference_entry(reference)
        uri, idx = str(entry["statusListCredential"]), int(entry["statusListIndex"])
        try:
            token = self._fetch(uri)
        except (NotFound, DecodeError) as exc:
            raise VerificationFailed("status-unavailable", f"cannot read status list {uri}",
                                     statusListCredential=uri) from exc  # fmt: skip
        bits, raw = _verified_list(token, uri=uri, issuer=issuer, resolver=self._resolver,
                                   now=now)  # fmt: skip
        try:
            value = token_status_at(raw, bits, idx)
        except DecodeError as exc:
            raise VerificationFailed("status-unavailable", exc.detail,
                                     statusListCredential=uri) from exc  # fmt: skip
        name = TOKEN_STATUSES.get(value, "APPLICATION_SPECIFIC")
        if value != 0:
            reason = {1: "revoked", 2: "suspended"}.get(value, "status-application-specific")
            raise VerificationFailed(reason, f"the token's status is {name} (0x{value:02x}) in"
                                     f" {uri}, index {idx}", statusListCredential=uri,
                                     statusListIndex=idx)  # fmt: skip
        return StatusResult("revocation", uri, idx, False, value, name)


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
