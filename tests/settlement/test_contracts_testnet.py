"""Contracts on a four-validator testnet (issue 15 item 1): validators in one event loop
over loopback TCP finalize one order of contract payloads, and each validator's contract
engine holds the identical state and history, the stale transition rejected everywhere."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from simtrust.identity import did_key
from simtrust.ledger import (
    Ed25519Signer,
    message_id,
    network_id_from_name,
    payload_code,
    signing_bytes,
)
from simtrust.ledger.net import ConsensusParams, NodeKeys, generate_local_network
from simtrust.settlement import (
    ContractEngine,
    create_payload,
    roaming_agreement_code,
    state_hash,
    transition_payload,
)
from tests.ledger.net.conftest import HANG_S, LocalNetwork, finalized_order, wait_until
from tests.settlement.test_contracts import CODE, HOME, INITIAL, VISITED


def test_every_validator_holds_the_same_contract_state(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(
        4, tmp_path / "net", consensus=ConsensusParams(leader_timeout_ms=300,
                                                       min_round_interval_ms=30))
    keys = [NodeKeys.load(p) for p in paths]
    client = Ed25519Signer.generate()
    nid = network_id_from_name(genesis.network)
    first = state_hash("ra-1", CODE, 0, INITIAL)
    payloads = [create_payload("ra-1", CODE, INITIAL),
                transition_payload("ra-1", first, {"action": "sign"}, [HOME]),
                transition_payload("ra-1", first, {"action": "sign"}, [VISITED])]  # stale
    raws, parent = [], genesis.ledger_genesis().id
    for payload in payloads:  # a chain: each message approves the one before
        body = signing_bytes(nid, client.public_key, int(time.time() * 1000), [parent],
                             payload_code("contract"), payload)
        raws.append(body + client.sign(body))
        parent = message_id(raws[-1])

    async def go() -> None:
        net = LocalNetwork(genesis, keys, tmp_path)
        nodes = await net.open_all()
        engines = [ContractEngine([roaming_agreement_code]) for _ in nodes]
        for engine, node in zip(engines, nodes, strict=True):
            engine.attach(node.ledger)
        async with net:
            for index, raw in enumerate(raws):  # each to another validator
                statuses = {r.status for r in nodes[index % 4].submit([raw])}
                assert statuses <= {"accepted", "pending"}  # pending: parent not there yet
            await wait_until(lambda: all(n.finalized_count() == len(raws) for n in nodes))
            orders = [finalized_order(n) for n in nodes]
            assert all(o == orders[0] for o in orders)
            # ... and the same commit chain: at every height all hold, one chain hash.
            common = min(n.ledger.height for n in nodes)
            assert common >= 1
            for height in range(1, common + 1):
                links = {n.ledger.chain_at(height) for n in nodes}
                assert 1 == len(links), height
        states = [e.state("ra-1") for e in engines]
        assert all(s == states[0] for s in states)
        assert [did_key(HOME.public_key)] == states[0]["state"]["signed"]
        assert {e.fingerprint() for e in engines} == {engines[0].fingerprint()}
        histories = [e.history("ra-1") for e in engines]
        assert all(h == histories[0] for h in histories)
        assert ["applied", "applied", "rejected"] == [h["status"] for h in histories[0]]
        assert "stale-state" == histories[0][-1]["reason"]

    asyncio.run(asyncio.wait_for(go(), HANG_S))
