"""Approval order over seeded multi-validator runs (docs/consensus.md §7.3).

Each validator runs a real ``Core`` and ``CommitteeOrderer`` on a virtual
clock. Clients submit messages to random validators; each approves one or two
recent messages its validator holds (often gossiped from another validator and
not yet carried by any block). Messages and blocks travel with random delays.
Asserted at every validator: every finalized message comes after every parent
it approves in the finalized order, the validators agree on that order, and
every message submitted in the first half of the run is finalized.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.ledger.consensus import (
    Block,
    BlockAccepted,
    CausalHistory,
    CommittedSubDag,
    Committee,
    Core,
    Output,
)
from simtrust.ledger.net import CommitteeOrderer

DURATION_MS = 3000.0


@dataclass(frozen=True)
class Msg:
    id: bytes
    parents: tuple[bytes, ...]


@dataclass
class Validator:
    core: Core
    orderer: CommitteeOrderer
    solid: list[bytes] = field(default_factory=list)
    held: set[bytes] = field(default_factory=set)
    waiting: list[Msg] = field(default_factory=list)
    finalized: list[bytes] = field(default_factory=list)


class Run:
    def __init__(self, seed: int, n: int) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.queue: list[tuple[float, int, int, str, object]] = []
        self.seq = 0
        keys = [Ed25519PrivateKey.from_private_bytes(self.rng.randbytes(32)) for _ in range(n)]
        committee = Committee.from_keys(
            0, [(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), 1) for k in keys])
        self.nodes = [
            Validator(Core(committee, author=i, key=keys[i], leader_timeout_ms=200),
                      CommitteeOrderer(grace_s=0.3, clock=lambda: self.now / 1000))
            for i in range(n)
        ]
        self.messages: dict[bytes, tuple[Msg, float]] = {}
        self.slow = self.rng.uniform(20, 150)

    def push(self, at: float, node: int, kind: str, body: object) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, node, kind, body))

    def send(self, src: int, kind: str, body: object) -> None:
        for dst in range(len(self.nodes)):
            if dst != src:
                self.push(self.now + self.rng.uniform(1, self.slow), dst, kind, body)

    def run(self) -> None:
        for i in range(len(self.nodes)):
            self.push(self.rng.uniform(0, 5), i, "tick", None)
        while self.queue and self.queue[0][0] <= DURATION_MS:
            self.now, _, i, kind, body = heapq.heappop(self.queue)
            node = self.nodes[i]
            if kind == "tick":
                if self.now < DURATION_MS / 2:
                    for _ in range(self.rng.randrange(3)):
                        self.submit(i)
                self.push(self.now + self.rng.uniform(5, 30), i, "tick", None)
            elif kind == "msg":
                assert isinstance(body, Msg)
                node.waiting.append(body)
                self.solidify(node, local=False)
            else:
                assert isinstance(body, Block)
                self.handle(node, node.core.on_block(body))
            self.propose(i)

    def submit(self, i: int) -> None:
        node = self.nodes[i]
        recent = node.solid[-6:]
        parents = tuple(self.rng.sample(recent, min(len(recent), self.rng.randint(1, 2))))
        m = Msg(self.rng.randbytes(32), parents)
        self.messages[m.id] = (m, self.now)
        node.waiting.append(m)
        self.solidify(node, local=True)
        self.send(i, "msg", m)

    def solidify(self, node: Validator, *, local: bool) -> None:
        progress = True
        while progress:
            progress = False
            for m in list(node.waiting):
                if all(p in node.held for p in m.parents):
                    node.waiting.remove(m)
                    node.held.add(m.id)
                    node.solid.append(m.id)
                    node.orderer.local(local)
                    node.orderer.on_solid(m)
                    node.orderer.local(False)
                    progress = True

    def propose(self, i: int) -> None:
        node = self.nodes[i]
        if node.core.ready_round(int(self.now)) is None:
            return
        ids = node.orderer.proposal(50, CausalHistory(node.core).precedes)
        block = node.core.propose(int(self.now), ids)
        self.handle(node, node.core.on_block(block))
        self.send(i, "block", block)

    def handle(self, node: Validator, outputs: list[Output]) -> None:
        commits = []
        for out in outputs:
            if isinstance(out, BlockAccepted):
                node.orderer.carried(out.block)
            elif isinstance(out, CommittedSubDag):
                commits.append(out)
                node.finalized.extend(out.message_ids)
        node.orderer.push(commits)


@pytest.mark.parametrize("seed", range(12))
def test_every_finalized_message_follows_its_parents(seed: int) -> None:
    run = Run(seed, n=4 + seed % 4)
    run.run()
    longest = max((v.finalized for v in run.nodes), key=len)
    early = {mid for mid, (_, at) in run.messages.items() if at < DURATION_MS / 2}
    assert len(early) > 100
    for v in run.nodes:
        assert longest[: len(v.finalized)] == v.finalized
        position = {mid: k for k, mid in enumerate(v.finalized)}
        late = [(mid.hex()[:8], p.hex()[:8]) for mid in v.finalized
                for p in run.messages[mid][0].parents if position.get(p, len(position)) > position[mid]]
        assert [] == late
        assert early <= set(v.finalized)
