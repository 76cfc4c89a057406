"""Committee changes by epoch (docs/network.md, "Committee changes"; docs/consensus.md §12).

The signed change document, and four validators in one event loop over
loopback TCP switching to a committee without validator 3 and with new
weights: finalization goes on across the boundary, validator 3 is cut off,
and a validator restarted after the switch resumes in the new epoch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from simtrust.cli import node as node_cli
from simtrust.errors import InvalidSignature, Rejected, SimtrustError
from simtrust.ledger import Ed25519Signer, message_id
from simtrust.ledger.net import (
    CHANGE_FORMAT,
    ConsensusParams,
    ConsortiumNode,
    EpochCommittee,
    NetworkGenesis,
    NodeKeys,
    SignedCommitteeChange,
    ValidatorEntry,
    change_message,
    free_ports,
    generate_local_network,
    sign_change,
)
from simtrust.store import SqliteDatabase

from .conftest import HANG_S, OPTIONS, LocalNetwork, finalized_order, make_messages, wait_until


def _target(genesis: NetworkGenesis) -> EpochCommittee:
    """Epoch 1: validators 0..2, validator 0 with weight 2."""
    kept = [dataclasses.replace(v, weight=2 if v.id == 0 else 1) for v in genesis.validators[:3]]
    return EpochCommittee(1, tuple(kept))


def test_a_change_needs_a_supermajority_and_binds_node_keys_and_addresses(
    local_network: tuple[NetworkGenesis, list[NodeKeys]],
) -> None:
    genesis, keys = local_network
    current = EpochCommittee.of_genesis(genesis)
    change = sign_change(current, _target(genesis), keys[:3])
    again = SignedCommitteeChange.decode(change.encode())
    assert again == change
    assert [2, 1, 1] == [v.weight for v in again.verify(current.committee()).validators]
    with pytest.raises(Rejected) as info:
        sign_change(current, _target(genesis), keys[:2]).verify(current.committee())
    assert "no-supermajority" == info.value.reason
    moved = dataclasses.replace(change.target.validators[1], p2p="127.0.0.1:1")
    forged = SignedCommitteeChange(
        EpochCommittee(1, (change.target.validators[0], moved, change.target.validators[2])),
        change.signatures)
    with pytest.raises(InvalidSignature):
        forged.verify(current.committee())
    with pytest.raises(Rejected):
        sign_change(current, EpochCommittee(2, _target(genesis).validators), keys)


def test_validators_switch_epoch_and_keep_finalizing(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = local_network
    client = Ed25519Signer.generate()
    root = genesis.ledger_genesis().id
    change = sign_change(EpochCommittee.of_genesis(genesis), _target(genesis), keys[:3])

    async def go() -> None:
        async with LocalNetwork(genesis, keys, tmp_path) as net:
            nodes = net.nodes
            nodes[0].submit(make_messages(genesis.network, client, [root], 50))
            # Two of four signers: finalized, but void, and nobody switches.
            weak = sign_change(EpochCommittee.of_genesis(genesis), _target(genesis), keys[:2])
            weak_raw = change_message(genesis.network, weak, keys[0].ledger_signer(),
                                      issued_at_ms=int(time.time() * 1000), parents=[root])
            weak_id = message_id(weak_raw)
            nodes[0].submit([weak_raw])
            await wait_until(lambda: all(n.ledger.status(weak_id)["state"] == "conflicting"
                                     for n in nodes))
            assert "no-supermajority" == nodes[2].ledger.status(weak_id)["reason"]
            assert all(0 == n.committee.epoch for n in nodes)
            raw = change_message(genesis.network, change, keys[1].ledger_signer(),
                                 issued_at_ms=int(time.time() * 1000), parents=[root])
            assert "accepted" == nodes[1].submit([raw])[0].status
            change_id = message_id(raw)
            await wait_until(lambda: all(n.committee.epoch == 1 for n in nodes[:3]))
            assert [0, 1, 2] == [n.id for n in nodes[:3]]
            assert [2, 1, 1] == [v.weight for v in nodes[0].committee.validators]
            # Validator 3 is cut off: its links are closed and its key no longer admitted.
            await wait_until(lambda: all(n.net.connected() == [i for i in range(3) if i != j]
                                     for j, n in enumerate(nodes[:3])))
            await wait_until(lambda: [] == nodes[3].net.connected())

            base = nodes[0].finalized_count()
            nodes[2].submit(make_messages(genesis.network, client, [root], 60))
            await wait_until(lambda: all(n.finalized_count() >= base + 60 for n in nodes[:3]))
            await wait_until(lambda: len({n.finalized_count() for n in nodes[:3]}) == 1)
            orders = [finalized_order(n) for n in nodes[:3]]
            assert orders[0] == orders[1] == orders[2]
            assert change_id in orders[0]
            # Validator 3, cut off at or before the boundary, holds a prefix of that order.
            stale = finalized_order(nodes[3])
            assert stale == orders[0][: len(stale)]

            # A validator restarted after the switch resumes in epoch 1.
            await net.stop(1)
            assert 1 == net.open(1).committee.epoch
            await net.start(1)
            base = nodes[0].finalized_count()
            nodes[0].submit(make_messages(genesis.network, client, [root], 20))
            await wait_until(lambda: all(n.finalized_count() >= base + 20 for n in nodes[:3]))
            await wait_until(lambda: len({n.finalized_count() for n in nodes[:3]}) == 1)
            assert finalized_order(nodes[0]) == finalized_order(nodes[1]) == finalized_order(nodes[2])

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_committee_change_cli_builds_and_cosigns(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, _ = local_network
    net_dir = tmp_path / "net"
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"epoch": 1, "validators": [
        v.to_json() for v in _target(genesis).validators]}))
    key = [str(net_dir / f"node-{i}" / "key.json") for i in range(3)]
    runner = CliRunner()
    first = runner.invoke(node_cli.app, [
        "committee-change", "--genesis", str(net_dir / "genesis.json"), "--members",
        str(members), "--key", key[0], "--out", str(tmp_path / "c.json"), "--json"])
    assert 0 == first.exit_code, first.output
    assert {"signers": [0], "supermajority": False}.items() <= json.loads(first.output).items()
    second = runner.invoke(node_cli.app, [
        "committee-change", "--genesis", str(net_dir / "genesis.json"), "--change",
        str(tmp_path / "c.json"), "--key", key[1], "--key", key[2], "--json"])
    assert 0 == second.exit_code, second.output
    assert {"signers": [0, 1, 2], "signed_weight": 3, "total_weight": 4,
            "supermajority": True}.items() <= json.loads(second.output).items()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_change_decoder_refuses_junk_with_simtrust_errors(data: bytes) -> None:
    try:
        parsed = SignedCommitteeChange.decode(data)
    except SimtrustError:
        return
    assert SignedCommitteeChange.decode(parsed.encode()) == parsed


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["format", "epoch", "validators", "signatures"]),
                       st.recursive(st.none() | st.integers() | st.text(max_size=8),
                                    lambda c: st.lists(c, max_size=3)
                                    | st.dictionaries(st.text(max_size=6), c, max_size=3),
                                    max_leaves=8)))
def test_change_parser_refuses_malformed_documents(doc: dict[str, object]) -> None:
    doc.setdefault("format", CHANGE_FORMAT)
    try:
        parsed = SignedCommitteeChange.decode(json.dumps(doc).encode())
    except SimtrustError:
        return
    assert SignedCommitteeChange.decode(parsed.encode()) == parsed


def test_a_member_partitioned_during_the_switch_fetches_the_tail_and_follows(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = local_network
    client = Ed25519Signer.generate()
    root = genesis.ledger_genesis().id
    change = sign_change(EpochCommittee.of_genesis(genesis), _target(genesis), keys[:3])

    async def go() -> None:
        async with LocalNetwork(genesis, keys, tmp_path) as net:
            nodes = net.nodes
            nodes[0].submit(make_messages(genesis.network, client, [root], 30))
            await wait_until(lambda: all(n.finalized_count() == 30 for n in nodes))
            nodes[2].net.pause()  # validator 2 misses the switch
            raw = change_message(genesis.network, change, keys[0].ledger_signer(),
                                 issued_at_ms=int(time.time() * 1000), parents=[root])
            nodes[0].submit([raw])
            await wait_until(lambda: all(n.committee.epoch == 1 for n in nodes[:2]))
            assert 0 == nodes[2].committee.epoch
            # Validators 0 and 1 hold 3 of epoch 1's weight 4: they finalize alone.
            more = nodes[1].submit(make_messages(genesis.network, client, [root], 40))
            await wait_until(lambda: all(n.ledger.status(more[-1].message_id or b"")["state"]
                                     == "finalized" for n in nodes[:2]))
            nodes[2].net.resume()
            await wait_until(lambda: nodes[2].committee.epoch == 1)
            assert nodes[2].stats["tail_requests"] >= 1
            await wait_until(lambda: nodes[2].finalized_count() == nodes[0].finalized_count())
            assert finalized_order(nodes[0]) == finalized_order(nodes[2])
            # The committee may commit one more (empty) round between the two reads;
            # the states must meet, whatever the pace.
            await wait_until(lambda: nodes[0].ledger.snapshot() == nodes[2].ledger.snapshot())

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_a_fifth_validator_joins_and_follows_into_the_new_epoch(
    tmp_path: Path, local_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = local_network
    client = Ed25519Signer.generate()
    root = genesis.ledger_genesis().id
    fifth = NodeKeys.generate(4)
    entry = ValidatorEntry(4, "validator-4", fifth.public_key, fifth.node_key, 1,
                           f"127.0.0.1:{free_ports(1)[0]}")
    target = EpochCommittee(1, (*genesis.validators, entry))
    change = sign_change(EpochCommittee.of_genesis(genesis), target, keys[:3])

    async def go() -> None:
        dbs = [SqliteDatabase(tmp_path / f"j{i}.db") for i in range(5)]
        nodes = [ConsortiumNode(genesis, k, db, options=OPTIONS)
                 for k, db in zip(keys, dbs[:4], strict=True)]
        nodes.append(ConsortiumNode(genesis, fifth, dbs[4], options=OPTIONS, join=target))
        assert nodes[4].id is None  # an observer until its epoch begins
        for n in nodes:
            await n.start()
        try:
            nodes[0].submit(make_messages(genesis.network, client, [root], 40))
            raw = change_message(genesis.network, change, keys[2].ledger_signer(),
                                 issued_at_ms=int(time.time() * 1000), parents=[root])
            nodes[2].submit([raw])
            await wait_until(lambda: all(n.committee.epoch == 1 for n in nodes))
            assert 4 == nodes[4].id
            more = nodes[4].submit(make_messages(genesis.network, client, [root], 30))
            assert {"accepted"} == {r.status for r in more}
            last = more[-1].message_id or b""
            await wait_until(lambda: all(n.ledger.status(last)["state"] == "finalized"
                                     for n in nodes))
            await wait_until(lambda: len({n.finalized_count() for n in nodes}) == 1)
            orders = [finalized_order(n) for n in nodes]
            assert all(o == orders[0] for o in orders)
            assert 1 == len({n.ledger.snapshot().utxo_hash for n in nodes})
            assert nodes[4].stats["proposed"] > 0
        finally:
            for n in nodes:
                await n.stop()
            for db in dbs:
                db.close()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_of_two_changes_in_one_commit_the_first_wins(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(1, tmp_path / "one",
                                            consensus=ConsensusParams(min_round_interval_ms=0))
    keys = NodeKeys.load(paths[0])
    db = SqliteDatabase(tmp_path / "one.db")
    node = ConsortiumNode(genesis, keys, db)
    try:
        current = EpochCommittee.of_genesis(genesis)
        heavy = EpochCommittee(1, (dataclasses.replace(genesis.validators[0], weight=5),))
        light = EpochCommittee(1, (dataclasses.replace(genesis.validators[0], weight=7),))
        root = genesis.ledger_genesis().id
        raws = [change_message(genesis.network, sign_change(current, t, [keys]),
                               keys.ledger_signer(), issued_at_ms=int(time.time() * 1000),
                               parents=[root]) for t in (heavy, light)]
        assert {"accepted"} == {r.status for r in node.submit(raws)}
        for i in range(6):
            node.step(10.0 + i)
        states = [node.ledger.status(message_id(r)) for r in raws]
        assert 1 == node.committee.epoch
        assert ["finalized", "conflicting"] == [s["state"] for s in states] or [
            "conflicting", "finalized"] == [s["state"] for s in states]
        winner = 5 if states[0]["state"] == "finalized" else 7
        assert winner == node.committee.validators[0].weight
        assert "committee-change" in {s.get("reason") for s in states}
        restarted = ConsortiumNode(genesis, keys, db)
        assert (1, winner) == (restarted.committee.epoch, restarted.committee.validators[0].weight)
        restarted.ledger.close()
    finally:
        node.ledger.close()
        db.close()
