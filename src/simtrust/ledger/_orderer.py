"""The ordering seam: who decides the finalized order, and how ledger state consumes it.

An :class:`Orderer` sees every message once it is solid and emits committed
sub-DAGs ``(leader, round, ordered_message_ids)``, the output shape of a
Bullshark/Mysticeti commit rule (DESIGN.md "Ordering and finality"). The node
applies each committed id once, in order, to the registered
:class:`FinalizedHandler` objects — the only way ledger state (UTXO, DIDs,
anchors, contracts) changes. :class:`SoloOrderer` is the one-validator case:
every round commits everything that became solid since the last round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from simtrust.ledger._codec import Message, Payload

__all__ = [
    "CommittedSubDag",
    "CommittedSubDagLike",
    "FinalizedHandler",
    "FinalizedMessage",
    "Orderer",
    "SoloOrderer",
]


@runtime_checkable
class CommittedSubDagLike(Protocol):
    """What a commit rule outputs (``simtrust.ledger.consensus.CommittedSubDag`` fits)."""

    @property
    def leader(self) -> bytes: ...

    @property
    def round(self) -> int: ...

    @property
    def ordered_message_ids(self) -> Sequence[bytes]: ...


@dataclass(frozen=True, slots=True)
class CommittedSubDag:
    """One commit of the solo orderer."""

    leader: bytes
    round: int
    ordered_message_ids: tuple[bytes, ...]


class FinalizedMessage:
    """A message as ledger-state handlers see it, in finalized order.

    ``message_id``, ``issuer`` (32-byte Ed25519 key), ``issued_at`` (aware UTC
    datetime), ``payload_type`` (name such as ``"identity"``), ``payload``
    (the payload bytes) and ``order`` (position in the finalized order, from 1)
    are the stable contract; ``body`` is the node's decoded payload and
    ``round`` the commit round.
    """

    __slots__ = ("body", "issued_at_ms", "issuer", "message_id", "order", "payload",
                 "payload_type", "round")

    def __init__(
        self,
        message: Message,
        payload_name: str,
        order: int,
        round_: int,
    ) -> None:
        self.message_id: bytes = message.id
        self.issuer: bytes = message.issuer
        self.issued_at_ms: int = message.issued_at
        self.payload_type: str = payload_name
        self.payload: bytes = message.payload
        self.body: Payload = message.body
        self.order: int = order
        self.round: int = round_

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at_ms / 1000, tz=UTC)

    def __repr__(self) -> str:
        return (
            f"FinalizedMessage({self.message_id.hex()[:16]}…, {self.payload_type},"
            f" order={self.order})"
        )


class FinalizedHandler(Protocol):
    """Applies finalized messages of one payload type to some ledger state.

    ``apply`` runs inside the node's store transaction, in finalized order. It
    raises :class:`simtrust.errors.Rejected` (before writing anything) when
    the message has no effect ("white flag": the message stays in the tangle,
    its ledger effect is void, and the reason is recorded).
    """

    def apply(self, fm: FinalizedMessage) -> None: ...


class Orderer(ABC):
    """Decides the finalized order; swapped for the committee in consortium mode."""

    @abstractmethod
    def restore(self, last_round: int, unfinalized: Sequence[Message]) -> None:
        """Resume after a restart: the last committed round, stored-but-unfinalized messages."""

    @abstractmethod
    def on_solid(self, message: Message) -> None:
        """A message became solid (parents before children), inside the ingest transaction."""

    @abstractmethod
    def take_commits(self) -> list[CommittedSubDagLike]:
        """Commits decided since the last call, in commit order."""


class SoloOrderer(Orderer):
    """One validator: each call to :meth:`take_commits` is a round, and every round commits.

    The linearization is the solidification order, which is topological
    (a message is solid only after all its parents are).
    """

    __slots__ = ("_pending", "_round", "leader")

    def __init__(self, leader: bytes) -> None:
        self.leader = leader
        self._round = 0
        self._pending: list[bytes] = []

    def restore(self, last_round: int, unfinalized: Sequence[Message]) -> None:
        self._round = last_round
        self._pending = [m.id for m in unfinalized]

    def on_solid(self, message: Message) -> None:
        self._pending.append(message.id)

    def take_commits(self) -> list[CommittedSubDagLike]:
        if not self._pending:
            return []
        self._round += 1
        commit = CommittedSubDag(self.leader, self._round, tuple(self._pending))
        self._pending = []
        return [commit]
