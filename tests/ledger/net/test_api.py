"""The validator's HTTP routes (``simtrust.cli.node``): submit, status, feed, snapshot, links."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.api import create_app
from simtrust.cli.node import validator_router
from simtrust.errors import DecodeError, PayloadTooLarge
from simtrust.ledger import Ed25519Signer
from simtrust.ledger.net import (
    MAX_BATCH,
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    decode_batch,
    encode_batch,
    generate_local_network,
)
from simtrust.runtime import Runtime

from .conftest import make_messages


@pytest.fixture
def solo(sqlite_runtime: Runtime, tmp_path: Path) -> Iterator[tuple[TestClient, ConsortiumNode]]:
    """A one-validator consortium node behind the API (its loop is stepped by the test)."""
    genesis, paths = generate_local_network(
        1, tmp_path / "net", consensus=ConsensusParams(min_round_interval_ms=0)
    )
    node = ConsortiumNode(genesis, NodeKeys.load(paths[0]), sqlite_runtime.db)
    sqlite_runtime.ledger = node.ledger
    app = create_app(sqlite_runtime)
    app.include_router(validator_router)
    app.state.consortium = node
    with TestClient(app) as client:
        yield client, node


def _step(node: ConsortiumNode, rounds: int) -> None:
    for i in range(rounds):
        node.step(1000.0 + i)


def test_submitted_batch_is_finalized_by_a_committee_of_one(
    solo: tuple[TestClient, ConsortiumNode], operator_headers: dict[str, str]
) -> None:
    client, node = solo
    raws = make_messages(node.genesis.network, Ed25519Signer.generate(),
                         [node.genesis.ledger_genesis().id], 5)
    response = client.post("/v1/ledger/network/submit", content=encode_batch(raws),
                           headers={**operator_headers, "Content-Type": "application/octet-stream"})
    assert 200 == response.status_code
    assert ["accepted"] * 5 == [r["status"] for r in response.json()["results"]]
    _step(node, 6)
    feed = client.get("/v1/ledger/network/finalized?after=0", headers=operator_headers).json()
    ids = [r["message_id"] for r in response.json()["results"]]
    assert ids == [mid for _, mid, _ in feed["finalized"]]
    status = client.get("/v1/ledger/network/status", headers=operator_headers).json()
    assert 5 == status["finalized"]
    assert status["commits"] >= 1
    snapshot = client.get("/v1/ledger/network/snapshot", headers=operator_headers).json()
    assert node.ledger.snapshot().order_hash == snapshot["order_hash"]
    parents = client.get("/v1/ledger/network/parents?count=2", headers=operator_headers).json()
    assert 1 <= len(parents["parents"]) <= 2
    # The explorer serves the same, committee-ordered ledger.
    view = client.get("/v1/ledger/explorer/tangle", headers=operator_headers).json()
    assert 5 == view["finalized"]


def test_links_need_an_operator_and_pause_the_node(
    solo: tuple[TestClient, ConsortiumNode], operator_headers: dict[str, str]
) -> None:
    client, node = solo
    assert 401 == client.post("/v1/ledger/network/links", json={"paused": True}).status_code
    response = client.post("/v1/ledger/network/links", json={"paused": True},
                           headers=operator_headers)
    assert 200 == response.status_code
    assert response.json()["paused"] is True
    assert node.net.paused
    before = node.core.highest_round
    _step(node, 3)
    assert before == node.core.highest_round  # a partitioned validator proposes nothing
    client.post("/v1/ledger/network/links", json={"paused": False}, headers=operator_headers)
    assert not node.net.paused


def test_malformed_batch_is_a_problem_document(
    solo: tuple[TestClient, ConsortiumNode], operator_headers: dict[str, str]
) -> None:
    client, _ = solo
    response = client.post("/v1/ledger/network/submit", content=b"\x00\x00\x00\x09abc",
                           headers={**operator_headers, "Content-Type": "application/octet-stream"})
    assert 400 == response.status_code
    assert response.headers["content-type"].startswith("application/problem+json")


def test_batch_codec_round_trips_and_bounds_the_count() -> None:
    raws = [b"", b"a", b"b" * 300]
    assert raws == decode_batch(encode_batch(raws))
    with pytest.raises(PayloadTooLarge):
        decode_batch(encode_batch([b"x"] * (MAX_BATCH + 1)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_batch_bytes_decode_or_raise(data: bytes) -> None:
    try:
        items: Any = decode_batch(data)
    except DecodeError:
        return
    assert encode_batch(items) == data


def test_requests_from_one_peer_are_rate_limited(
    solo: tuple[TestClient, ConsortiumNode],
) -> None:
    _, node = solo
    burst = int(node.options.request_burst)
    answers = [node._may_ask(7) for _ in range(burst + 20)]
    assert all(answers[: burst - 1])
    assert not answers[-1]
    assert node._may_ask(8)  # another peer has its own bucket


def test_a_validator_behind_its_peers_refuses_clients_with_429(
    solo: tuple[TestClient, ConsortiumNode], operator_headers: dict[str, str]
) -> None:
    client, node = solo
    raws = make_messages(node.genesis.network, Ed25519Signer.generate(),
                         [node.genesis.ledger_genesis().id], 3)
    node._inbox.extend([(bytes(32), b"queued")] * (node.options.busy_inbox + 1))
    response = client.post("/v1/ledger/network/submit", content=encode_batch(raws),
                           headers={**operator_headers, "Content-Type": "application/octet-stream"})
    assert 429 == response.status_code
    assert 1 == node.stats["clients_refused"]
    node._inbox.clear()
    response = client.post("/v1/ledger/network/submit", content=encode_batch(raws),
                           headers={**operator_headers, "Content-Type": "application/octet-stream"})
    assert 200 == response.status_code
