"""Committee changes of a consortium network: the signed document, its ledger payload, epochs.

``docs/network.md`` ("Committee changes") and ``docs/consensus.md`` §12. A
change names the committee of the next epoch as genesis names epoch 0's —
per validator its block key, transport (node) key, weight and P2P address —
and carries Ed25519 signatures of current members over the consensus
``CommitteeChange`` (keys and weights) whose annex is the BLAKE2b-256 of the
canonical (RFC 8785) validator list, so the signers vouch for node keys and
addresses too. It travels as a tagged-data message with the tag
:data:`COMMITTEE_CHANGE_TAG`; the node that finalizes it checks it with
``verify_committee_change`` against the committee of its current epoch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from simtrust.errors import DecodeError, InvalidInput, Rejected
from simtrust.ledger import (
    Ed25519Signer,
    PayloadType,
    encode_tagged_data,
    network_id_from_name,
    signing_bytes,
)
from simtrust.ledger.consensus import (
    Committee,
    CommitteeChange,
    CommitteeChangeSignature,
    sign_committee_change,
    verify_committee_change,
)
from simtrust.ledger.net._committee_orderer import MIGRATIONS
from simtrust.ledger.net._genesis import NetworkGenesis, NodeKeys, ValidatorEntry
from simtrust.store import Database, apply_migrations

__all__ = [
    "CHANGE_FORMAT",
    "COMMITTEE_CHANGE_TAG",
    "EpochCommittee",
    "EpochStore",
    "SignedCommitteeChange",
    "change_message",
    "sign_change",
]

COMMITTEE_CHANGE_TAG = b"simtrust/committee-change/v1"
CHANGE_FORMAT = "simtrust-committee-change/1"
_MAX_DOCUMENT = 24 * 1024

@dataclass(frozen=True, slots=True)
class EpochCommittee:
    """The committee of one epoch with what the transport needs (keys, addresses)."""

    epoch: int
    validators: tuple[ValidatorEntry, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.epoch < 2**63:
            raise InvalidInput("epoch out of range")
        if not self.validators:
            raise InvalidInput("a committee has at least one validator")
        for i, v in enumerate(self.validators):
            if v.id != i:
                raise InvalidInput("validator ids must be 0..n-1 in order")
        for attr in ("public_key", "node_key", "p2p"):
            values = [getattr(v, attr) for v in self.validators]
            if len(set(values)) != len(values):
                raise InvalidInput(f"duplicate validator {attr}")
        self.committee()  # weights in range

    @classmethod
    def of_genesis(cls, genesis: NetworkGenesis) -> EpochCommittee:
        return cls(0, genesis.validators)

    def committee(self) -> Committee:
        return Committee.from_keys(self.epoch, [(v.public_key, v.weight) for v in self.validators])

    def validators_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.validators]

    def annex(self) -> bytes:
        """BLAKE2b-256 of the canonical validator list: what the signers vouch for."""
        return hashlib.blake2b(rfc8785.dumps(self.validators_json()), digest_size=32).digest()

    def change(self) -> CommitteeChange:
        return CommitteeChange(self.epoch, tuple((v.public_key, v.weight) for v in self.validators),
                               self.annex())

    def index_of(self, public_key: bytes) -> int | None:
        for v in self.validators:
            if v.public_key == public_key:
                return v.id
        return None

    def encode(self) -> bytes:
        return rfc8785.dumps({"epoch": self.epoch, "validators": self.validators_json()})

    @classmethod
    def from_json(cls, data: Any) -> EpochCommittee:
        if not isinstance(data, dict):
            raise InvalidInput("an epoch committee is an object")
        epoch = data.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise InvalidInput("epoch must be an integer")
        raw = data.get("validators")
        if not isinstance(raw, list) or not raw:
            raise InvalidInput("validators must be a non-empty list")
        return cls(epoch, tuple(ValidatorEntry.from_json(v, i) for i, v in enumerate(raw)))

    @classmethod
    def decode(cls, body: bytes) -> EpochCommittee:
        return cls.from_json(json.loads(body))


@dataclass(frozen=True, slots=True)
class SignedCommitteeChange:
    """A next-epoch committee and current members' signatures over it."""

    target: EpochCommittee
    signatures: tuple[CommitteeChangeSignature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CHANGE_FORMAT,
            "epoch": self.target.epoch,
            "validators": self.target.validators_json(),
            "signatures": [{"signer": s.signer, "signature": s.signature.hex()}
                           for s in self.signatures],
        }

    def encode(self) -> bytes:
        """Canonical JSON (RFC 8785): the tagged-data body of the ledger message."""
        return rfc8785.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Any) -> SignedCommitteeChange:
        if not isinstance(data, dict) or data.get("format") != CHANGE_FORMAT:
            raise InvalidInput(f"not a committee change (format must be {CHANGE_FORMAT!r})")
        target = EpochCommittee.from_json(data)
        raw = data.get("signatures")
        if not isinstance(raw, list):
            raise InvalidInput("signatures must be a list")
        sigs = []
        for item in raw:
            if not isinstance(item, dict):
                raise InvalidInput("a signature is an object")
            signer = item.get("signer")
            value = item.get("signature")
            if not isinstance(signer, int) or isinstance(signer, bool) or signer < 0:
                raise InvalidInput("signer must be a validator index")
            if not isinstance(value, str):
                raise InvalidInput("signature must be hex")
            try:
                sig = bytes.fromhex(value)
            except ValueError as exc:
                raise InvalidInput("signature must be hex") from exc
            if len(sig) != 64:
                raise InvalidInput("an Ed25519 signature is 64 bytes")
            sigs.append(CommitteeChangeSignature(signer, sig))
        return cls(target, tuple(sigs))

    @classmethod
    def decode(cls, data: bytes) -> SignedCommitteeChange:
        """Parse untrusted bytes; raises ``DecodeError`` or ``InvalidInput``."""
        if len(data) > _MAX_DOCUMENT:
            raise DecodeError("committee change document too large")
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise DecodeError("committee change is not JSON") from exc
        return cls.from_json(parsed)

    def verify(self, current: Committee) -> Committee:
        """The new committee; raises as ``verify_committee_change`` does."""
        return verify_committee_change(current, self.target.change(), self.signatures)

    def add(self, current: EpochCommittee, keys: Sequence[NodeKeys]) -> SignedCommitteeChange:
        """Also signed by ``keys`` (members of ``current``); one signature per member."""
        change = self.target.change()
        sigs = {s.signer: s for s in self.signatures}
        for k in keys:
            index = current.index_of(k.public_key)
            if index is None:
                raise InvalidInput(f"key of validator {k.validator_id} is not in epoch "
                                   f"{current.epoch}'s committee")
            sigs[index] = sign_committee_change(change, index, k.block_key())
        return SignedCommitteeChange(self.target, tuple(sigs[i] for i in sorted(sigs)))


def sign_change(
    current: EpochCommittee, target: EpochCommittee, keys: Sequence[NodeKeys]
) -> SignedCommitteeChange:
    """``target`` (epoch ``current.epoch + 1``) signed by the current members holding ``keys``."""
    if target.epoch != current.epoch + 1:
        raise Rejected("epoch", f"the change must name epoch {current.epoch + 1}")
    return SignedCommitteeChange(target, ()).add(current, keys)


def change_message(
    network: str,
    change: SignedCommitteeChange,
    issuer: Ed25519Signer,
    *,
    issued_at_ms: int,
    parents: Sequence[bytes],
) -> bytes:
    """The signed ledger message (tagged data) that carries ``change``; anyone may issue it."""
    payload = encode_tagged_data(COMMITTEE_CHANGE_TAG, change.encode())
    body = signing_bytes(network_id_from_name(network), issuer.public_key, issued_at_ms,
                         parents, PayloadType.TAGGED_DATA, payload)
    return body + issuer.sign(body)


class EpochStore:
    """Epochs this node switched to: the committee and the ledger round offset of each."""

    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db
        apply_migrations(db, MIGRATIONS)

    def latest(self) -> tuple[EpochCommittee, int] | None:
        row = self.db.query_one(
            "SELECT body, round_offset FROM ledger_net_epochs ORDER BY epoch DESC LIMIT 1")
        if row is None:
            return None
        return EpochCommittee.decode(bytes(row[0])), int(row[1])

    def record(self, committee: EpochCommittee, round_offset: int) -> None:
        """Inside the caller's transaction (the one that finalizes the change)."""
        self.db.execute(
            "INSERT INTO ledger_net_epochs (epoch, round_offset, body) VALUES (?, ?, ?)",
            (committee.epoch, round_offset, committee.encode()),
        )
