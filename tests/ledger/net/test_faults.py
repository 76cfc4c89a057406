"""Faults on real processes: four validators on 127.0.0.1, SIGKILL, restart, partition, heal.

Each validator is its own ``simtrust node run`` process. Every wait is
bounded and the testnet is always torn down (``Testnet.down`` signals only
the processes this test started).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from simtrust.ledger import Ed25519Signer
from simtrust.ledger.net import ConsensusParams, NodeClient, Testnet

from .conftest import make_messages, wait_sync

pytestmark = pytest.mark.slow


def _finalized(client: NodeClient) -> int:
    return int(client.status()["finalized"])


def _load(net: Testnet, client: NodeClient, signer: Ed25519Signer, count: int) -> set[bytes]:
    raws = make_messages(net.network, signer, client.parents(), count)
    results = client.submit(raws)
    assert {"accepted"} == {r["status"] for r in results}
    return {bytes.fromhex(r["message_id"]) for r in results}


def _same_state(a: NodeClient, b: NodeClient) -> None:
    count = _finalized(a)
    assert a.finalized_order(count) == b.finalized_order(count)
    sa, sb = a.snapshot(), b.snapshot()
    assert (sa["finalized"], sa["order_hash"], sa["utxo_hash"]) == (
        sb["finalized"], sb["order_hash"], sb["utxo_hash"])


def test_kill_restart_and_partition_of_one_validator_of_four(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "testnet", 4,
                         consensus=ConsensusParams(leader_timeout_ms=400, min_round_interval_ms=50))
    signer = Ed25519Signer.generate()
    clients: list[NodeClient] = []
    try:
        net.up(timeout=300)
        clients = [net.client(i) for i in range(4)]
        first = _load(net, clients[0], signer, 100)
        wait_sync(lambda: all(_finalized(c) >= 100 for c in clients), "first batch final")
        assert first == set(clients[3].finalized_order(100))

        # SIGKILL validator 3: the other three keep finalizing.
        net.kill(3)
        assert not net.running(3)
        base = [_finalized(c) for c in clients[:3]]
        second = _load(net, clients[1], signer, 100)
        wait_sync(lambda: all(_finalized(c) >= b + 100
                              for c, b in zip(clients[:3], base, strict=True)),
                  "three validators to finalize without the fourth")
        assert second <= set(clients[0].finalized_order())

        # Restart it: it catches up to an identical finalized order and state.
        net.start(3)
        net.wait_ready([3], timeout=300)
        target = _finalized(clients[0])
        wait_sync(lambda: _finalized(clients[3]) >= target, "restarted validator to catch up")
        _same_state(clients[0], clients[3])

        # Partition validator 2 by dropping its links; the rest finalize, it does not.
        clients[2].links(True)
        stuck = _finalized(clients[2])
        base = [_finalized(clients[i]) for i in (0, 1, 3)]
        third = _load(net, clients[3], signer, 100)
        wait_sync(lambda: all(_finalized(clients[i]) >= b + 100
                              for i, b in zip((0, 1, 3), base, strict=True)),
                  "finalization while one validator is partitioned")
        assert stuck == _finalized(clients[2])
        assert third <= set(clients[1].finalized_order())

        # Heal: it catches up.
        clients[2].links(False)
        target = _finalized(clients[0])
        wait_sync(lambda: _finalized(clients[2]) >= target, "partitioned validator to catch up")
        _same_state(clients[0], clients[2])

        # Freeze validator 1's whole process (SIGSTOP), load the others, thaw it.
        net.signal(1, signal.SIGSTOP)
        try:
            base = [_finalized(clients[i]) for i in (0, 2, 3)]
            _load(net, clients[0], signer, 100)
            wait_sync(lambda: all(_finalized(clients[i]) >= b + 100
                                  for i, b in zip((0, 2, 3), base, strict=True)),
                      "finalization while one validator is frozen")
        finally:
            net.signal(1, signal.SIGCONT)
        target = _finalized(clients[0])
        wait_sync(lambda: _finalized(clients[1]) >= target, "thawed validator to catch up")
        _same_state(clients[0], clients[1])
        for c in clients:
            assert 0 == c.status()["stats"]["equivocations"]
    finally:
        for c in clients:
            c.close()
        net.down()
        assert not any(net.running(i) for i in range(4))
