"""Deterministic discrete-event simulator driving many consensus cores in one process.

``docs/consensus.md`` §9: a seeded RNG, a virtual millisecond clock, links with
latency distributions and loss, partitions that heal, crash-recovery from
persisted blocks, and byzantine validators (equivocating, withholding, lying
about parents, silent); with garbage collection (§7.5) a node left behind the
horizon installs a peer's committed point through ``Core.resume``. The honest
nodes run exactly ``Core``, driven as a network node drives it. Same seed, same
run, event for event.

The scenario and result types are in :mod:`._sim_model` (and exported here),
a validator's state in :mod:`._sim_nodes`; this module is the event loop.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import InvalidInput, InvalidSignature, Rejected
from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    BlockRef,
    CommittedSubDag,
    Committee,
    CommitteeChange,
    CommitteeChangeSignature,
    Core,
    EquivocationDetected,
    MissingBlocks,
    Output,
    sign_committee_change,
    verify_committee_change,
)
from simtrust.testing.ledger._sim_model import (
    Behaviour,
    Crash,
    EpochChange,
    ForkDetectedError,
    Latency,
    Partition,
    SimConfig,
    SimResult,
    check_prefixes,
)
from simtrust.testing.ledger._sim_nodes import SignedRegistry, SimNode, Snapshot, VerifyCache

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
    "run",
]

_Message = tuple[str, object]


class _Simulation:
    def __init__(self, config: SimConfig) -> None:
        if config.validators < 1:
            raise InvalidInput("a simulation needs at least one validator")
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, str, int, object]] = []
        self._seq = 0
        keys = [
            Ed25519PrivateKey.from_private_bytes(self.rng.randbytes(32))
            for _ in range(config.validators)
        ]
        weights = config.weights or (1,) * config.validators
        if len(weights) != config.validators:
            raise InvalidInput("one weight per validator")
        self.committee = Committee.from_keys(
            0,
            [
                (k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), w)
                for k, w in zip(keys, weights, strict=True)
            ],
        )
        self.committees = [self.committee]
        self.indices: list[dict[int, int]] = [{i: i for i in range(config.validators)}]
        self.change: tuple[CommitteeChange, list[CommitteeChangeSignature]] | None = None
        if config.epoch_change is not None:
            members = sorted(config.epoch_change.weights.items())
            change = CommitteeChange(
                1, tuple((self.committee.validators[i].public_key, w) for i, w in members)
            )
            signatures = [
                sign_committee_change(change, i, keys[i])
                for i in range(config.validators)
                if config.byzantine.get(i) != "silent"
            ]
            self.committees.append(verify_committee_change(self.committee, change, signatures))
            self.indices.append({node: index for index, (node, _) in enumerate(members)})
            self.change = (change, signatures)
        self.registry = SignedRegistry()
        self.verifier: VerifyCache | SignedRegistry = (
            VerifyCache() if config.verify_signatures else self.registry
        )
        self.nodes = [
            SimNode(i, keys[i], config.byzantine.get(i, "honest")) for i in range(config.validators)
        ]
        others = list(range(config.validators))
        for node in self.nodes:
            peers = [p for p in others if p != node.id]
            self.rng.shuffle(peers)
            node.targets = tuple(sorted(peers[: len(peers) // 2]))
            if node.alive:
                node.core = self._new_core(node)
        self.birth: dict[bytes, float] = {}
        self.proposed: dict[int, dict[bytes, float]] = {
            n.id: {} for n in self.nodes if n.behaviour == "honest"
        }
        self.finality: list[float] = []
        self.stats: dict[str, int] = {
            "messages": 0,
            "dropped": 0,
            "rejected": 0,
            "equivocations_seen": 0,
            "replay_mismatch": 0,
            "requests": 0,
            "snapshots": 0,
        }

    def _new_core(self, node: SimNode) -> Core:
        return self._restore(node, 0, [])[0]

    def _restore(self, node: SimNode, epoch: int, blocks: list[Block]) -> tuple[Core, list[Output]]:
        author = self.indices[epoch].get(node.id)
        base = node.bases.get(epoch)
        if base is None:
            return Core.restore(
                self.committees[epoch],
                blocks,
                author=author,
                key=node.key if author is not None else None,
                verifier=self.verifier,
                leader_timeout_ms=self.config.leader_timeout_ms,
                gc_depth=self.config.gc_depth,
            )
        snapshot, signed = base
        assert self.config.gc_depth is not None
        core = Core.resume(
            self.committees[epoch],
            last_decided_round=snapshot.last_decided_round,
            last_commit_round=snapshot.commits[-1].round,
            commit_index=len(snapshot.commits),
            gc_depth=self.config.gc_depth,
            author=author,
            key=node.key if author is not None else None,
            verifier=self.verifier,
            leader_timeout_ms=self.config.leader_timeout_ms,
            last_proposed_round=signed,
        )
        outputs: list[Output] = []
        for block in blocks:
            outputs.extend(core.on_block(block))
        return core, outputs

    def _switch_epoch(self, node: SimNode) -> None:
        """The committing node checks the change and starts the next epoch's core."""
        assert self.change is not None
        change, signatures = self.change
        committee = verify_committee_change(self.committees[node.epoch], change, signatures)
        node.epoch += 1
        node.epoch_start.append(len(node.commits))
        node.gc_seen = (0, -1)
        node.stores.append([])
        if node.core is not None:
            node.retired.append(node.core)
        assert committee == self.committees[node.epoch]
        node.core = self._restore(node, node.epoch, [])[0]
        node.wake = None

    # -- event plumbing ----------------------------------------------------

    def _push(self, time: float, kind: str, node: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, node, payload))

    def _send(self, src: int, dst: int, message: _Message) -> None:
        self.stats["messages"] += 1
        if self.config.loss and self.rng.random() < self.config.loss:
            self.stats["dropped"] += 1
            return
        delay = self.config.latency.sample(self.rng)
        self._push(self.now + delay, "deliver", dst, (src, message))

    def _broadcast(self, src: int, message: _Message, targets: Sequence[int] | None = None) -> None:
        for dst in targets if targets is not None else range(len(self.nodes)):
            if dst != src:
                self._send(src, dst, message)

    def _cost(self, message: _Message) -> float:
        if message[0] != "blocks" or not self.config.block_cost_ms:
            return 0.0
        return self.config.block_cost_ms * len(cast(Sequence[Block], message[1]))

    def _blocked(self, a: int, b: int) -> bool:
        return any(p.blocks(self.now, a, b) for p in self.config.partitions)

    # -- running -----------------------------------------------------------

    def run(self) -> SimResult:
        for node in self.nodes:
            if node.alive:
                self._push(self.rng.uniform(0, 5), "tick", node.id, 0)
        for crash in self.config.crashes:
            self._push(crash.at_ms, "crash", crash.node, None)
            if crash.restart_ms is not None:
                self._push(crash.restart_ms, "restart", crash.node, None)
        end = self.config.duration_ms
        while self._queue and self._queue[0][0] <= end:
            time, _, kind, node_id, payload = heapq.heappop(self._queue)
            self.now = time
            node = self.nodes[node_id]
            if kind == "crash":
                node.alive = False
                node.core = None
                node.generation += 1
            elif kind == "restart":
                self._restart(node)
            elif not node.alive or node.core is None:
                continue
            elif kind == "deliver":
                src, message = cast(tuple[int, _Message], payload)
                if self._blocked(src, node_id):
                    self.stats["dropped"] += 1
                    continue
                cost = self._cost(message)
                if cost > 0:
                    # One CPU per node: messages queue behind the ones before.
                    node.busy_until = max(self.now, node.busy_until) + cost
                    self._push(node.busy_until, "process", node_id, (node.generation, src, message))
                    continue
                self._deliver(node, src, message)
            elif kind == "process":
                generation, src, message = cast(tuple[int, int, _Message], payload)
                if generation == node.generation:
                    self._deliver(node, src, message)
            elif kind == "tick":
                if payload != node.generation:
                    continue
                self._tick(node)
            elif kind == "wake" and payload == node.generation:
                node.wake = None
                self._maybe_propose(node)
        return self._result()

    def _result(self) -> SimResult:
        faulty = {i for i, b in self.config.byzantine.items() if b != "honest"}
        honest = frozenset(n.id for n in self.nodes if n.id not in faulty)
        return SimResult(
            config=self.config,
            honest=honest,
            alive=frozenset(n.id for n in self.nodes if n.alive),
            commits={n.id: n.commits for n in self.nodes},
            commit_times={n.id: n.commit_times for n in self.nodes},
            finality_ms=self.finality,
            stats=dict(self.stats),
            rounds={n.id: (n.core.highest_round if n.core else 0) for n in self.nodes},
            epochs={n.id: n.epoch for n in self.nodes},
            proposed=self.proposed,
            approximate={n.id: frozenset(n.approximate) for n in self.nodes},
            installed={n.id: frozenset(n.installed) for n in self.nodes},
            peak_memory={n.id: n.peak for n in self.nodes},
            gc_rounds={n.id: (n.core.gc_round if n.core else 0) for n in self.nodes},
        )

    def _restart(self, node: SimNode) -> None:
        node.alive = True
        node.busy_until = self.now
        node.generation += 1
        node.wake = None
        node.retired = []
        for epoch in range(node.epoch + 1):
            core, outputs = self._restore(node, epoch, node.stores[epoch])
            if epoch < node.epoch:
                node.retired.append(core)
            replayed = [o for o in outputs if isinstance(o, CommittedSubDag)]
            if epoch < node.epoch:
                assert self.config.epoch_change is not None
                replayed = [s for s in replayed if s.index <= self.config.epoch_change.at_commit]
            for sub in replayed:
                position = node.epoch_start[epoch] + sub.index
                if position >= len(node.commits) or node.commits[position] != sub:
                    self.stats["replay_mismatch"] += 1
        node.core = core
        self._push(self.now + self.rng.uniform(0, 5), "tick", node.id, node.generation)

    def _tick(self, node: SimNode) -> None:
        core = node.core
        if core is None:
            return
        missing = core.missing_refs()
        if missing:
            self._request(node, self._random_peer(node), missing)
        own = core.last_proposed_round
        if own and node.behaviour != "lie":
            mine = [b for b in core.blocks_at(own) if b.author == core.author]
            if mine:
                self._broadcast(node.id, ("blocks", mine[:1]), self._targets(node))
        self._maybe_propose(node)
        self._push(self.now + self.config.tick_ms, "tick", node.id, node.generation)

    def _random_peer(self, node: SimNode) -> int:
        if len(self.nodes) == 1:
            return node.id
        peer = self.rng.randrange(len(self.nodes) - 1)
        return peer if peer < node.id else peer + 1

    def _targets(self, node: SimNode) -> Sequence[int] | None:
        return node.targets if node.behaviour == "withhold" else None

    def _request(self, node: SimNode, peer: int, refs: Sequence[BlockRef]) -> None:
        if peer == node.id or node.core is None:
            return
        self.stats["requests"] += 1
        asked = refs[:256]
        core = node.core
        floor = max(1, core.last_decided_round - 1)
        if core.gc_round and not core.blocks_at(core.gc_round):
            # A resumed core holds nothing from before its resume point: fetch
            # the whole window in one answer, not one round per round trip.
            floor = core.gc_round
        digests = tuple(r.digest for r in asked)
        self._send(node.id, peer, ("request", (digests, floor, core.gc_round)))

    def _deliver(self, node: SimNode, src: int, message: _Message) -> None:
        kind, body = message
        if kind == "blocks":
            blocks: Sequence[Block] = body  # type: ignore[assignment]
            for block in blocks:
                if self.config.wire:
                    block = Block.decode(block.encode())  # noqa: PLW2901 - exercise the codec
                self._ingest(node, src, block)
            self._maybe_propose(node)
        elif kind == "request":
            if node.behaviour in {"withhold", "silent"}:
                return
            digests, floor, gc_round = cast(tuple[tuple[bytes, ...], int, int], body)
            assert node.core is not None
            found = node.core.history(digests, floor, self.config.max_response_blocks)
            for old in node.retired:
                found.extend(old.history(digests, 1, self.config.max_response_blocks))
            found.extend(node.extra[d] for d in digests if d in node.extra)
            if found:
                self._send(node.id, src, ("blocks", found))
            if node.core.gc_round > gc_round:
                # This node forgot rounds the requester may still need (and
                # every node this far ahead forgot them): offer its committed point.
                self._send(node.id, src, ("snapshot", self._snapshot(node)))
        elif kind == "snapshot":
            self._install(node, cast(Snapshot, body))
        elif kind == "tail":
            epoch = cast(int, body)
            if node.behaviour in {"withhold", "silent"} or epoch >= len(node.retired):
                return
            old = node.retired[epoch]
            tail = list(old.blocks_at(old.highest_round))
            if tail:
                self._send(node.id, src, ("blocks", tail))

    def _snapshot(self, node: SimNode) -> Snapshot:
        assert node.core is not None
        start = node.epoch_start[node.epoch]
        return Snapshot(
            node.epoch,
            tuple(node.commits[start:]),
            frozenset(i - start for i in node.approximate if i >= start),
            node.core.last_decided_round,
            node.core.gc_round,
        )

    def _install(self, node: SimNode, snapshot: Snapshot) -> None:
        """Resume from a peer's committed point if this node waits for blocks below the
        peer's gc_round (forgotten by every node that far ahead) and the peer is ahead."""
        core = node.core
        assert core is not None
        start = node.epoch_start[node.epoch]
        own = len(node.commits) - start
        if (
            snapshot.epoch != node.epoch
            or len(snapshot.commits) <= own
            or not any(r.round < snapshot.gc_round for r in core.missing_refs())
        ):
            return
        self.stats["snapshots"] += 1
        change = self.config.epoch_change
        installed = list(snapshot.commits[own:])
        if change is not None and node.epoch == 0:
            installed = [s for s in installed if s.index <= change.at_commit]
        for sub in installed:
            if sub.index in snapshot.approximate:
                node.approximate.add(len(node.commits))
            node.installed.add(len(node.commits))
            node.commits.append(sub)
            node.commit_times.append(self.now)
            for mid in sub.message_ids:
                node.unfinalized.pop(mid, None)
        if change is not None and node.epoch == 0 and installed[-1].index == change.at_commit:
            self._switch_epoch(node)
            return
        signed = max(core.last_proposed_round, node.bases.get(node.epoch, (snapshot, 0))[1])
        node.bases[node.epoch] = (snapshot, signed)
        node.stores[node.epoch] = []
        assert self.config.gc_depth is not None
        node.gc_seen = (snapshot.gc_round, snapshot.commits[-1].round)
        node.core = self._restore(node, node.epoch, [])[0]
        node.wake = None

    def _ingest(self, node: SimNode, src: int, block: Block) -> None:
        core = node.core
        assert core is not None
        try:
            outputs = core.on_block(block)
        except (Rejected, InvalidSignature):
            self.stats["rejected"] += 1
            if block.epoch > node.epoch and self.now - node.tail_asked >= self.config.tick_ms:
                # The peer is in a later epoch: ask for the last blocks of ours,
                # whose ancestors lead this node to the switching commit.
                node.tail_asked = self.now
                self._send(node.id, src, ("tail", node.epoch))
            return
        self._handle(node, outputs, src)

    def _handle(self, node: SimNode, outputs: list[Output], src: int) -> None:
        if outputs and node.core is not None and self.config.gc_depth is not None:
            for key, value in node.core.memory_stats().items():
                node.peak[key] = max(node.peak.get(key, 0), value)
        for output in outputs:
            if isinstance(output, BlockAccepted):
                node.stores[node.epoch].append(output.block)
            elif isinstance(output, MissingBlocks):
                self._request(node, src, output.refs)
            elif isinstance(output, EquivocationDetected):
                self.stats["equivocations_seen"] += 1
            elif isinstance(output, CommittedSubDag):
                node.commits.append(output)
                node.commit_times.append(self.now)
                gc_before, horizon = node.gc_seen
                if gc_before <= horizon:  # may name blocks finalized before the snapshot
                    node.approximate.add(len(node.commits) - 1)
                if self.config.gc_depth is not None:
                    node.gc_seen = (max(gc_before, output.round - self.config.gc_depth), horizon)
                for mid in output.message_ids:
                    node.unfinalized.pop(mid, None)
                if node.behaviour == "honest":
                    for mid in output.message_ids:
                        born = self.birth.get(mid)
                        if born is not None:
                            self.finality.append(self.now - born)
                change = self.config.epoch_change
                if change and node.epoch == 0 and output.index == change.at_commit:
                    # Later outputs of the old epoch are void: nothing after
                    # the switching commit is finalized in epoch 0.
                    self._switch_epoch(node)
                    return

    def _maybe_propose(self, node: SimNode) -> None:
        core = node.core
        if core is None:
            return
        earliest = node.last_proposal + self.config.min_round_ms
        if self.now < earliest and core.proposal_round() is not None:
            self._schedule_wake(node, earliest)
            return
        round_ = core.ready_round(int(self.now))
        if round_ is not None:
            ids = self._fresh_ids(node, core.gc_round, round_)
            block = self.registry.register(core.propose(int(self.now), ids))
            self._handle(node, core.on_block(block), node.id)
            self._publish(node, block)
            if core.proposal_round() is not None:
                self._schedule_wake(node, self.now + self.config.min_round_ms)
                return
        wake = core.wake_at()
        if wake is not None:
            self._schedule_wake(node, float(wake))

    def _schedule_wake(self, node: SimNode, at: float) -> None:
        if node.wake is not None and node.wake <= at and node.wake >= self.now:
            return
        node.wake = at
        self._push(max(at, self.now), "wake", node.id, node.generation)

    def _fresh_ids(self, node: SimNode, gc_round: int, round_: int) -> list[bytes]:
        count = self.config.ids_per_block
        start, span = node.last_proposal, self.now - node.last_proposal
        node.last_proposal = self.now
        honest = node.behaviour == "honest"
        ids = []
        if honest and self.config.gc_depth is not None:
            # A block below gc_round that was not finalized never will be: its
            # ids go into this proposal again (the oldest first).
            ids = [m for m, r in node.unfinalized.items() if r < gc_round]
        for k in range(count):
            mid = self.rng.randbytes(32)
            if honest:
                born = start + span * (k + 1) / count
                self.birth[mid] = self.proposed[node.id][mid] = born
            ids.append(mid)
        if honest and self.config.gc_depth is not None:
            for mid in ids:
                node.unfinalized.pop(mid, None)  # re-inserted last: the dict stays in round order
                node.unfinalized[mid] = round_
        return ids

    def _publish(self, node: SimNode, block: Block) -> None:
        behaviour = node.behaviour
        if behaviour == "equivocate":
            twin = self._resign(node, block, block.parents, [self.rng.randbytes(32)])
            node.extra[twin.digest] = twin
            peers = [p for p in range(len(self.nodes)) if p != node.id]
            half = set(node.targets)
            self._broadcast(node.id, ("blocks", [block]), [p for p in peers if p in half])
            self._broadcast(node.id, ("blocks", [twin]), [p for p in peers if p not in half])
        elif behaviour == "lie" and block.round > 1 and self.rng.random() < 0.5:
            self._broadcast(node.id, ("blocks", [self._lie(node, block)]))
        else:
            self._broadcast(node.id, ("blocks", [block]), self._targets(node))

    def _resign(
        self, node: SimNode, block: Block, parents: Sequence[BlockRef], payload: Sequence[bytes]
    ) -> Block:
        """A byzantine variant of ``block`` in the same slot, signed by its author."""
        variant = Block.create(
            epoch=block.epoch,
            round=block.round,
            author=block.author,
            timestamp_ms=block.timestamp_ms,
            parents=parents,
            payload=payload,
            key=node.key,
        )
        return self.registry.register(variant)

    def _lie(self, node: SimNode, block: Block) -> Block:
        parents = list(block.parents)
        choice = self.rng.randrange(3)
        index = self.rng.randrange(len(parents))
        victim = parents[index]
        if choice == 0:  # a parent that does not exist
            parents[index] = BlockRef(victim.round, victim.author, self.rng.randbytes(32))
        elif choice == 1:  # a parent at the wrong round (digest of a real block)
            parents[index] = BlockRef(max(1, victim.round - 1), victim.author, victim.digest)
            parents = sorted({(p.round, p.author): p for p in parents}.values())
        else:  # a "parent" from the block's own round
            parents.append(BlockRef(block.round, (node.id + 1) % len(self.nodes), victim.digest))
            parents = sorted({(p.round, p.author): p for p in parents}.values())
        return self._resign(node, block, parents, block.payload)


def run(config: SimConfig) -> SimResult:
    """Run one simulation to ``config.duration_ms`` of virtual time."""
    return _Simulation(config).run()
