"""Hand-built committees and DAGs for the consensus tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.ledger.consensus import Block, CommittedSubDag, Committee, Core, Output


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def mid(label: str) -> bytes:
    """A 32-byte message id named by a label."""
    return label.encode().ljust(32, b".")[:32]


def commits(outputs: list[Output]) -> list[CommittedSubDag]:
    return [o for o in outputs if isinstance(o, CommittedSubDag)]


def feed(core: Core, blocks: list[Block]) -> list[Output]:
    out: list[Output] = []
    for block in blocks:
        out.extend(core.on_block(block))
    return out


def flat(layers: list[list[Block]]) -> list[Block]:
    return [b for layer in layers for b in layer]


class Dag:
    """A committee with known keys and a helper to sign blocks by hand."""

    def __init__(self, n: int, weights: Sequence[int] | None = None, epoch: int = 0) -> None:
        self.keys = [Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i in range(n)]
        self.committee = Committee.from_keys(
            epoch, [(raw_public(k), w) for k, w in zip(self.keys, weights or [1] * n, strict=True)]
        )

    def leader(self, round_: int) -> int:
        return self.committee.leader(round_)

    def block(
        self,
        round_: int,
        author: int,
        parents: Iterable[Block] = (),
        payload: Sequence[bytes] = (),
        *,
        epoch: int | None = None,
        timestamp_ms: int = 0,
    ) -> Block:
        return Block.create(
            epoch=self.committee.epoch if epoch is None else epoch,
            round=round_,
            author=author,
            timestamp_ms=timestamp_ms,
            parents=sorted(p.ref for p in parents),
            payload=payload,
            key=self.keys[author],
        )

    def layer(
        self,
        round_: int,
        previous: Sequence[Block],
        authors: Iterable[int] | None = None,
        payload: bool = False,
    ) -> list[Block]:
        """One block per author referencing every block of ``previous``."""
        chosen = range(len(self.keys)) if authors is None else authors
        return [
            self.block(round_, a, previous, [mid(f"r{round_}a{a}")] if payload else [])
            for a in chosen
        ]

    def rounds(self, count: int, payload: bool = False) -> list[list[Block]]:
        """A complete DAG of ``count`` rounds (every author, every parent)."""
        layers: list[list[Block]] = []
        previous: list[Block] = []
        for r in range(1, count + 1):
            previous = self.layer(r, previous, payload=payload)
            layers.append(previous)
        return layers


@pytest.fixture
def dag4() -> Dag:
    return Dag(4)
