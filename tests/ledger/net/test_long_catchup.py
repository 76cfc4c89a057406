"""A validator away longer than the skew window (10 min) still catches up (docs/network.md).

Four validators in one event loop over loopback TCP. Validator 3 stops; the
others finalize more messages; every ledger clock then moves 11 minutes on
(the injectable clock, no sleeping). The restarted validator's ledger
refuses those messages as too old until the blocks that carry them commit,
then admits them as committed messages and reaches the same order and state.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simtrust.ledger import (
    Ed25519Signer,
    encode_tagged_data,
    network_id_from_name,
    signing_bytes,
)
from simtrust.ledger.net import ConsortiumNode, NetworkGenesis, NodeKeys
from simtrust.store import SqliteDatabase

from .conftest import HANG_S, OPTIONS, finalized_order, wait_until


def test_a_validator_away_past_the_skew_window_catches_up(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = local_network
    paths = [tmp_path / f"n{i}.db" for i in range(4)]
    client = Ed25519Signer.generate()
    skew = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + skew[0]

    def messages(parents: list[bytes], count: int) -> list[bytes]:
        nid = network_id_from_name(genesis.network)
        at = int(clock().timestamp() * 1000)
        out = []
        for _ in range(count):
            body = signing_bytes(nid, client.public_key, at, parents, 0,
                                 encode_tagged_data(b"test", os.urandom(16)))
            out.append(body + client.sign(body))
        return out

    def node(i: int, db: SqliteDatabase) -> ConsortiumNode:
        return ConsortiumNode(genesis, keys[i], db, options=OPTIONS, clock=clock)

    async def go() -> None:
        dbs = [SqliteDatabase(p) for p in paths]
        nodes = [node(i, db) for i, db in enumerate(dbs)]
        for n in nodes:
            await n.start()
        try:
            first = nodes[0].submit(messages([genesis.ledger_genesis().id], 40))
            await wait_until(lambda: all(n.finalized_count() == 40 for n in nodes))

            await nodes[3].stop()
            dbs[3].close()
            away = nodes[1].submit(messages([first[-1].message_id or b""], 150))
            assert {"accepted"} == {r.status for r in away}
            await wait_until(lambda: all(n.finalized_count() == 190 for n in nodes[:3]))

            # Eleven minutes later by every ledger clock: past the 10-minute window.
            stale = messages([away[-1].message_id or b""], 1)
            skew[0] = timedelta(minutes=11)
            assert "timestamp-skew" == nodes[0].submit(stale)[0].reason
            # Tips that old are past the parent age: new messages approve the root.
            later = nodes[2].submit(messages([genesis.ledger_genesis().id], 30))
            assert {"accepted"} == {r.status for r in later}
            await wait_until(lambda: all(n.finalized_count() == 220 for n in nodes[:3]))

            dbs[3] = SqliteDatabase(paths[3])
            nodes[3] = node(3, dbs[3])
            assert 40 == nodes[3].finalized_count()
            await nodes[3].start()
            await wait_until(lambda: nodes[3].finalized_count() == 220)
            assert finalized_order(nodes[0]) == finalized_order(nodes[3])
            assert nodes[0].ledger.snapshot().utxo_hash == nodes[3].ledger.snapshot().utxo_hash
            assert nodes[3].ledger.snapshot() == nodes[3].ledger.recompute()
            # The old messages came in as committed messages, not by a wider window.
            assert nodes[3].ledger.stats["committed_admitted"] >= 150, nodes[3].stats
            assert nodes[3].stats["stashed"] > 0, nodes[3].stats
            assert "timestamp-skew" == nodes[3].ledger.submit_many(stale)[0].reason
        finally:
            for n in nodes:
                await n.stop()
            for db in dbs:
                db.close()

    asyncio.run(asyncio.wait_for(go(), HANG_S))
