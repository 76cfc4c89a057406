"""Peer limits: token buckets, a flooding peer throttled then cut off, others still served."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simtrust.ledger import network_id_from_name
from simtrust.ledger.net import (
    HandshakeFailed,
    LinkIdentity,
    NodeKeys,
    PeerLimits,
    PeerNetwork,
    TokenBucket,
    generate_local_network,
    open_link,
)
from simtrust.ledger.net._wire import Frame, FrameType, encode_items, encode_ping

from .conftest import HANG_S, WAIT_S, wait_until


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=lambda: now[0])
    assert [0.0] * 5 == [bucket.take(1) for _ in range(5)]
    assert abs(0.1 - bucket.take(1)) < 1e-9  # in debt by one token: 0.1 s at 10/s
    now[0] += 1.0
    assert 0.0 == bucket.take(5)


def test_flooding_peer_is_throttled_and_disconnected_while_an_honest_peer_is_served(
    tmp_path: Path,
) -> None:
    genesis, paths = generate_local_network(3, tmp_path)
    keys = [NodeKeys.load(p) for p in paths]
    limits = PeerLimits(frames_per_s=200.0, burst_frames=50.0, flood_window_s=2.0,
                        flood_ratio=0.5, ban_s=30.0, redial_s=0.1)
    handled: dict[int, int] = {1: 0, 2: 0}
    answered: set[int] = set()

    async def go() -> None:
        victim: PeerNetwork

        def on_victim(peer: int, frame: Frame) -> None:
            handled[peer] += 1
            if frame.type == FrameType.PING:
                victim.send(peer, encode_ping(frame.nonce, pong=True), droppable=False)

        def on_honest(peer: int, frame: Frame) -> None:
            if frame.type == FrameType.PONG:
                answered.add(frame.nonce)

        victim = PeerNetwork(genesis, keys[0], on_victim, limits=limits)
        honest = PeerNetwork(genesis, keys[1], on_honest)
        flooder = PeerNetwork(genesis, keys[2], lambda p, f: None)
        for net in (victim, honest, flooder):
            await net.start()
        try:
            # Both ends: the dialler counts its link once the listener's ACCEPTED frame is in.
            await wait_until(lambda: victim.connected() == [1, 2] and 0 in flooder.connected()
                             and 0 in honest.connected())
            link = flooder.peers[0].link
            assert link is not None
            junk = encode_items(FrameType.MSGS, [b"\x00" * 100])

            async def flood() -> int:
                sent = 0
                try:
                    while True:
                        link.write(junk)
                        sent += 1
                        if sent % 64 == 0:
                            await link.drain()
                except (ConnectionError, OSError):
                    return sent

            flood_task = asyncio.create_task(flood())
            start = time.monotonic()
            nonce = 0

            def flooder_cut_off() -> bool:
                return 2 not in victim.connected() and victim.peers[2].stats.disconnects >= 1

            # The honest peer keeps pinging until the victim has cut the flooder off.
            while not flooder_cut_off():
                assert time.monotonic() - start < WAIT_S, "the flooder was never cut off"
                nonce += 1
                honest.send(0, encode_ping(nonce), droppable=False)
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - start
            flood_task.cancel()
            # The flooder got at most its rate plus burst through to the handler ...
            assert handled[2] <= limits.frames_per_s * elapsed + limits.burst_frames + 50
            # ... and stays banned (its redials are refused) ...
            assert 2 not in victim.connected()
            # ... while the honest peer kept its link and every ping was answered.
            await wait_until(lambda: answered == set(range(1, nonce + 1)))
            assert 1 in victim.connected()
            assert 0 == victim.peers[1].stats.disconnects
        finally:
            for net in (flooder, honest, victim):
                await net.stop()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_outbound_queue_is_bounded_and_gossip_is_dropped_when_full(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(2, tmp_path)
    keys = [NodeKeys.load(p) for p in paths]
    limits = PeerLimits(out_frames=4)

    async def go() -> None:
        a = PeerNetwork(genesis, keys[0], lambda p, f: None, limits=limits)
        b = PeerNetwork(genesis, keys[1], lambda p, f: None, limits=limits)
        await a.start()
        await b.start()
        try:
            await wait_until(lambda: bool(a.connected()))
            frame = encode_items(FrameType.MSGS, [b"x" * 10])
            # Queued synchronously, before the writer task runs: the fifth is dropped.
            results = [a.send(1, frame) for _ in range(6)]
            assert [True] * 4 + [False] * 2 == results
            assert 2 == a.peers[1].stats.dropped_out
            # Priority frames may fill twice the bound; one more means the peer does not drain: cut off.
            assert all(a.send(1, frame, droppable=False) for _ in range(4))
            assert not a.send(1, frame, droppable=False)
            assert [] == a.connected()
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_paused_links_drop_and_refuse_until_resumed(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(2, tmp_path)
    keys = [NodeKeys.load(p) for p in paths]

    async def go() -> None:
        a = PeerNetwork(genesis, keys[0], lambda p, f: None, limits=PeerLimits(redial_s=0.05))
        b = PeerNetwork(genesis, keys[1], lambda p, f: None, limits=PeerLimits(redial_s=0.05))
        await a.start()
        await b.start()
        try:
            await wait_until(lambda: a.connected() == [1])
            a.pause()
            await wait_until(lambda: [] == a.connected() and [] == b.connected())
            a.resume()
            await wait_until(lambda: a.connected() == [1] and b.connected() == [0])
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_a_live_validator_refuses_keys_genesis_does_not_pin(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(2, tmp_path)
    keys = [NodeKeys.load(p) for p in paths]
    stranger = NodeKeys.generate(1)

    async def go() -> None:
        a = PeerNetwork(genesis, keys[0], lambda p, f: None)
        await a.start()
        try:
            host, port = genesis.validators[0].p2p.split(":")
            stranger_link = LinkIdentity(network_id_from_name(genesis.network),
                                         stranger.transport_key())
            with pytest.raises((asyncio.IncompleteReadError, ConnectionError, HandshakeFailed)):
                await open_link(host, int(port), identity=stranger_link,
                                expected_peer=genesis.validators[0].node_key)
            # The pinned validator 1 does get in; when it stops, its link goes away.
            b = PeerNetwork(genesis, keys[1], lambda p, f: None)
            await b.start()
            await wait_until(lambda: bool(a.connected()))
            assert [1] == a.connected()
            await b.stop()
            await wait_until(lambda: [] == a.connected())
        finally:
            await a.stop()

    asyncio.run(asyncio.wait_for(go(), HANG_S))


def test_repeated_faults_close_the_link_and_ban_the_peer(tmp_path: Path) -> None:
    genesis, paths = generate_local_network(2, tmp_path)
    keys = [NodeKeys.load(p) for p in paths]
    limits = PeerLimits(max_strikes=3, ban_s=30.0, redial_s=0.05)

    async def go() -> None:
        a = PeerNetwork(genesis, keys[0], lambda p, f: None, limits=limits)
        b = PeerNetwork(genesis, keys[1], lambda p, f: None, limits=limits)
        await a.start()
        await b.start()
        try:
            await wait_until(lambda: bool(a.connected()))
            a.strike(1, "test fault")
            a.strike(1, "test fault")
            assert [1] == a.connected()
            a.strike(1, "test fault")
            assert [] == a.connected()
            await asyncio.sleep(0.5)  # b redials every 50 ms; the ban refuses it
            assert [] == a.connected()
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(go(), HANG_S))
