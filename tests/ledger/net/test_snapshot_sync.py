"""Checkpoints and snapshot sync (docs/network.md, "Snapshot sync").

Certificates and the commit stream are untrusted bytes (strict decoders,
fuzzed); a sync session accepts served history only when it hashes to a
certified head; and a validator that slept through two committee changes
comes back by installing certified history, then proposes again in the
current epoch with the same order and state as the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import DecodeError, InvalidSignature, Rejected
from simtrust.ledger import CommitRecord, Ed25519Signer, chain_genesis
from simtrust.ledger.consensus import Committee
from simtrust.ledger.net import (
    ConsensusParams,
    ConsortiumNode,
    EpochCommittee,
    NetworkGenesis,
    NodeKeys,
    change_message,
    generate_local_network,
    sign_change,
)
from simtrust.ledger.net._checkpoints import Checkpoint, CheckpointCert, sign_checkpoint
from simtrust.ledger.net._sync import SyncSession, commit_items, decode_commit_items
from simtrust.ledger.net._wire import (
    FrameType,
    Status,
    decode_frame,
    encode_floor,
    encode_items,
    encode_status,
)

from .conftest import HANG_S, OPTIONS, LocalNetwork, finalized_order, make_messages, wait_until

NID = b"\x01" * 8


@pytest.fixture
def sync_network(tmp_path: Path) -> tuple[NetworkGenesis, list[NodeKeys]]:
    """Four validators checkpointing every 5 commits and keeping 40 rounds of DAG."""
    genesis, paths = generate_local_network(
        4, tmp_path / "net",
        consensus=ConsensusParams(leader_timeout_ms=300, min_round_interval_ms=30,
                                  gc_depth=40, checkpoint_interval=5))
    return genesis, [NodeKeys.load(p) for p in paths]


def _committee(keys: list[NodeKeys], epoch: int = 0) -> Committee:
    return Committee.from_keys(epoch, [(k.public_key, 1) for k in keys])


def _records(count: int) -> list[CommitRecord]:
    signer = Ed25519Signer(b"\x07" * 32)
    out = []
    for h in range(1, count + 1):
        raws = [bytes([h, i]) * 40 + signer.sign(bytes([h, i])) for i in range(3)]
        out.append(CommitRecord(h, 10 * h, bytes([h]) * 32,
                                tuple((raw, i % 2, "conflict-double-spend" if i % 2 else None)
                                      for i, raw in enumerate(raws))))
    return out


def _head(records: list[CommitRecord], genesis_id: bytes) -> bytes:
    head = chain_genesis(genesis_id)
    for r in records:
        head = r.chain_after(head)
    return head


def _cert(keys: list[NodeKeys], cp: Checkpoint, signers: range) -> CheckpointCert:
    sigs = tuple(sign_checkpoint(cp, keys[i].block_key(), i, NID).signatures[0] for i in signers)
    return CheckpointCert(cp, sigs)


def test_a_certificate_needs_a_quorum_of_genuine_member_signatures(
    sync_network: tuple[NetworkGenesis, list[NodeKeys]],
) -> None:
    _, keys = sync_network
    committee = _committee(keys)
    cp = Checkpoint(0, 10, 42, False, b"\x05" * 32)
    cert = _cert(keys, cp, range(3))
    assert cert == CheckpointCert.decode(cert.encode())
    cert.verify(committee, NID)
    with pytest.raises(Rejected) as info:
        _cert(keys, cp, range(2)).verify(committee, NID)
    assert "no-quorum" == info.value.reason
    moved = CheckpointCert(dataclasses.replace(cp, chain=b"\x06" * 32), cert.signatures)
    with pytest.raises(InvalidSignature):
        moved.verify(committee, NID)
    with pytest.raises(InvalidSignature):
        cert.verify(committee, b"\x02" * 8)  # another network's checkpoint
    with pytest.raises(Rejected) as info:
        cert.verify(_committee(keys, epoch=1), NID)
    assert "epoch" == info.value.reason
    stranger = CheckpointCert(cp, (*cert.signatures, (9, b"\x00" * 64)))
    with pytest.raises(Rejected) as info:
        stranger.verify(committee, NID)
    assert "signer" == info.value.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_checkpoint_decoder_refuses_junk_with_decode_errors(data: bytes) -> None:
    try:
        cert = CheckpointCert.decode(data)
    except DecodeError:
        return
    assert data == cert.encode()


def test_commit_stream_round_trips_across_frame_boundaries() -> None:
    records = _records(4)
    items = commit_items(records)
    done, partial = decode_commit_items(items[:5])
    assert records[:1] == done
    assert partial is not None
    rest, partial = decode_commit_items(items[5:], partial)
    assert records[1:] == rest
    assert partial is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_commit_stream_decoder_refuses_junk_with_decode_errors(items: list[bytes]) -> None:
    try:
        done, _ = decode_commit_items(items)
    except DecodeError:
        return
    assert commit_items(done) == items[: len(commit_items(done))]


def _session(keys: list[NodeKeys], records: list[CommitRecord], genesis_id: bytes,
             target_height: int) -> SyncSession:
    session = SyncSession(1, 0, chain_genesis(genesis_id), _committee(keys), NID, 0.0)
    head = _head(records[:target_height], genesis_id)
    cp = Checkpoint(0, target_height, records[target_height - 1].round, False, head)
    weak = _cert(keys, dataclasses.replace(cp, height=target_height + 1), range(1))
    assert session.choose([weak, _cert(keys, cp, range(3))]) is not None
    return session


def test_a_session_installs_history_only_when_it_hashes_to_the_certified_head(
    sync_network: tuple[NetworkGenesis, list[NodeKeys]],
) -> None:
    _, keys = sync_network
    gid = b"\x09" * 32
    records = _records(6)
    session = _session(keys, records, gid, 5)
    items = commit_items(records)
    assert session.on_items(items[:8]) is None  # two commits and a half so far
    assert 2 == session.after
    done = session.on_items(items[8:])
    assert records[:5] == done

    # The same stream with one outcome flipped: refused, nothing returned.
    forged = list(records)
    raw, _, _ = forged[2].entries[0]
    forged[2] = forged[2]._replace(entries=((raw, 1, "conflict-unlock"), *forged[2].entries[1:]))
    session = _session(keys, records, gid, 5)
    with pytest.raises(Rejected) as info:
        session.on_items(commit_items(forged))
    assert "sync" == info.value.reason
    # A gap in the heights is refused too.
    session = _session(keys, records, gid, 5)
    with pytest.raises(Rejected):
        session.on_items(commit_items([records[0], records[2]]))


def _change(genesis: NetworkGenesis, keys: list[NodeKeys], current: EpochCommittee,
            signer: int) -> bytes:
    target = EpochCommittee(current.epoch + 1, current.validators)
    change = sign_change(current, target, keys[:3])
    return change_message(genesis.network, change, keys[signer].ledger_signer(),
                          issued_at_ms=int(time.time() * 1000),
                          parents=[genesis.ledger_genesis().id])


@pytest.mark.slow
def test_a_validator_two_epochs_behind_syncs_from_certified_state_and_validates_again(
    tmp_path: Path, sync_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = sync_network
    client = Ed25519Signer.generate()
    root = genesis.ledger_genesis().id

    async def go() -> None:
        async with LocalNetwork(genesis, keys, tmp_path) as net:
            nodes = net.nodes
            nodes[0].submit(make_messages(genesis.network, client, [root], 20))
            await wait_until(lambda: all(n.finalized_count() == 20 for n in nodes))
            await net.stop(3)

            # Two committee changes (same members) while validator 3 is away.
            epoch0 = EpochCommittee.of_genesis(genesis)
            nodes[0].submit([_change(genesis, keys, epoch0, 0)])
            await wait_until(lambda: all(n.committee.epoch == 1 for n in nodes[:3]))
            nodes[1].submit(make_messages(genesis.network, client, [root], 30))
            nodes[1].submit([_change(genesis, keys, nodes[1].epoch_committee, 1)])
            await wait_until(lambda: all(n.committee.epoch == 2 for n in nodes[:3]))
            nodes[2].submit(make_messages(genesis.network, client, [root], 30))
            # Enough commits after the second switch for a checkpoint of epoch 2.
            await wait_until(lambda: all(_checkpoint_epoch(n) == 2 for n in nodes[:3]))
            ends = [c for c in nodes[0].checkpoints.for_sync(0) if c.checkpoint.ends_epoch]
            assert [0, 1] == [c.checkpoint.epoch for c in ends]

            await net.start(3)
            await wait_until(lambda: nodes[3].committee.epoch == 2
                             and nodes[3].status()["syncing"] is None)
            assert nodes[3].stats["syncs_started"] >= 2
            assert nodes[3].stats["synced_commits"] > 0
            # Validator 3 validates again: its blocks are needed for nothing here
            # (three of four suffice) but it proposes and finalizes new messages.
            proposed = nodes[3].stats["proposed"]
            more = nodes[3].submit(make_messages(genesis.network, client, [root], 25))
            last = more[-1].message_id or b""
            await wait_until(lambda: all(n.ledger.status(last)["state"] == "finalized"
                                         for n in nodes))
            await wait_until(lambda: len({n.finalized_count() for n in nodes}) == 1)
            assert nodes[3].stats["proposed"] > proposed
            orders = [finalized_order(n) for n in nodes]
            assert orders[0] == orders[1] == orders[2] == orders[3]
            # an empty round may commit between reads: wait for the states to meet
            await wait_until(lambda: nodes[0].ledger.snapshot()._replace(tips_hash="")
                             == nodes[3].ledger.snapshot()._replace(tips_hash=""))
            assert nodes[3].ledger.snapshot() == nodes[3].ledger.recompute()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def _finalized_at(nodes: list[ConsortiumNode], mid: bytes) -> Callable[[], bool]:
    return lambda: all(n.ledger.status(mid)["state"] == "finalized" for n in nodes)


def _checkpoint_epoch(node: ConsortiumNode) -> int:
    cert = node.checkpoints.latest()
    return -1 if cert is None else cert.checkpoint.epoch


def test_a_validator_past_the_gc_horizon_syncs_within_its_epoch_and_restarts_from_there(
    tmp_path: Path, sync_network: tuple[NetworkGenesis, list[NodeKeys]]
) -> None:
    genesis, keys = sync_network
    client = Ed25519Signer.generate()
    root = genesis.ledger_genesis().id
    eager = dataclasses.replace(OPTIONS, sync_commits=5)

    async def go() -> None:
        async with LocalNetwork(genesis, keys, tmp_path) as net:
            nodes = net.nodes
            nodes[0].submit(make_messages(genesis.network, client, [root], 10))
            await wait_until(lambda: all(n.finalized_count() == 10 for n in nodes))
            await net.stop(3)
            start = nodes[0].ledger.height
            for i in range(12):  # separate batches: each finalized before the next, many commits
                results = nodes[i % 3].submit(make_messages(genesis.network, client, [root], 5))
                await wait_until(_finalized_at(nodes[:3], results[-1].message_id or b""))
            await wait_until(lambda: all(n.ledger.height >= start + 12 for n in nodes[:3]))
            await wait_until(lambda: all(_checkpoint_epoch(n) == 0 for n in nodes[:3]))

            await net.start(3, eager)
            await wait_until(lambda: nodes[3].stats["syncs_started"] >= 1
                             and nodes[3].status()["syncing"] is None)
            assert nodes[3].checkpoints.resume(0) is not None
            more = nodes[3].submit(make_messages(genesis.network, client, [root], 15))
            last = more[-1].message_id or b""
            await wait_until(lambda: all(n.ledger.status(last)["state"] == "finalized"
                                         for n in nodes))
            # Restarted after the sync, it resumes its core from the recorded point.
            await net.stop(3)
            await net.start(3)
            again = nodes[1].submit(make_messages(genesis.network, client, [root], 15))
            last = again[-1].message_id or b""
            await wait_until(lambda: all(n.ledger.status(last)["state"] == "finalized"
                                         for n in nodes))
            await wait_until(lambda: len({n.finalized_count() for n in nodes}) == 1)
            orders = [finalized_order(n) for n in nodes]
            assert orders[0] == orders[1] == orders[2] == orders[3]
            assert nodes[0].ledger.chain_head() == nodes[3].ledger.chain_head()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_sync_frames_round_trip() -> None:

    for kind in (FrameType.GET_CHECKPOINTS, FrameType.GET_COMMITS, FrameType.GET_TAIL):
        frame = decode_frame(encode_floor(kind, 77))
        assert (kind, 77) == (frame.type, frame.floor)
    with pytest.raises(DecodeError):
        encode_floor(FrameType.MSGS, 1)
    items = commit_items(_records(2))
    assert tuple(items) == decode_frame(encode_items(FrameType.COMMITS, items)).items
    status = Status(9, 8, 7, 6, epoch=3, height=5)
    assert status == decode_frame(encode_status(status)).status
