"""Values of the ledger node: its rules and limits, submit results, state snapshots, commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from simtrust.errors import Rejected
from simtrust.ledger._chain import chain_step
from simtrust.ledger._codec import message_id, network_id_from_name

__all__ = ["CommitRecord", "LedgerConfig", "StateSnapshot", "SubmitResult"]


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Node rules and limits; defaults are the values ``docs/ledger.md`` specifies."""

    network: str = "simtrust-local"
    max_parent_age_ms: int = 600_000
    tip_max_age_ms: int = 300_000
    max_future_skew_ms: int = 30_000
    max_past_skew_ms: int = 600_000
    quota_rate: float = 50.0
    quota_burst: int = 500
    buffer_max: int = 10_000
    buffer_max_age_ms: int = 60_000
    parents_to_select: int = 4
    chunk: int = 1024
    workers: int = 0
    pool_threshold: int = 512
    inflight: int = 4

    @property
    def network_id(self) -> bytes:
        return network_id_from_name(self.network)


class SubmitResult(NamedTuple):
    """Outcome of one submitted message.

    ``status``: ``accepted`` (stored and committed), ``duplicate`` (already
    stored), ``pending`` (waiting for the ``missing`` parents, not yet
    stored), ``rejected`` (``reason`` names the rule).
    """

    status: str
    message_id: bytes | None
    reason: str | None = None
    detail: str | None = None
    missing: tuple[bytes, ...] = ()

    def raise_if_rejected(self) -> SubmitResult:
        if self.status == "rejected":
            raise Rejected(self.reason or "rejected", self.detail or "message rejected")
        return self

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "message_id": self.message_id.hex() if self.message_id else None,
        }
        if self.reason:
            out["reason"] = self.reason
            out["detail"] = self.detail
        if self.missing:
            out["missing"] = [m.hex() for m in self.missing]
        return out


class StateSnapshot(NamedTuple):
    """What must be identical after a restart and after a recomputation."""

    messages: int
    finalized: int
    utxo_hash: str
    tips_hash: str
    order_hash: str
    commit_height: int
    commit_chain: str


class CommitRecord(NamedTuple):
    """One applied commit as a peer serves it to a node syncing finalized history.

    ``entries`` are (raw message, status, reason) in finalized order; the
    message ids are the hashes of the raw bytes, so a record cannot name one
    message and carry another (``docs/network.md``, "Snapshot sync").
    """

    height: int
    round: int
    leader: bytes
    entries: tuple[tuple[bytes, int, str | None], ...]

    def chain_after(self, previous: bytes) -> bytes:
        return chain_step(previous, self.round, self.leader,
                          ((message_id(raw), st, r) for raw, st, r in self.entries))
