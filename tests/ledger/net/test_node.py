"""Four validators in one event loop over real loopback TCP: one order, restart and catch-up."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from simtrust.ledger import Ed25519Signer
from simtrust.ledger.consensus import Block, BlockRef
from simtrust.ledger.net import ConsortiumNode, NetworkGenesis, NodeKeys
from simtrust.store import SqliteDatabase

from .conftest import HANG_S, OPTIONS, LocalNetwork, finalized_order, make_messages, wait_until


def test_validators_finalize_one_order_and_a_restarted_one_catches_up(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = local_network
    client = Ed25519Signer.generate()

    async def go() -> None:
        async with LocalNetwork(genesis, keys, tmp_path) as net:
            nodes = net.nodes
            first = make_messages(genesis.network, client, [genesis.ledger_genesis().id], 150)
            results = nodes[0].submit(first)
            assert {"accepted"} == {r.status for r in results}
            last = results[-1].message_id
            assert last is not None
            second = make_messages(genesis.network, client, [last], 100)
            # Node 2 may not hold the parent yet: its messages wait for it (pending).
            second_ids = {r.message_id for r in nodes[2].submit(second)}
            await wait_until(lambda: all(n.finalized_count() == 250 for n in nodes))
            orders = [finalized_order(n) for n in nodes]
            assert all(o == orders[0] for o in orders)
            assert set(orders[0]) == {r.message_id for r in results} | second_ids
            # an empty round may commit between reads: wait for the states to meet
            await wait_until(lambda: 1 == len({n.ledger.snapshot() for n in nodes}))
            # Node 2 held its messages until the block carrying their parent preceded its
            # proposal (consensus.md §7.3); with everything finalized it holds none.
            assert all(0 == n.status()["held_for_parents"] for n in nodes)

            # Validator 3 stops; the other three keep finalizing.
            await net.stop(3)
            third = make_messages(genesis.network, client, [orders[0][-1]], 120)
            assert {"accepted"} == {r.status for r in nodes[1].submit(third)}
            await wait_until(lambda: all(n.finalized_count() == 370 for n in nodes[:3]))

            # It restarts from its store, replays its blocks and catches up.
            assert 250 == net.open(3).finalized_count()
            await net.start(3)
            await wait_until(lambda: nodes[3].finalized_count() == 370)
            assert finalized_order(nodes[0]) == finalized_order(nodes[3])
            assert nodes[0].ledger.snapshot().utxo_hash == nodes[3].ledger.snapshot().utxo_hash

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_a_block_naming_a_message_nobody_holds_is_never_committed(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    """Validator 3 proposes an id no one can produce; the others hold its block back,
    never vote for it, and keep finalizing everything real."""
    genesis, keys = local_network
    client = Ed25519Signer.generate()
    fake = os.urandom(32)

    async def go() -> None:
        net = LocalNetwork(genesis, keys, tmp_path)
        nodes = await net.open_all()
        honest_proposal = nodes[3].orderer.proposal
        injected: list[bytes] = []

        def lying_proposal(limit: int, precedes: Callable[[BlockRef], bool]) -> list[bytes]:
            ids = honest_proposal(limit, precedes)
            if not injected:
                injected.append(fake)
                return [*ids, fake]
            return ids

        nodes[3].orderer.proposal = lying_proposal  # type: ignore[method-assign]
        async with net:
            raws = make_messages(genesis.network, client, [genesis.ledger_genesis().id], 60)
            nodes[0].submit(raws)
            await wait_until(lambda: all(n.finalized_count() == 60 for n in nodes[:3]))
            more = make_messages(genesis.network, client, nodes[0].ledger.select_parents(4), 40)
            nodes[1].submit(more)
            await wait_until(lambda: all(n.finalized_count() == 100 for n in nodes[:3]))
            assert injected
            for n in nodes[:3]:
                assert fake not in finalized_order(n)
                assert n.core.get(fake) is None
            assert any(n.stats["held_blocks"] for n in nodes[:3])
            assert finalized_order(nodes[0]) == finalized_order(nodes[1]) == finalized_order(nodes[2])

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_forged_and_malformed_blocks_count_against_the_sender(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:

    genesis, keys = local_network
    db = SqliteDatabase(tmp_path / "f.db")
    node = ConsortiumNode(genesis, keys[0], db, options=OPTIONS)
    block = Block.create(epoch=0, round=1, author=1, timestamp_ms=0, parents=[], payload=[],
                         key=keys[1].block_key())
    good = block.encode()
    forged = good[:-1] + bytes([good[-1] ^ 1])
    node._on_blocks(1, [forged, b"\x01garbage"])
    assert 2 == node.net.peers[1].stats.strikes
    assert 2 == node.stats["blocks_rejected"]
    assert node.core.get(block.digest) is None  # the forgery did not enter the DAG
    node._on_blocks(2, [good])  # the genuine block, forwarded by another peer, is fine
    assert 0 == node.net.peers[2].stats.strikes
    assert node.core.get(block.digest) is not None
    node.ledger.close()
    db.close()
