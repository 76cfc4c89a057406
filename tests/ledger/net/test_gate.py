"""The availability gate: blocks wait for their payload, bounded in count and age."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simtrust.ledger.consensus import Block
from simtrust.ledger.net._gate import AvailabilityGate


def _block(round_: int, payload: list[bytes]) -> Block:
    return Block.create(epoch=0, round=round_, author=0, timestamp_ms=0, parents=[],
                        payload=payload, key=Ed25519PrivateKey.generate())


def test_block_is_released_when_its_last_message_arrives() -> None:
    gate = AvailabilityGate()
    a, b = os.urandom(32), os.urandom(32)
    first = _block(1, [a, b])
    second = _block(1, [b])
    gate.hold(first, [a, b], now=0.0)
    gate.hold(second, [b], now=0.0)
    assert first.digest in gate
    assert [] == gate.arrived([a])
    released = gate.arrived([b])
    assert sorted([first, second], key=lambda x: x.ref) == released
    assert 0 == len(gate)


def test_wanted_lists_ids_of_old_enough_blocks_and_expires_stale_ones() -> None:
    gate = AvailabilityGate(max_age_s=10.0)
    a, b = os.urandom(32), os.urandom(32)
    gate.hold(_block(1, [a]), [a], now=0.0)
    gate.hold(_block(2, [b]), [b], now=5.0)
    assert [a] == gate.wanted(now=5.0, older_than=1.0)
    assert sorted([a, b]) == gate.wanted(now=6.5, older_than=1.0)
    assert [b] == gate.wanted(now=11.0, older_than=1.0)  # the first expired
    assert 1 == len(gate)


def test_gate_is_bounded_oldest_first() -> None:
    gate = AvailabilityGate(max_blocks=2)
    blocks = [_block(r, [os.urandom(32)]) for r in (1, 2, 3)]
    for blk in blocks:
        gate.hold(blk, blk.payload, now=0.0)
    assert blocks[0].digest not in gate
    assert blocks[2].digest in gate
    assert [] == gate.arrived(blocks[0].payload)
