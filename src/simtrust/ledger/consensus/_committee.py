"""The validator committee of one epoch: weights, quorums, leader schedule, epoch changes.

Follows ``docs/consensus.md`` §2 (committee and thresholds), §3 (leader schedule)
and §8 (committee change by supermajority). Thresholds are the BFT ones of
Bullshark/Mysticeti: a quorum is more than 2/3 of the total weight, validity
more than 1/3. Pure functions and immutable values, no I/O.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import gcd

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, Rejected

__all__ = [
    "MAX_VALIDATORS",
    "Committee",
    "CommitteeChange",
    "CommitteeChangeSignature",
    "Validator",
    "sign_committee_change",
    "verify_committee_change",
]

MAX_VALIDATORS = 1024
MAX_WEIGHT = 2**48
_SCHEDULE_LIMIT = 4096
_CHANGE_VERSION = 1
_CHANGE_VERSION_ANNEX = 2
_CHANGE_DOMAIN = b"simtrust/consensus/committee-change/v1\x00"


@dataclass(frozen=True, slots=True)
class Validator:
    """One committee member: its index (``id``), Ed25519 public key and weight."""

    id: int
    public_key: bytes = field(repr=False)
    weight: int

    def __post_init__(self) -> None:
        if not 0 <= self.id < MAX_VALIDATORS:
            raise InvalidInput(f"validator id {self.id} out of range", field="id")
        if len(self.public_key) != 32:
            raise InvalidInput("validator public key must be 32 bytes", field="public_key")
        if not 1 <= self.weight <= MAX_WEIGHT:
            raise InvalidInput(f"validator weight {self.weight} out of range", field="weight")

    def verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)


class Committee:
    """The validators of one epoch, ids ``0..n-1`` in genesis order.

    ``is_quorum`` / ``is_validity`` take a weight and apply the strict
    thresholds ``3w > 2W`` and ``3w > W`` with integer arithmetic, so no
    rounding ever lets a 2/3 coalition pass as a quorum.
    """

    __slots__ = ("_keys", "_schedule", "epoch", "total_weight", "validators")

    def __init__(self, epoch: int, validators: Sequence[Validator]) -> None:
        if not 0 <= epoch < 2**64:
            raise InvalidInput("epoch out of range", field="epoch")
        if not 1 <= len(validators) <= MAX_VALIDATORS:
            raise InvalidInput("a committee has 1..1024 validators", field="validators")
        for index, validator in enumerate(validators):
            if validator.id != index:
                raise InvalidInput("validator ids must be 0..n-1 in order", field="validators")
        keys = [v.public_key for v in validators]
        if len(set(keys)) != len(keys):
            raise InvalidInput("duplicate validator public key", field="validators")
        self.epoch = epoch
        self.validators: tuple[Validator, ...] = tuple(validators)
        self.total_weight = sum(v.weight for v in validators)
        self._keys: tuple[Ed25519PublicKey, ...] = tuple(v.verifier() for v in validators)
        self._schedule = _leader_schedule(epoch, self.validators)

    @classmethod
    def from_keys(cls, epoch: int, members: Iterable[tuple[bytes, int]]) -> Committee:
        """Build from ``(public_key, weight)`` pairs in genesis order."""
        return cls(epoch, [Validator(i, pk, w) for i, (pk, w) in enumerate(members)])

    def __len__(self) -> int:
        return len(self.validators)

    def __repr__(self) -> str:
        return f"Committee(epoch={self.epoch}, size={len(self)}, total_weight={self.total_weight})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Committee):
            return NotImplemented
        return self.epoch == other.epoch and self.validators == other.validators

    def __hash__(self) -> int:
        return hash((self.epoch, self.validators))

    def weight(self, author: int) -> int:
        return self.validators[author].weight

    def weight_of(self, authors: Iterable[int]) -> int:
        """Total weight of a set of authors, each counted once."""
        return sum(self.validators[a].weight for a in set(authors))

    def public_key(self, author: int) -> Ed25519PublicKey:
        return self._keys[author]

    def contains(self, author: int) -> bool:
        return 0 <= author < len(self.validators)

    def is_quorum(self, weight: int) -> bool:
        """More than 2/3 of the total weight."""
        return 3 * weight > 2 * self.total_weight

    def is_validity(self, weight: int) -> bool:
        """More than 1/3 of the total weight (contains at least one honest member)."""
        return 3 * weight > self.total_weight

    def leader(self, round_: int) -> int:
        """The leader of ``round_``: the stake-weighted round-robin sequence of this epoch."""
        return self._schedule[round_ % len(self._schedule)]

    def index_of(self, public_key: bytes) -> int:
        for validator in self.validators:
            if validator.public_key == public_key:
                return validator.id
        raise Rejected("unknown-validator", "public key is not in the committee")

    def encode(self) -> bytes:
        """Deterministic encoding: epoch u64, count u16, then (key 32, weight u64) each."""
        out = bytearray(struct.pack(">QH", self.epoch, len(self.validators)))
        for v in self.validators:
            out += v.public_key + struct.pack(">Q", v.weight)
        return bytes(out)


def _leader_schedule(epoch: int, validators: Sequence[Validator]) -> tuple[int, ...]:
    """Smooth weighted round-robin over validators, tie order seeded by the epoch.

    Each validator leads a share of rounds proportional to its weight, spread
    evenly (nginx's smooth weighted round-robin). Weights are reduced by their
    gcd and, if the cycle would exceed 4096 rounds, scaled down (each keeps at
    least one slot), so the schedule is a short table.
    """

    divisor = 0
    for v in validators:
        divisor = gcd(divisor, v.weight)
    weights = [v.weight // divisor for v in validators]
    total = sum(weights)
    if total > _SCHEDULE_LIMIT:
        weights = [max(1, w * _SCHEDULE_LIMIT // total) for w in weights]
        total = sum(weights)
    # Seeded tie order: the validator whose hash(epoch, key) is smallest wins ties.
    seed = struct.pack(">Q", epoch)
    order = sorted(
        range(len(validators)),
        key=lambda i: hashlib.blake2b(seed + validators[i].public_key, digest_size=16).digest(),
    )
    current = [0] * len(validators)
    schedule: list[int] = []
    for _ in range(total):
        best = -1
        for i in order:
            current[i] += weights[i]
            if best < 0 or current[i] > current[best]:
                best = i
        current[best] -= total
        schedule.append(best)
    return tuple(schedule)


@dataclass(frozen=True, slots=True)
class CommitteeChange:
    """A proposed committee for ``new_epoch`` (the next epoch of the signing committee).

    ``annex`` (empty, or a 32-byte digest) binds what the driver needs beside
    keys and weights — in a ledger node the members' transport keys and
    addresses — into what the signers sign (``docs/consensus.md`` §12).
    """

    new_epoch: int
    members: tuple[tuple[bytes, int], ...]
    annex: bytes = b""

    def encode(self) -> bytes:
        """version u8, new_epoch u64, count u16, then (key 32, weight u64) per member;
        version 2 appends the 32-byte annex."""
        if self.annex and len(self.annex) != 32:
            raise InvalidInput("a committee change annex is a 32-byte digest", field="annex")
        version = _CHANGE_VERSION_ANNEX if self.annex else _CHANGE_VERSION
        out = bytearray(struct.pack(">BQH", version, self.new_epoch, len(self.members)))
        for key, weight in self.members:
            out += key + struct.pack(">Q", weight)
        return bytes(out) + self.annex

    @classmethod
    def decode(cls, data: bytes) -> CommitteeChange:
        if len(data) < 11:
            raise DecodeError("committee change too short")
        version, epoch, count = struct.unpack_from(">BQH", data, 0)
        if version not in (_CHANGE_VERSION, _CHANGE_VERSION_ANNEX):
            raise DecodeError(f"unknown committee change version {version}")
        annex_len = 32 if version == _CHANGE_VERSION_ANNEX else 0
        if len(data) != 11 + 40 * count + annex_len:
            raise DecodeError("committee change length does not match its member count")
        members = []
        for i in range(count):
            offset = 11 + 40 * i
            key = bytes(data[offset : offset + 32])
            (weight,) = struct.unpack_from(">Q", data, offset + 32)
            members.append((key, weight))
        change = cls(epoch, tuple(members), bytes(data[len(data) - annex_len :]) if annex_len
                     else b"")
        change.committee()  # validates members (count, weights, unique keys)
        return change

    def digest(self) -> bytes:
        return hashlib.blake2b(self.encode(), digest_size=32).digest()

    def committee(self) -> Committee:
        return Committee.from_keys(self.new_epoch, self.members)


@dataclass(frozen=True, slots=True)
class CommitteeChangeSignature:
    """One current-committee member's Ed25519 signature over a change."""

    signer: int
    signature: bytes = field(repr=False)


def _change_message(change: CommitteeChange) -> bytes:
    return _CHANGE_DOMAIN + change.digest()


def sign_committee_change(
    change: CommitteeChange, signer: int, key: Ed25519PrivateKey
) -> CommitteeChangeSignature:
    return CommitteeChangeSignature(signer, key.sign(_change_message(change)))


def verify_committee_change(
    current: Committee,
    change: CommitteeChange,
    signatures: Sequence[CommitteeChangeSignature],
) -> Committee:
    """Check a committee change against the current committee; return the new committee.

    Raises ``Rejected`` (``epoch``, ``signer``, ``duplicate-signer``,
    ``no-supermajority``) or ``InvalidSignature``. Every signature must verify;
    the distinct signers must hold more than 2/3 of the current weight.
    """
    if change.new_epoch != current.epoch + 1:
        raise Rejected(
            "epoch",
            f"change targets epoch {change.new_epoch}, expected {current.epoch + 1}",
        )
    message = _change_message(change)
    seen: set[int] = set()
    for sig in signatures:
        if not current.contains(sig.signer):
            raise Rejected("signer", f"signer {sig.signer} is not in the committee")
        if sig.signer in seen:
            raise Rejected("duplicate-signer", f"signer {sig.signer} signed twice")
        seen.add(sig.signer)
        try:
            current.public_key(sig.signer).verify(sig.signature, message)
        except _CryptoInvalidSignature:
            raise InvalidSignature(
                f"committee change signature of validator {sig.signer} does not verify",
                signer=sig.signer,
            ) from None
    if not current.is_quorum(current.weight_of(seen)):
        raise Rejected("no-supermajority", "signers hold 2/3 of the weight or less")
    return change.committee()
