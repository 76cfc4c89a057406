"""One simulated validator's state, and the signature checks the simulation uses.

A :class:`SimNode` is what a network node keeps around its ``Core``: its
persisted blocks per epoch (crash-recovery replays them), its commits and
when they happened, its retired cores (to answer requests of earlier
epochs), the snapshot it resumed from (``docs/consensus.md`` §7.5) and its
own ids not finalized yet. Signatures are checked once per block
(:class:`VerifyCache`) or, in the closed world of one simulation, by a
registry of the signatures it made (:class:`SignedRegistry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from simtrust.errors import InvalidSignature
from simtrust.ledger.consensus import (
    Block,
    CommittedSubDag,
    Core,
)
from simtrust.testing.ledger._sim_model import Behaviour

__all__ = ["SignedRegistry", "SimNode", "Snapshot", "VerifyCache"]


class VerifyCache:
    """Ed25519 verification once per (block, signature) for the whole simulation."""

    __slots__ = ("_ok",)

    def __init__(self) -> None:
        self._ok: dict[bytes, bytes] = {}

    def __call__(self, block: Block, key: Ed25519PublicKey) -> None:
        if self._ok.get(block.digest) == block.signature:
            return
        block.verify_signature(key)
        self._ok[block.digest] = block.signature


class SignedRegistry:
    """Closed-world signature check: the block's signature is one the simulation made
    with the author's key (every key lives in the simulation), at the cost of a dict
    lookup instead of an Ed25519 verification."""

    __slots__ = ("_signed",)

    def __init__(self) -> None:
        self._signed: dict[bytes, tuple[int, bytes]] = {}

    def register(self, block: Block) -> Block:
        self._signed[block.digest] = (block.author, block.signature)
        return block

    def __call__(self, block: Block, key: Ed25519PublicKey) -> None:
        if self._signed.get(block.digest) != (block.author, block.signature):
            raise InvalidSignature("block signature was not made by its author")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A peer's committed point in one epoch: its commits (``approximate``: indices of
    those its own resumed core made, §7.5) and what ``Core.resume`` needs."""

    epoch: int
    commits: tuple[CommittedSubDag, ...]
    approximate: frozenset[int]
    last_decided_round: int
    gc_round: int


class SimNode:
    """One validator of the simulation: its core, its store and what it has seen."""

    __slots__ = (
        "alive",
        "approximate",
        "bases",
        "behaviour",
        "busy_until",
        "commit_times",
        "commits",
        "core",
        "epoch",
        "epoch_start",
        "extra",
        "gc_seen",
        "generation",
        "id",
        "installed",
        "key",
        "last_proposal",
        "peak",
        "retired",
        "stores",
        "tail_asked",
        "targets",
        "unfinalized",
        "wake",
    )

    def __init__(self, node_id: int, key: Ed25519PrivateKey, behaviour: Behaviour) -> None:
        self.id = node_id
        self.key = key
        self.behaviour: Behaviour = behaviour
        self.core: Core | None = None
        self.alive = behaviour != "silent"
        self.generation = 0
        self.epoch = 0
        self.stores: list[list[Block]] = [[]]
        self.retired: list[Core] = []  # cores of past epochs, to answer requests
        self.tail_asked = -math.inf
        self.commits: list[CommittedSubDag] = []
        self.commit_times: list[float] = []
        self.extra: dict[bytes, Block] = {}
        self.last_proposal = 0.0
        self.targets: tuple[int, ...] = ()
        self.wake: float | None = None
        self.busy_until = 0.0
        # Own ids not finalized yet -> round of the last own block carrying
        # them; it survives crashes, as a ledger's unfinalized messages do.
        self.unfinalized: dict[bytes, int] = {}
        self.epoch_start = [0]  # position in ``commits`` of each epoch's first commit
        # epoch -> (snapshot, last round signed before it): the core of that
        # epoch restarts from Core.resume instead of from round 1.
        self.bases: dict[int, tuple[Snapshot, int]] = {}
        self.approximate: set[int] = set()
        self.installed: set[int] = set()
        # gc_round of the core before its next commit, and the last commit
        # round of the snapshot it resumed from (cones are exact above it)
        self.gc_seen = (0, -1)
        self.peak: dict[str, int] = {}
