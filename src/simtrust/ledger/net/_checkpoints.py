"""Checkpoints: commit-chain heads signed by the committee, and their certificates.

``docs/network.md`` ("Snapshot sync"). After applying commit ``height`` when
``height`` is a multiple of the genesis ``checkpoint_interval``, or when that
commit ends an epoch, every member signs ``tag ‖ network id ‖ epoch ‖ height
‖ ledger round ‖ ends-epoch ‖ chain head`` with its block key and sends the
vote to its peers. Votes of members holding more than 2/3 of the epoch's
weight (the quorum of ``docs/consensus.md`` §2) on the head this node computed
itself form a certificate. With at most 1/3 faulty weight a certified head is
the one every honest validator computed, which is what lets a node that was
away install finalized history from any single peer after checking it
against a certificate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simtrust.errors import DecodeError, InvalidSignature, Rejected
from simtrust.ledger import verify_ed25519
from simtrust.ledger.consensus import Committee
from simtrust.ledger.net._committee_orderer import MIGRATIONS
from simtrust.store import Database, apply_migrations

__all__ = [
    "CHECKPOINT_TAG",
    "Checkpoint",
    "CheckpointCert",
    "CheckpointStore",
    "CheckpointVotes",
    "sign_checkpoint",
    "verify_signature",
]

CHECKPOINT_TAG = b"simtrust/checkpoint/v1\x00"
_BODY = struct.Struct(">QQQB32s")
_SIG = struct.Struct(">H64s")
_MAX_SIGNERS = 1024


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The commit-chain head after commit ``height`` (ledger round ``round``) of ``epoch``."""

    epoch: int
    height: int
    round: int
    ends_epoch: bool
    chain: bytes

    def body(self) -> bytes:
        return _BODY.pack(self.epoch, self.height, self.round, int(self.ends_epoch), self.chain)

    def signing_bytes(self, network_id: bytes) -> bytes:
        return CHECKPOINT_TAG + network_id + self.body()


@dataclass(frozen=True, slots=True)
class CheckpointCert:
    """A checkpoint with signatures ``(validator index, Ed25519 signature)``.

    A single signature is a vote; a quorum of them, a certificate.
    """

    checkpoint: Checkpoint
    signatures: tuple[tuple[int, bytes], ...]

    def encode(self) -> bytes:
        parts = [self.checkpoint.body(), struct.pack(">H", len(self.signatures))]
        parts.extend(_SIG.pack(i, s) for i, s in self.signatures)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> CheckpointCert:
        """Strict decoding of untrusted bytes (``DecodeError``)."""
        head = _BODY.size + 2
        if len(data) < head:
            raise DecodeError("checkpoint truncated")
        epoch, height, rnd, ends, chain = _BODY.unpack_from(data, 0)
        if ends > 1:
            raise DecodeError("checkpoint ends-epoch flag must be 0 or 1")
        if height < 1 or epoch >= 2**63 or height >= 2**63 or rnd >= 2**63:
            raise DecodeError("checkpoint height, epoch or round out of range")
        (count,) = struct.unpack_from(">H", data, _BODY.size)
        if count > _MAX_SIGNERS or len(data) != head + count * _SIG.size:
            raise DecodeError("checkpoint signature list does not match its count")
        sigs = tuple(_SIG.unpack_from(data, head + k * _SIG.size) for k in range(count))
        if len({i for i, _ in sigs}) != count:
            raise DecodeError("checkpoint names a signer twice")
        return cls(Checkpoint(epoch, height, rnd, bool(ends), chain), sigs)

    def verify(self, committee: Committee, network_id: bytes, *, quorum: bool = True) -> None:
        """Raise unless every signature is a member's and (with ``quorum``) they hold a quorum.

        ``Rejected`` (``epoch``, ``signer``, ``no-quorum``) or ``InvalidSignature``.
        """
        cp = self.checkpoint
        if cp.epoch != committee.epoch:
            raise Rejected("epoch",
                           f"checkpoint of epoch {cp.epoch}, committee of {committee.epoch}")
        message = cp.signing_bytes(network_id)
        for signer, sig in self.signatures:
            if not committee.contains(signer):
                raise Rejected("signer", f"validator {signer} is not in the committee")
            key = committee.validators[signer].public_key
            verify_ed25519(key, sig, message)
        weight = committee.weight_of(i for i, _ in self.signatures)
        if quorum and not committee.is_quorum(weight):
            raise Rejected("no-quorum", "the signers hold 2/3 of the weight or less")


def sign_checkpoint(cp: Checkpoint, key: Ed25519PrivateKey, index: int,
                    network_id: bytes) -> CheckpointCert:
    """Validator ``index``'s vote for ``cp``, signed with its block key."""
    return CheckpointCert(cp, ((index, key.sign(cp.signing_bytes(network_id))),))


class CheckpointVotes:
    """Votes received per (height, head) until a quorum on this node's own head certifies it.

    Bounded: votes are kept for at most ``max_heights`` heights; a vote for a
    height this node has not reached waits (peers run a little ahead).
    """

    __slots__ = ("_own", "_votes", "max_heights")

    def __init__(self, max_heights: int = 64) -> None:
        self.max_heights = max_heights
        self._votes: dict[int, dict[Checkpoint, dict[int, bytes]]] = {}
        self._own: dict[int, Checkpoint] = {}

    def add(self, cert: CheckpointCert) -> None:
        """Signatures already verified by the caller."""
        cp = cert.checkpoint
        if cp.height not in self._votes and len(self._votes) >= self.max_heights:
            oldest = min(self._votes)
            if oldest > cp.height:
                return
            self._forget(oldest)
        self._votes.setdefault(cp.height, {}).setdefault(cp, {}).update(cert.signatures)

    def own(self, cp: Checkpoint) -> None:
        """The checkpoint this node computed at ``cp.height``."""
        self._own[cp.height] = cp
        self._votes.setdefault(cp.height, {})

    def certified(self, committee: Committee) -> list[CheckpointCert]:
        """Certificates now complete on this node's own heads (each returned once)."""
        done: list[CheckpointCert] = []
        for height, cp in list(self._own.items()):
            sigs = self._votes.get(height, {}).get(cp, {})
            if cp.epoch == committee.epoch and committee.is_quorum(committee.weight_of(sigs)):
                done.append(CheckpointCert(cp, tuple(sorted(sigs.items()))))
                self._forget(height)
        return done

    def conflicting(self, committee: Committee) -> Iterable[CheckpointCert]:
        """Quorums on a head other than this node's at the same height (divergence)."""
        for height, cp in self._own.items():
            for other, sigs in self._votes.get(height, {}).items():
                if other != cp and committee.is_quorum(committee.weight_of(sigs)):
                    yield CheckpointCert(other, tuple(sorted(sigs.items())))

    def _forget(self, height: int) -> None:
        self._votes.pop(height, None)
        self._own.pop(height, None)

    def prune_below(self, height: int) -> None:
        for h in [h for h in self._votes if h < height]:
            self._forget(h)
        for h in [h for h in self._own if h < height]:
            self._own.pop(h, None)


class CheckpointStore:
    """Certificates this node formed or verified, by height."""

    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db
        apply_migrations(db, MIGRATIONS)

    def record(self, cert: CheckpointCert) -> None:
        cp = cert.checkpoint
        with self.db.transaction():
            if self.get(cp.height) is None:
                self.db.execute(
                    "INSERT INTO ledger_net_checkpoints (height, epoch, ends_epoch, cert)"
                    " VALUES (?, ?, ?, ?)",
                    (cp.height, cp.epoch, int(cp.ends_epoch), cert.encode()))

    def get(self, height: int) -> CheckpointCert | None:
        row = self.db.query_one(
            "SELECT cert FROM ledger_net_checkpoints WHERE height = ?", (height,))
        return None if row is None else CheckpointCert.decode(bytes(row[0]))

    def latest(self) -> CheckpointCert | None:
        row = self.db.query_one(
            "SELECT cert FROM ledger_net_checkpoints ORDER BY height DESC LIMIT 1")
        return None if row is None else CheckpointCert.decode(bytes(row[0]))

    def set_resume(self, epoch: int, round_: int, commits: int) -> None:
        """Where this node's core of ``epoch`` starts after a snapshot sync (its last
        commit's round in the epoch and the epoch's commit count)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM ledger_net_resume WHERE epoch = ?", (epoch,))
            self.db.execute(
                "INSERT INTO ledger_net_resume (epoch, round, commits) VALUES (?, ?, ?)",
                (epoch, round_, commits))

    def resume(self, epoch: int) -> tuple[int, int] | None:
        row = self.db.query_one(
            "SELECT round, commits FROM ledger_net_resume WHERE epoch = ?", (epoch,))
        return None if row is None else (int(row[0]), int(row[1]))

    def for_sync(self, after: int, limit: int = 64) -> list[CheckpointCert]:
        """What a node at height ``after`` needs: the epoch-ending certificates above it
        (each epoch's committee signs the change to the next) and the latest one."""
        rows = self.db.query(
            "SELECT cert FROM ledger_net_checkpoints WHERE height > ? AND ends_epoch = 1"
            " ORDER BY height LIMIT ?", (after, limit))
        found = [CheckpointCert.decode(bytes(r[0])) for r in rows]
        latest = self.latest()
        if latest is not None and latest.checkpoint.height > after and (
                not found or found[-1].checkpoint.height != latest.checkpoint.height):
            found.append(latest)
        return found


def verify_signature(cert: CheckpointCert, committee: Committee, network_id: bytes) -> bool:
    """Whether ``cert`` is a valid vote (or certificate) of ``committee``: no exception."""
    try:
        cert.verify(committee, network_id, quorum=False)
    except (Rejected, InvalidSignature):
        return False
    return True
