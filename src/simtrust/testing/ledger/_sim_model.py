"""What a consensus simulation is given and what it returns (``docs/consensus.md`` §9).

The scenario (:class:`SimConfig`: validators, latencies, loss, partitions,
crashes, epoch changes, byzantine behaviours), the result (:class:`SimResult`)
and the safety check every run ends with (:func:`check_prefixes`: the honest
nodes' finalized orders are prefixes of one another, §6). The simulator
itself is :mod:`.consensus_sim`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from simtrust.errors import SimtrustError
from simtrust.ledger.consensus import (
    CommittedSubDag,
)

__all__ = [
    "Behaviour",
    "Crash",
    "EpochChange",
    "ForkDetectedError",
    "Latency",
    "Partition",
    "SimConfig",
    "SimResult",
    "check_prefixes",
]

Behaviour = Literal["honest", "equivocate", "withhold", "lie", "silent"]


class ForkDetectedError(SimtrustError):
    """Two honest nodes finalized sequences where neither is a prefix of the other."""

    code = "fork-detected"
    status = 500
    title = "Consensus safety violated"


@dataclass(frozen=True, slots=True)
class Latency:
    """One-way link delay in ms: ``fixed``, ``uniform`` (a..b) or ``lognormal``
    (median a, shape b), never below 0.1 ms."""

    kind: Literal["fixed", "uniform", "lognormal"]
    a: float
    b: float = 0.0

    @classmethod
    def fixed(cls, ms: float) -> Latency:
        return cls("fixed", ms)

    @classmethod
    def uniform(cls, low_ms: float, high_ms: float) -> Latency:
        return cls("uniform", low_ms, high_ms)

    @classmethod
    def lognormal(cls, median_ms: float, sigma: float) -> Latency:
        return cls("lognormal", median_ms, sigma)

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        else:
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        return max(0.1, value)


@dataclass(frozen=True, slots=True)
class Partition:
    """From ``start_ms`` until ``end_ms`` only nodes of one group reach each other.
    Nodes listed in no group form one more group together."""

    start_ms: float
    end_ms: float
    groups: tuple[frozenset[int], ...]

    def blocks(self, now: float, a: int, b: int) -> bool:
        if not self.start_ms <= now < self.end_ms:
            return False
        return self._group(a) != self._group(b)

    def _group(self, node: int) -> int:
        for index, group in enumerate(self.groups):
            if node in group:
                return index
        return -1


@dataclass(frozen=True, slots=True)
class Crash:
    """Node ``node`` stops at ``at_ms`` (losing all memory but its persisted blocks)
    and, unless ``restart_ms`` is None, restarts then from them."""

    node: int
    at_ms: float
    restart_ms: float | None = None


@dataclass(frozen=True, slots=True)
class EpochChange:
    """Right after commit ``at_commit`` (counted from 0) of epoch 0 every node moves to
    epoch 1, whose committee gives node ``i`` weight ``weights[i]`` (nodes left out
    leave the committee and follow as observers). The change is a
    ``CommitteeChange`` signed by every non-silent member of epoch 0, and each node
    checks it with ``verify_committee_change`` before switching."""

    at_commit: int
    weights: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One run. Times in virtual ms. ``byzantine`` maps node → behaviour;
    ``leader_timeout_ms`` is each core's wait for a round's leader, ``tick_ms``
    the period of re-sending the latest own block and retrying missing blocks,
    ``min_round_ms`` the least time between two proposals of a node,
    ``ids_per_block`` the fresh message ids in every proposal, ``wire`` passes
    every delivered block through ``encode``/``decode``, ``verify_signatures``
    chooses Ed25519 (True) or the closed-world check (False, see
    ``docs/decisions/consensus-simulator-signatures.md``), ``block_cost_ms``
    is the CPU time a node spends per received block (one CPU per node:
    messages queue behind each other); ``epoch_change`` moves every node to a
    new committee at one commit; ``gc_depth`` is every core's garbage collection
    depth (None: keep every round), and with it an honest node proposes again
    the ids of its blocks that fell below its core's ``gc_round`` unfinalized,
    and a node that needs blocks its peers already forgot takes a snapshot of
    a peer's commits and resumes from it (``Core.resume``)."""

    validators: int = 4
    seed: int = 0
    duration_ms: float = 3000.0
    weights: tuple[int, ...] | None = None
    latency: Latency = field(default_factory=lambda: Latency.uniform(20.0, 80.0))
    loss: float = 0.0
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    byzantine: Mapping[int, Behaviour] = field(default_factory=dict)
    leader_timeout_ms: int = 250
    min_round_ms: float = 1.0
    tick_ms: float = 150.0
    ids_per_block: int = 2
    wire: bool = False
    verify_signatures: bool = True
    max_response_blocks: int = 4000
    block_cost_ms: float = 0.0
    epoch_change: EpochChange | None = None
    gc_depth: int | None = None


@dataclass(slots=True)
class SimResult:
    """What a run produced: each node's commits (with the virtual time of each),
    message finality latencies at honest nodes, and counters. ``honest`` are the
    validators without byzantine behaviour (crashed ones included), ``alive``
    those running at the end; ``proposed`` maps each honest node to the ids it
    proposed (first proposal only) and the virtual time each was submitted;
    ``approximate`` lists, per node, the positions of commits made by a resumed
    core whose ``blocks`` may also name blocks finalized before its resume point
    (§7.5), and ``installed`` the positions of commits a node took from a peer's
    snapshot instead of making them; with garbage collection, ``peak_memory`` is the most of each
    ``Core.memory_stats`` figure a node's core held at once, and ``gc_rounds``
    each core's ``gc_round`` at the end."""

    config: SimConfig
    honest: frozenset[int]
    alive: frozenset[int]
    commits: dict[int, list[CommittedSubDag]]
    commit_times: dict[int, list[float]]
    finality_ms: list[float]
    stats: dict[str, int]
    rounds: dict[int, int]
    epochs: dict[int, int]
    proposed: dict[int, dict[bytes, float]] = field(default_factory=dict)
    approximate: dict[int, frozenset[int]] = field(default_factory=dict)
    installed: dict[int, frozenset[int]] = field(default_factory=dict)
    peak_memory: dict[int, dict[str, int]] = field(default_factory=dict)
    gc_rounds: dict[int, int] = field(default_factory=dict)

    def commits_after(self, node: int, time_ms: float) -> int:
        """Commits the node's own core made at or after ``time_ms`` (not installed ones)."""
        installed = self.installed.get(node, frozenset())
        return sum(
            1 for i, t in enumerate(self.commit_times[node]) if t >= time_ms and i not in installed
        )

    def check_safety(self) -> None:
        """Raise ``ForkDetectedError`` unless all honest sequences are prefixes of one another
        and no restarted node re-derived a different history."""
        if self.stats.get("replay_mismatch", 0):
            raise ForkDetectedError("a restarted node re-derived a different commit sequence")
        nodes = sorted(self.honest)
        check_prefixes(
            [self.commits[n] for n in nodes],
            [self.approximate.get(n, frozenset()) for n in nodes],
        )


def _applied(seq: Sequence[CommittedSubDag]) -> list[bytes]:
    """The ids in the order a ledger applies them: each id once, at its first finalization."""
    seen: set[bytes] = set()
    order: list[bytes] = []
    for sub in seq:
        for mid in sub.message_ids:
            if mid not in seen:
                seen.add(mid)
                order.append(mid)
    return order


def check_prefixes(
    sequences: Sequence[Sequence[CommittedSubDag]],
    approximate: Sequence[frozenset[int]] = (),
) -> None:
    """Raise ``ForkDetectedError`` unless every pair of commit sequences is prefix-related,
    in committed leaders (with round and index), in finalized blocks and in the order
    a ledger applies the message ids. ``approximate[i]`` holds positions of sequence
    ``i`` made by a resumed core, whose blocks are not compared (§7.5)."""
    if not sequences:
        return
    marks = list(approximate) + [frozenset()] * (len(sequences) - len(approximate))
    at = max(range(len(sequences)), key=lambda i: len(sequences[i]))
    longest, longest_marks = sequences[at], marks[at]
    ids_longest = _applied(longest)
    for seq, own in zip(sequences, marks, strict=True):
        for index, sub in enumerate(seq):
            other = longest[index]
            if (sub.index, sub.leader, sub.round) != (other.index, other.leader, other.round):
                raise ForkDetectedError(f"commit {index} differs between honest nodes")
            exact = index not in own and index not in longest_marks
            if exact and sub.blocks != other.blocks:
                raise ForkDetectedError(f"commit {index} differs between honest nodes")
        ids = _applied(seq)
        if ids != ids_longest[: len(ids)]:
            raise ForkDetectedError("finalized message orders differ between honest nodes")
