"""The one deterministic binary encoding of ledger messages and their payloads.

Specified byte by byte in ``docs/ledger.md`` ("Message format"). Integers are
big-endian, lists are count-prefixed and strictly ascending where order has no
meaning, so every value has exactly one encoding; the decoder rejects trailing
bytes, unknown versions and types, and anything non-canonical with a
``Rejected("encoding", ...)``. Written by hand because the format is small and
the ingest path needs a decoder that costs microseconds.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from enum import IntEnum
from itertools import pairwise
from typing import NamedTuple

from simtrust.errors import InvalidInput, Rejected

__all__ = [
    "GENESIS_PARENT_TIME",
    "MAX_MESSAGE_SIZE",
    "MAX_PARENTS",
    "PAYLOAD_NAMES",
    "VERSION",
    "Anchor",
    "Foundry",
    "Message",
    "Opaque",
    "Output",
    "PayloadType",
    "TaggedData",
    "Transaction",
    "Unlock",
    "decode_message",
    "decode_payload",
    "encode_anchor",
    "encode_opaque",
    "encode_output",
    "encode_payload",
    "encode_tagged_data",
    "encode_transaction",
    "essence_digest",
    "message_id",
    "network_id_from_name",
    "output_id",
    "parents_of",
    "payload_code",
    "signing_bytes",
    "split_output_id",
    "transaction_essence",
]

VERSION = 1
MAX_MESSAGE_SIZE = 32 * 1024
MAX_PARENTS = 8
MAX_TAG = 64
MAX_INPUTS = 128
MAX_OUTPUTS = 128
MAX_UNLOCKS = 16
MAX_TOKENS = 8
MAX_ANCHOR_DOMAIN = 64
MAX_SUPPLY = 2**63 - 1
GENESIS_PARENT_TIME = 0

#: Byte offsets of the fixed header (docs/ledger.md, "Message format").
ISSUER_OFFSET = 9
HEADER_SIZE = 1 + 8 + 32 + 8 + 1  # version, network, issuer, time, parent count
SIGNATURE_SIZE = 64
OUTPUT_ID_SIZE = 34

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEAD = struct.Struct(">B8s32sQB")
_ESSENCE_DOMAIN = b"simtrust/tx-essence/v1"


class PayloadType(IntEnum):
    """Payload type codes (docs/ledger.md, "Payloads")."""

    TAGGED_DATA = 0
    TRANSACTION = 1
    ANCHOR = 2
    IDENTITY = 3
    VALIDATOR_BLOCK = 4
    CONTRACT = 5


PAYLOAD_NAMES: dict[int, str] = {
    PayloadType.TAGGED_DATA: "tagged-data",
    PayloadType.TRANSACTION: "transaction",
    PayloadType.ANCHOR: "anchor",
    PayloadType.IDENTITY: "identity",
    PayloadType.VALIDATOR_BLOCK: "validator-block",
    PayloadType.CONTRACT: "contract",
}


def payload_code(payload_type: int | str) -> int:
    """The payload type code of a name (``"tagged-data"``) or of a code, else InvalidInput.

    The one parser of payload types for the node, the HTTP API and the CLI.
    """
    if isinstance(payload_type, str):
        for code, name in PAYLOAD_NAMES.items():
            if name == payload_type:
                return code
        raise InvalidInput(f"unknown payload type {payload_type!r}")
    if payload_type not in PAYLOAD_NAMES:
        raise InvalidInput(f"unknown payload type {payload_type}")
    return int(payload_type)


class TaggedData(NamedTuple):
    tag: bytes
    data: bytes


class Foundry(NamedTuple):
    """The supply controller of one native token (docs/ledger.md, "Native tokens")."""

    token_id: bytes
    minted: int
    max_supply: int


class Output(NamedTuple):
    """An unspent-able output: base units, native tokens, an optional foundry."""

    owner: bytes
    amount: int
    tokens: tuple[tuple[bytes, int], ...] = ()
    foundry: Foundry | None = None


class Unlock(NamedTuple):
    public_key: bytes
    signature: bytes


class Transaction(NamedTuple):
    inputs: tuple[bytes, ...]
    outputs: tuple[Output, ...]
    unlocks: tuple[Unlock, ...]
    essence: bytes


class Anchor(NamedTuple):
    """Merkle root of an off-ledger batch of ``size`` records ``first..last`` of ``domain``."""

    domain: str
    first: int
    last: int
    size: int
    root: bytes


class Opaque(NamedTuple):
    """Bytes whose meaning belongs to another component (identity, consensus, contracts)."""

    data: bytes


Payload = TaggedData | Transaction | Anchor | Opaque


class Message(NamedTuple):
    """A decoded, not yet validated message; ``raw`` is its exact encoding."""

    id: bytes
    version: int
    network_id: bytes
    issuer: bytes
    issued_at: int
    parents: tuple[bytes, ...]
    payload_type: int
    payload: bytes
    signature: bytes
    body: Payload
    raw: bytes

    @property
    def payload_name(self) -> str:
        return PAYLOAD_NAMES[self.payload_type]


_blake2b = hashlib.blake2b
_new_message = tuple.__new__


def _bad(detail: str) -> Rejected:
    return Rejected("encoding", detail)


def network_id_from_name(name: str) -> bytes:
    """The 8-byte network id: the first 8 bytes of BLAKE2b-256 of the UTF-8 name."""
    return hashlib.blake2b(name.encode(), digest_size=32).digest()[:8]


def message_id(raw: bytes) -> bytes:
    """Id of a message: BLAKE2b-256 of its complete signed encoding."""
    return hashlib.blake2b(raw, digest_size=32).digest()


def parents_of(raw: bytes) -> list[bytes]:
    """Parent ids of an encoded message already known to be valid (fixed offsets)."""
    count = raw[HEADER_SIZE - 1]
    return [raw[i : i + 32] for i in range(HEADER_SIZE, HEADER_SIZE + 32 * count, 32)]


def output_id(msg_id: bytes, index: int) -> bytes:
    return msg_id + _U16.pack(index)


def split_output_id(oid: bytes) -> tuple[bytes, int]:
    return oid[:32], _U16.unpack_from(oid, 32)[0]


def essence_digest(network_id: bytes, essence: bytes) -> bytes:
    """What an unlock signs: BLAKE2b-256(domain ‖ network id ‖ essence)."""
    return hashlib.blake2b(_ESSENCE_DOMAIN + network_id + essence, digest_size=32).digest()


# ---------------------------------------------------------------- encoding


def encode_tagged_data(tag: bytes, data: bytes) -> bytes:
    if len(tag) > MAX_TAG:
        raise _bad(f"tag longer than {MAX_TAG} bytes")
    return bytes([len(tag)]) + tag + _U32.pack(len(data)) + data


def encode_output(out: Output) -> bytes:
    parts = [
        b"\x01" if out.foundry is not None else b"\x00",
        out.owner,
        _U64.pack(out.amount),
        bytes([len(out.tokens)]),
    ]
    for token_id, amount in out.tokens:
        parts.append(token_id)
        parts.append(_U64.pack(amount))
    if out.foundry is not None:
        f = out.foundry
        parts.append(f.token_id + _U64.pack(f.minted) + _U64.pack(f.max_supply))
    return b"".join(parts)


def _encode_essence(inputs: Sequence[bytes], outputs: Sequence[Output]) -> bytes:
    return b"".join(
        [bytes([len(inputs)]), *inputs, bytes([len(outputs)])]
        + [encode_output(o) for o in outputs]
    )


def encode_transaction(
    inputs: Sequence[bytes], outputs: Sequence[Output], unlocks: Sequence[Unlock] = ()
) -> bytes:
    """Encode a transaction; ``inputs`` and ``unlocks`` are sorted here (canonical order)."""
    essence = _encode_essence(sorted(inputs), outputs)
    ordered = sorted(unlocks)
    return b"".join(
        [essence, bytes([len(ordered)])] + [u.public_key + u.signature for u in ordered]
    )


def transaction_essence(inputs: Sequence[bytes], outputs: Sequence[Output]) -> bytes:
    return _encode_essence(sorted(inputs), outputs)


def encode_anchor(anchor: Anchor) -> bytes:
    domain = anchor.domain.encode()
    return (
        bytes([len(domain)])
        + domain
        + _U64.pack(anchor.first)
        + _U64.pack(anchor.last)
        + _U64.pack(anchor.size)
        + anchor.root
    )


def encode_opaque(data: bytes) -> bytes:
    return data


def encode_payload(body: Payload) -> tuple[int, bytes]:
    """Payload type code and bytes of a payload value."""
    if isinstance(body, TaggedData):
        return PayloadType.TAGGED_DATA, encode_tagged_data(body.tag, body.data)
    if isinstance(body, Transaction):
        return PayloadType.TRANSACTION, encode_transaction(body.inputs, body.outputs, body.unlocks)
    if isinstance(body, Anchor):
        return PayloadType.ANCHOR, encode_anchor(body)
    raise _bad("opaque payloads need an explicit type code")


def signing_bytes(
    network_id: bytes,
    issuer: bytes,
    issued_at: int,
    parents: Sequence[bytes],
    payload_type: int,
    payload: bytes,
) -> bytes:
    """Everything before the signature; ``parents`` are sorted and de-duplicated here."""
    ordered = sorted(set(parents))
    if not 1 <= len(ordered) <= MAX_PARENTS:
        raise _bad(f"a message needs 1 to {MAX_PARENTS} distinct parents")
    if len(network_id) != 8 or len(issuer) != 32 or any(len(p) != 32 for p in ordered):
        raise _bad("network id is 8 bytes, issuer and parents 32 bytes")
    return b"".join(
        [
            _HEAD.pack(VERSION, network_id, issuer, issued_at, len(ordered)),
            *ordered,
            bytes([payload_type]),
            _U32.pack(len(payload)),
            payload,
        ]
    )


# ---------------------------------------------------------------- decoding


def decode_message(raw: bytes, mid: bytes | None = None) -> Message:
    """Decode one message strictly; raise ``Rejected("encoding"|"size", ...)``.

    ``mid`` is the message id when the caller already hashed ``raw`` (ingest
    hashes every message once, to recognise duplicates before decoding).
    """
    n = len(raw)
    if n > MAX_MESSAGE_SIZE:
        raise Rejected("size", f"message of {n} bytes exceeds {MAX_MESSAGE_SIZE}")
    if n < HEADER_SIZE + 32 + 1 + 4 + SIGNATURE_SIZE:
        raise _bad("message shorter than the smallest valid message")
    version, network_id, issuer, issued_at, count = _HEAD.unpack_from(raw, 0)
    if version != VERSION:
        raise _bad(f"unknown message version {version}")
    if not 1 <= count <= MAX_PARENTS:
        raise _bad(f"parent count {count} outside 1..{MAX_PARENTS}")
    pos = HEADER_SIZE
    end = pos + 32 * count
    if end + 5 + SIGNATURE_SIZE > n:
        raise _bad("message truncated in parents")
    parents = tuple([raw[i : i + 32] for i in range(pos, end, 32)])
    if count > 1:
        for a, b in pairwise(parents):
            if a >= b:
                raise _bad("parents must be strictly ascending")
    ptype = raw[end]
    (plen,) = _U32.unpack_from(raw, end + 1)
    pstart = end + 5
    pend = pstart + plen
    if pend + SIGNATURE_SIZE != n:
        raise _bad("payload length does not match the message length")
    payload = raw[pstart:pend]
    body = decode_payload(ptype, payload)
    # tuple.__new__ skips the generated NamedTuple constructor: this runs per message.
    return _new_message(
        Message,
        (
            _blake2b(raw, digest_size=32).digest() if mid is None else mid,
            version,
            network_id,
            issuer,
            issued_at,
            parents,
            ptype,
            payload,
            raw[pend:],
            body,
            raw,
        ),
    )


def decode_payload(ptype: int, data: bytes) -> Payload:
    if ptype == PayloadType.TRANSACTION:
        return _decode_transaction(data)
    if ptype == PayloadType.TAGGED_DATA:
        return _decode_tagged_data(data)
    if ptype == PayloadType.ANCHOR:
        return _decode_anchor(data)
    if ptype in (PayloadType.IDENTITY, PayloadType.VALIDATOR_BLOCK, PayloadType.CONTRACT):
        if not data:
            raise _bad(f"empty {PAYLOAD_NAMES[ptype]} payload")
        return Opaque(data)
    raise _bad(f"unknown payload type {ptype}")


def _decode_tagged_data(data: bytes) -> TaggedData:
    if not data:
        raise _bad("empty tagged-data payload")
    tlen = data[0]
    if tlen > MAX_TAG:
        raise _bad(f"tag longer than {MAX_TAG} bytes")
    if 1 + tlen + 4 > len(data):
        raise _bad("tagged-data truncated")
    (dlen,) = _U32.unpack_from(data, 1 + tlen)
    if 5 + tlen + dlen != len(data):
        raise _bad("tagged-data length mismatch")
    return TaggedData(data[1 : 1 + tlen], data[5 + tlen :])


def _decode_anchor(data: bytes) -> Anchor:
    if not data:
        raise _bad("empty anchor payload")
    dlen = data[0]
    if not 1 <= dlen <= MAX_ANCHOR_DOMAIN or len(data) != 1 + dlen + 24 + 32:
        raise _bad("anchor payload has the wrong length")
    try:
        domain = data[1 : 1 + dlen].decode()
    except UnicodeDecodeError as exc:
        raise _bad("anchor domain is not UTF-8") from exc
    pos = 1 + dlen
    first, last, size = struct.unpack_from(">QQQ", data, pos)
    if first > last or size == 0:
        raise Rejected("payload", "anchor range must be non-empty with first <= last")
    return Anchor(domain, first, last, size, data[pos + 24 :])


def _decode_output(data: bytes, pos: int) -> tuple[Output, int]:
    n = len(data)
    if pos + 42 > n:
        raise _bad("output truncated")
    kind = data[pos]
    if kind > 1:
        raise _bad(f"unknown output kind {kind}")
    owner = data[pos + 1 : pos + 33]
    (amount,) = _U64.unpack_from(data, pos + 33)
    tcount = data[pos + 41]
    if tcount > MAX_TOKENS:
        raise _bad(f"more than {MAX_TOKENS} native tokens in one output")
    pos += 42
    tokens: list[tuple[bytes, int]] = []
    if tcount:
        if pos + 40 * tcount > n:
            raise _bad("output tokens truncated")
        for _ in range(tcount):
            tid = data[pos : pos + 32]
            (tamount,) = _U64.unpack_from(data, pos + 32)
            if tamount == 0:
                raise Rejected("payload", "native token amounts must be positive")
            if tokens and tokens[-1][0] >= tid:
                raise _bad("native tokens must be strictly ascending by token id")
            tokens.append((tid, tamount))
            pos += 40
    foundry = None
    if kind == 1:
        if pos + 48 > n:
            raise _bad("foundry truncated")
        minted, max_supply = struct.unpack_from(">QQ", data, pos + 32)
        if minted > max_supply or max_supply > MAX_SUPPLY:
            raise Rejected("payload", "foundry minted supply exceeds its maximum")
        foundry = Foundry(data[pos : pos + 32], minted, max_supply)
        pos += 48
    elif amount == 0 and not tokens:
        raise Rejected("payload", "an output must carry base units or native tokens")
    return Output(owner, amount, tuple(tokens), foundry), pos


def _decode_transaction(data: bytes) -> Transaction:
    n = len(data)
    if n < 2:
        raise _bad("transaction truncated")
    icount = data[0]
    if not 1 <= icount <= MAX_INPUTS:
        raise _bad(f"input count {icount} outside 1..{MAX_INPUTS}")
    pos = 1
    end = pos + OUTPUT_ID_SIZE * icount
    if end + 1 > n:
        raise _bad("transaction inputs truncated")
    inputs = tuple(data[i : i + OUTPUT_ID_SIZE] for i in range(pos, end, OUTPUT_ID_SIZE))
    for a, b in pairwise(inputs):
        if a >= b:
            raise _bad("inputs must be strictly ascending")
    ocount = data[end]
    if not 1 <= ocount <= MAX_OUTPUTS:
        raise _bad(f"output count {ocount} outside 1..{MAX_OUTPUTS}")
    pos = end + 1
    outputs = []
    total = 0
    for _ in range(ocount):
        out, pos = _decode_output(data, pos)
        total += out.amount
        outputs.append(out)
    if total > MAX_SUPPLY:
        raise Rejected("payload", "outputs exceed the maximum supply")
    essence = data[:pos]
    if pos >= n:
        raise _bad("transaction unlocks truncated")
    ucount = data[pos]
    if ucount > MAX_UNLOCKS:
        raise _bad(f"more than {MAX_UNLOCKS} unlocks")
    pos += 1
    if pos + 96 * ucount != n:
        raise _bad("transaction unlock length mismatch")
    unlocks = tuple(
        Unlock(data[i : i + 32], data[i + 32 : i + 96]) for i in range(pos, n, 96)
    )
    for u, v in pairwise(unlocks):
        if u.public_key >= v.public_key:
            raise _bad("unlocks must be strictly ascending by public key")
    return Transaction(inputs, tuple(outputs), unlocks, essence)
