"""Revocation and suspension with the W3C Bitstring Status List v1.0.

§2.1 entries (``BitstringStatusListEntry``), §2.2 status list credentials,
§3.1 generate (GZIP, then multibase base64url without padding; bit 0 is the
left-most bit of the first byte), §3.2 validate, §6.1 herd privacy: every list
holds at least 131,072 entries and indexes are drawn at random from the unused
ones, persisted so that no index is ever handed out twice.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from simtrust.errors import Conflict, DecodeError, InvalidInput, NotFound
from simtrust.identity._contexts import CREDENTIALS_V2
from simtrust.identity._credentials import StatusResult, issue_credential, verify_credential
from simtrust.identity._ecdsa import EcdsaP256Signer
from simtrust.identity._errors import VerificationFailed
from simtrust.identity._jcs import canonicalize
from simtrust.identity._keys import Signer
from simtrust.identity._multibase import multibase_decode, multibase_encode
from simtrust.identity._resolver import DidResolver
from simtrust.identity._statusanchor import credential_digest
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.store import Database

__all__ = [
    "MIN_LIST_SIZE",
    "STATUS_PURPOSES",
    "StatusListRegistry",
    "StatusListVerifier",
    "decode_status_list",
    "encode_status_list",
    "status_bit",
    "validate_status_entry",
]

MIN_LIST_SIZE = 131_072
STATUS_PURPOSES = ("revocation", "suspension", "message")
#: Largest statusSize simtrust issues or reads (§2.1 allows any; 8 bits = 256 messages).
MAX_STATUS_SIZE = 8
#: A decoded list larger than this is refused (a GZIP bomb guard): 16 Mi entries.
_MAX_LIST_BYTES = 2 * 1024 * 1024


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")
#: §2.1 statusPurpose values this specification defines.
ENTRY_PURPOSES = ("refresh", "revocation", "suspension", "message")


def validate_status_entry(entry: object) -> None:
    """§2.1 BitstringStatusListEntry: the MUSTs of one ``credentialStatus`` entry.

    Entries of other types are left to their own specifications (the data
    model only requires a ``type``, checked by the data-model validator).
    """
    rule = "Bitstring Status List §2.1"
    if not isinstance(entry, dict):
        raise VerificationFailed("malformed", "a credentialStatus entry is an object", rule=rule)
    if entry.get("type") != "BitstringStatusListEntry":
        return
    purpose = entry.get("statusPurpose")
    purposes = purpose if isinstance(purpose, list) else [purpose]
    if not purposes or not all(isinstance(p, str) and p for p in purposes):
        raise VerificationFailed("malformed", "statusPurpose must be a string", rule=rule)
    index = entry.get("statusListIndex")
    if not isinstance(index, str) or not index.isdigit() or not index.isascii():
        raise VerificationFailed(
            "malformed",
            "statusListIndex must be a non-negative integer expressed as a base-10 string",
            rule=rule,
        )
    url = entry.get("statusListCredential")
    if not isinstance(url, str) or _URL.fullmatch(url) is None:
        raise VerificationFailed("malformed", "statusListCredential must be a URL", rule=rule)
    size = entry.get("statusSize", 1)
    if type(size) is not int or size < 1:
        raise VerificationFailed("malformed", "statusSize must be a positive integer", rule=rule)
    if "message" in purposes and "statusMessage" not in entry:
        raise VerificationFailed(
            "malformed", "a message status entry needs statusMessage", rule=rule
        )
    if size > 1 and "statusMessage" not in entry:
        raise VerificationFailed("malformed", "statusSize above 1 needs statusMessage", rule=rule)
    if "statusMessage" in entry:
        messages = entry["statusMessage"]
        if not isinstance(messages, list) or not messages:
            raise VerificationFailed("malformed", "statusMessage must be a list", rule=rule)
        for message in messages:
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("status"), str)
                or not re.fullmatch(r"0x[0-9a-fA-F]+", message["status"])
                or not isinstance(message.get("message"), str)
            ):
                raise VerificationFailed(
                    "malformed",
                    "each statusMessage has a hex status (0x...) and a message string",
                    rule=rule,
                )
        if len(messages) > 2**size:
            raise VerificationFailed(
                "malformed", "statusMessage lists more values than statusSize holds", rule=rule
            )


def encode_status_list(bits: bytes) -> str:
    """§3.1 Generate: GZIP the bitstring, then multibase base64url (``u`` prefix)."""
    return multibase_encode(gzip.compress(bits, compresslevel=9, mtime=0), "u")


def decode_status_list(encoded: object) -> bytes:
    """§3.2 Expand: undo the multibase base64url and GZIP; refuse oversized lists."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise DecodeError("encodedList must be multibase base64url (prefix u)")
    compressed = multibase_decode(encoded)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        bits = inflater.decompress(compressed, _MAX_LIST_BYTES + 1)
    except zlib.error as exc:
        raise DecodeError("encodedList is not GZIP data") from exc
    if len(bits) > _MAX_LIST_BYTES or inflater.unconsumed_tail:
        raise DecodeError("status list is larger than simtrust accepts")
    if not inflater.eof:
        raise DecodeError("encodedList is truncated")
    return bits


def status_value(bits: bytes, index: int, size: int) -> int:
    """The ``size``-bit status of entry ``index`` (bits ``index*size`` onwards, §3.2 step 10)."""
    value = 0
    for position in range(index * size, index * size + size):
        value = (value << 1) | status_bit(bits, position)
    return value


def status_bit(bits: bytes, index: int) -> bool:
    """Bit ``index`` counted from the left-most bit of the first byte (§3.1)."""
    if not 0 <= index < len(bits) * 8:
        raise DecodeError("status list index out of range")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def _set_bit(bits: bytearray, index: int, value: bool) -> None:
    mask = 0x80 >> (index % 8)
    if value:
        bits[index // 8] |= mask
    else:
        bits[index // 8] &= ~mask & 0xFF


class StatusListRegistry:
    """An issuer's status lists, persisted in the identity tables.

    Each change re-signs and stores the status list credential, which is what
    the issuer publishes (``published``) for verifiers to read.
    """

    __slots__ = ("_db", "_random")

    def __init__(self, db: Database, *, random_index: Callable[[int], int] | None = None) -> None:
        self._db = db
        self._random = random_index or secrets.randbelow

    def create(
        self,
        list_id: str,
        *,
        issuer: str,
        purpose: str,
        signer: Signer,
        now: datetime,
        size: int = MIN_LIST_SIZE,
        status_size: int = 1,
        messages: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Create an empty list of ``size`` entries of ``status_size`` bits; publish it.

        ``messages`` (§2.1 ``statusMessage``) are required for ``message`` lists
        and for status sizes above 1, and copied into every entry allocated.
        """
        if purpose not in STATUS_PURPOSES:
            raise InvalidInput(f"statusPurpose must be one of {STATUS_PURPOSES}")
        if size < MIN_LIST_SIZE or size % 8:
            raise InvalidInput(
                f"a status list holds at least {MIN_LIST_SIZE} entries (herd privacy)"
            )
        if not 1 <= status_size <= MAX_STATUS_SIZE:
            raise InvalidInput(f"statusSize must be between 1 and {MAX_STATUS_SIZE}")
        if (purpose == "message" or status_size > 1) and not messages:
            raise InvalidInput("a message list or statusSize above 1 needs statusMessage")
        if messages:
            validate_status_entry(
                {
                    "type": "BitstringStatusListEntry",
                    "statusPurpose": purpose,
                    "statusListIndex": "0",
                    "statusListCredential": list_id,
                    "statusSize": status_size,
                    "statusMessage": messages,
                }
            )
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO identity_status_list (list_id, issuer, purpose, size, bits,"
                " allocated, credential, updated, status_size, status_messages)"
                " VALUES (?, ?, ?, ?, ?, 0, '', ?, ?, ?)",
                (
                    list_id,
                    issuer,
                    purpose,
                    size,
                    bytes(size * status_size // 8),
                    format_datetime(now),
                    status_size,
                    json.dumps(messages or []),
                ),
            )
            return self._publish(list_id, signer, now)

    def allocate(self, list_id: str, credential_id: str | None = None) -> dict[str, Any]:
        """Reserve a random unused index and return the ``credentialStatus`` entry."""
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT purpose, size, allocated, status_size, status_messages"
                " FROM identity_status_list WHERE list_id = ?",
                (list_id,),
            )
            if row is None:
                raise NotFound(f"no status list {list_id}")
            purpose, size, allocated = str(row[0]), int(row[1]), int(row[2])
            status_size, messages = int(row[3]), json.loads(str(row[4]) or "[]")
            if allocated >= size:
                raise Conflict(f"status list {list_id} is full")
            index = self._pick(list_id, size)
            self._db.execute(
                "INSERT INTO identity_status_alloc (list_id, idx, credential_id) VALUES (?, ?, ?)",
                (list_id, index, credential_id),
            )
            self._db.execute(
                "UPDATE identity_status_list SET allocated = allocated + 1 WHERE list_id = ?",
                (list_id,),
            )
        entry: dict[str, Any] = {
            "id": f"{list_id}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": str(index),
            "statusListCredential": list_id,
        }
        if status_size > 1 or messages:
            entry["statusSize"] = status_size
            entry["statusMessage"] = messages
        return entry

    def claim(self, list_id: str, index: int, credential_id: str | None = None) -> None:
        """Reserve ``index`` of ``list_id`` for a caller-supplied entry; refuse a used index."""
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT size FROM identity_status_list WHERE list_id = ?", (list_id,)
            )
            if row is None:
                raise NotFound(f"no status list {list_id}")
            if not 0 <= index < int(row[0]):
                raise InvalidInput(
                    f"statusListIndex {index} is outside status list {list_id}",
                    rule="Bitstring Status List §2.1",
                )
            taken = self._db.query_one(
                "SELECT 1 FROM identity_status_alloc WHERE list_id = ? AND idx = ?",
                (list_id, index),
            )
            if taken is not None:
                raise Conflict(f"index {index} of {list_id} is already in use")
            self._db.execute(
                "INSERT INTO identity_status_alloc (list_id, idx, credential_id) VALUES (?, ?, ?)",
                (list_id, index, credential_id),
            )
            self._db.execute(
                "UPDATE identity_status_list SET allocated = allocated + 1 WHERE list_id = ?",
                (list_id,),
            )

    def _pick(self, list_id: str, size: int) -> int:
        for _ in range(64):
            candidate = self._random(size)
            taken = self._db.query_one(
                "SELECT 1 FROM identity_status_alloc WHERE list_id = ? AND idx = ?",
                (list_id, candidate),
            )
            if taken is None:
                return candidate
        # Nearly full: choose uniformly among the indexes still free.
        used = {
            int(r[0])
            for r in self._db.query(
                "SELECT idx FROM identity_status_alloc WHERE list_id = ?", (list_id,)
            )
        }
        free = [i for i in range(size) if i not in used]
        return free[self._random(len(free))]

    def set_status(
        self, list_id: str, index: int, value: bool | int, *, signer: Signer, now: datetime
    ) -> dict[str, Any]:
        """Set the status of an allocated index (a bit, or ``statusSize`` bits); republish."""
        with self._db.transaction():
            row = self._db.query_one(
                "SELECT bits, status_size FROM identity_status_list WHERE list_id = ?", (list_id,)
            )
            if row is None:
                raise NotFound(f"no status list {list_id}")
            if (
                self._db.query_one(
                    "SELECT 1 FROM identity_status_alloc WHERE list_id = ? AND idx = ?",
                    (list_id, index),
                )
                is None
            ):
                raise NotFound(f"index {index} of {list_id} was never allocated")
            bits = bytearray(bytes(row[0]))
            status_size = int(row[1])
            number = int(value)
            if not 0 <= number < 2**status_size:
                raise InvalidInput(f"status {number} does not fit in {status_size} bits")
            for offset in range(status_size):
                bit = bool(number >> (status_size - 1 - offset) & 1)
                _set_bit(bits, index * status_size + offset, bit)
            self._db.execute(
                "UPDATE identity_status_list SET bits = ? WHERE list_id = ?", (bytes(bits), list_id)
            )
            return self._publish(list_id, signer, now)

    def _publish(self, list_id: str, signer: Signer, now: datetime) -> dict[str, Any]:
        row = self._db.query_one(
            "SELECT issuer, purpose, bits FROM identity_status_list WHERE list_id = ?", (list_id,)
        )
        if row is None:
            raise NotFound(f"no status list {list_id}")
        credential = {
            "@context": [CREDENTIALS_V2],
            "id": list_id,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": str(row[0]),
            "validFrom": format_datetime(now),
            "credentialSubject": {
                "id": f"{list_id}#list",
                "type": "BitstringStatusList",
                "statusPurpose": str(row[1]),
                "encodedList": encode_status_list(bytes(row[2])),
            },
        }
        # A P-256 issuer's list is secured with its own suite (VC-DI-ECDSA §3.2), so the
        # list's proof is made by the same key as the credentials it speaks for.
        suite = "ecdsa-rdfc-2019" if isinstance(signer, EcdsaP256Signer) else "eddsa-jcs-2022"
        signed = issue_credential(credential, signer, now=now, cryptosuite=suite)
        self._db.execute(
            "UPDATE identity_status_list SET credential = ?, updated = ? WHERE list_id = ?",
            (canonicalize(signed).decode("utf-8"), format_datetime(now), list_id),
        )
        return signed

    def published(self, list_id: str) -> dict[str, Any]:
        """The current signed status list credential of ``list_id``."""
        row = self._db.query_one(
            "SELECT credential FROM identity_status_list WHERE list_id = ?", (list_id,)
        )
        if row is None:
            raise NotFound(f"no status list {list_id}")
        document: dict[str, Any] = json.loads(str(row[0]))
        return document

    def entries_for(self, credential_id: str) -> list[tuple[str, int, str]]:
        """(list id, index, purpose) of every index allocated to ``credential_id``."""
        rows = self._db.query(
            "SELECT a.list_id, a.idx, l.purpose FROM identity_status_alloc a"
            " JOIN identity_status_list l ON l.list_id = a.list_id"
            " WHERE a.credential_id = ? ORDER BY a.list_id",
            (credential_id,),
        )
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def status_size(self, list_id: str) -> int:
        row = self._db.query_one(
            "SELECT status_size FROM identity_status_list WHERE list_id = ?", (list_id,)
        )
        if row is None:
            raise NotFound(f"no status list {list_id}")
        return int(row[0])

    def lists(self, issuer: str) -> list[tuple[str, str]]:
        """(list id, purpose) of every list of ``issuer``."""
        rows = self._db.query(
            "SELECT list_id, purpose FROM identity_status_list WHERE issuer = ? ORDER BY list_id",
            (issuer,),
        )
        return [(str(r[0]), str(r[1])) for r in rows]


# How far a status list credential's validFrom may lie ahead of the verifier's clock:
# an issuer re-publishes the list at the moment of a status change, and its clock may
# run a little ahead of the verifier's (the same allowance as SD-JWT's ``iat``).
STATUS_LIST_SKEW = timedelta(seconds=60)


def _checked_at(listed: object, now: datetime) -> datetime:
    """The moment a status list credential is checked at: ``now``, or its ``validFrom``
    when that lies no more than :data:`STATUS_LIST_SKEW` ahead of ``now``."""
    start = listed.get("validFrom") if isinstance(listed, dict) else None
    if not isinstance(start, str):
        return now
    try:
        moment = parse_datetime(start, "validFrom")
    except VerificationFailed:
        return now  # verification reports the malformed value
    return moment if now < moment <= now + STATUS_LIST_SKEW else now


class StatusListVerifier:
    """A :class:`StatusChecker` that reads status list credentials through ``fetch``.

    ``fetch(url)`` returns the published status list credential (from the
    local registry, or over HTTP in a deployment); its proof, issuer and
    validity are checked before a bit is read (§3.2).
    """

    __slots__ = ("_anchored", "_fetch", "_resolver")

    def __init__(
        self,
        fetch: Callable[[str], dict[str, Any]],
        resolver: DidResolver,
        *,
        anchored: Callable[[str], str | None] | None = None,
    ) -> None:
        """``anchored(url)``: the digest the ledger holds for the list; the list read must match."""
        self._fetch = fetch
        self._resolver = resolver
        self._anchored = anchored

    def check(self, entry: dict[str, Any], issuer: str, now: datetime) -> StatusResult:
        validate_status_entry(entry)
        if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
            raise VerificationFailed(
                "malformed", "credentialStatus is not a BitstringStatusListEntry"
            )
        purpose = entry.get("statusPurpose")
        url = entry.get("statusListCredential")
        raw_index = entry.get("statusListIndex")
        size = int(entry.get("statusSize", 1))
        if size > MAX_STATUS_SIZE:
            raise VerificationFailed(
                "status-unavailable", f"statusSize above {MAX_STATUS_SIZE} is not read"
            )
        if purpose not in STATUS_PURPOSES:
            raise VerificationFailed("malformed", f"unsupported statusPurpose {purpose!r}")
        if (not isinstance(url, str) or not isinstance(raw_index, str)
                or not (raw_index.isascii() and raw_index.isdigit())):
            raise VerificationFailed(
                "malformed", "status entry needs a list URL and a decimal index"
            )
        index = int(raw_index)
        try:
            listed = self._fetch(url)
        except (NotFound, DecodeError) as exc:
            raise VerificationFailed(
                "status-unavailable", f"cannot read status list {url}", statusListCredential=url
            ) from exc
        try:
            verified = verify_credential(
                listed, resolver=self._resolver, now=_checked_at(listed, now)
            )
        except VerificationFailed as exc:
            raise VerificationFailed(
                "status-unavailable",
                f"status list credential does not verify: {exc.detail}",
                statusListCredential=url,
            ) from exc
        if self._anchored is not None and self._anchored(url) != credential_digest(listed):
            raise VerificationFailed(
                "status-unavailable",
                "the status list read is not the one anchored on the ledger",
                statusListCredential=url,
            )
        subject = verified.credential.get("credentialSubject")
        if (
            verified.issuer != issuer
            or listed.get("id") != url
            or not isinstance(subject, dict)
            or subject.get("type") != "BitstringStatusList"
            or subject.get("statusPurpose") != purpose
        ):
            raise VerificationFailed(
                "status-unavailable",
                "status list credential does not match the entry (issuer, id or purpose)",
                statusListCredential=url,
            )
        try:
            bits = decode_status_list(subject.get("encodedList"))
            if len(bits) * 8 < MIN_LIST_SIZE * size:
                raise DecodeError("status list is shorter than 131,072 entries")
            number = status_value(bits, index, size)
        except DecodeError as exc:
            raise VerificationFailed(
                "status-unavailable", exc.detail, statusListCredential=url
            ) from exc
        value = bool(number)
        message = None
        if "statusMessage" in entry:
            wanted = f"0x{number:x}"
            message = next(
                (
                    m["message"]
                    for m in entry["statusMessage"]
                    if int(str(m["status"]), 16) == number
                ),
                None,
            )
            if message is None:
                raise VerificationFailed(
                    "status-unavailable",
                    f"status {wanted} has no statusMessage",
                    statusListCredential=url,
                )
        result = StatusResult(purpose, url, index, value, number, message)
        if purpose == "message":
            return result
        if value:
            reason = "revoked" if purpose == "revocation" else "suspended"
            raise VerificationFailed(
                reason,
                f"the credential is {reason} (status list {url}, index {index})",
                statusListCredential=url,
                statusListIndex=index,
                statusPurpose=purpose,
            )
        return result
