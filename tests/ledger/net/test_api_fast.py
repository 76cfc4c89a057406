"""The validator's submit and feed answered without FastAPI's routing (``simtrust.cli._validator_fast``).

Each answer the fast path gives must be the route's own answer, byte for byte;
every request it does not take must reach the route.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from simtrust.api import create_app
from simtrust.api.problems import simtrust_problem
from simtrust.cli._validator_fast import ValidatorFastPath, serve_fast
from simtrust.cli.node import validator_router
from simtrust.ledger import Ed25519Signer, message_id
from simtrust.ledger.net import (
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    encode_batch,
    generate_local_network,
)
from simtrust.runtime import Runtime

from .conftest import make_messages

SUBMIT = "/v1/ledger/network/submit"
FEED = "/v1/ledger/network/finalized"
BINARY = {"Content-Type": "application/octet-stream"}


@dataclass
class Solo:
    node: ConsortiumNode
    fast: TestClient  # the API with the fast path in front, as `simtrust node run` serves it
    plain: TestClient  # the same API and node, routes only
    passed_on: list[str]  # paths the fast path handed to the application behind it
    headers: dict[str, str]


@pytest.fixture
def solo(sqlite_runtime: Runtime, tmp_path: Path,
         operator_headers: dict[str, str]) -> Iterator[Solo]:
    genesis, paths = generate_local_network(
        1, tmp_path / "net", consensus=ConsensusParams(min_round_interval_ms=0))
    node = ConsortiumNode(genesis, NodeKeys.load(paths[0]), sqlite_runtime.db)
    sqlite_runtime.ledger = node.ledger

    def api() -> FastAPI:
        app = create_app(sqlite_runtime)
        app.include_router(validator_router)
        app.state.consortium = node
        return app

    fast, plain = api(), api()
    passed_on: list[str] = []

    class Witness:
        """Records what reaches the application behind the fast path."""

        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                passed_on.append(scope["path"])
            await self.app(scope, receive, send)  # type: ignore[operator]

    fast.add_middleware(Witness)
    serve_fast(fast, node, sqlite_runtime)
    with TestClient(fast) as f, TestClient(plain) as p:
        # The key is accepted once through a route; the fast path then knows it.
        assert 200 == p.get("/v1/ledger/network/status", headers=operator_headers).status_code
        yield Solo(node, f, p, passed_on, operator_headers)


def _messages(node: ConsortiumNode, count: int) -> list[bytes]:
    return make_messages(node.genesis.network, Ed25519Signer.generate(),
                         [node.genesis.ledger_genesis().id], count)


def _same(a: object, b: object) -> None:
    ra, rb = a, b
    assert ra.status_code == rb.status_code  # type: ignore[attr-defined]
    assert ra.content == rb.content  # type: ignore[attr-defined]
    assert ra.headers["content-type"] == rb.headers["content-type"]  # type: ignore[attr-defined]


def test_submit_and_feed_answer_as_the_routes_do(solo: Solo) -> None:
    raws = _messages(solo.node, 6)
    body = encode_batch(raws)
    first = solo.fast.post(SUBMIT, content=body, headers={**solo.headers, **BINARY})
    assert 200 == first.status_code
    assert [{"status": "accepted", "message_id": message_id(r).hex()} for r in raws] \
        == first.json()["results"]
    assert [] == solo.passed_on
    # Submitted again, both answer the same document (every message a duplicate now).
    _same(solo.fast.post(SUBMIT, content=body, headers={**solo.headers, **BINARY}),
          solo.plain.post(SUBMIT, content=body, headers={**solo.headers, **BINARY}))
    for i in range(6):
        solo.node.step(1000.0 + i)
    for query in ("", "?after=0", "?after=2&limit=3", "?limit=1000&other=x", "?after=99"):
        _same(solo.fast.get(FEED + query, headers=solo.headers),
              solo.plain.get(FEED + query, headers=solo.headers))
    assert [] == solo.passed_on
    feed = solo.fast.get(FEED + "?after=0", headers=solo.headers).json()["finalized"]
    assert [message_id(r).hex() for r in raws] == [mid for _, mid, _ in feed]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=1001", "?after=-1", "?after=x",
                                   "?after=1&after=2", "?aft%65r=3", "?limit=+5"])
def test_feed_queries_it_does_not_read_go_to_the_route(solo: Solo, query: str) -> None:
    _same(solo.fast.get(FEED + query, headers=solo.headers),
          solo.plain.get(FEED + query, headers=solo.headers))
    assert [FEED] == solo.passed_on


def test_refusals_are_the_routes_own(solo: Solo) -> None:
    body = encode_batch(_messages(solo.node, 2))
    # No key, and a key never accepted before: the route's 401.
    for headers in ({}, {"Authorization": "Bearer sk_live_0000000000000000000000000000"}):
        _same(solo.fast.post(SUBMIT, content=body, headers={**headers, **BINARY}),
              solo.plain.post(SUBMIT, content=body, headers={**headers, **BINARY}))
        _same(solo.fast.get(FEED, headers=headers), solo.plain.get(FEED, headers=headers))
    # A batch that does not decode: the route's 400 problem, with the body replayed.
    bad = b"\x00\x00\x00\x09abc"
    fast = solo.fast.post(SUBMIT, content=bad, headers={**solo.headers, **BINARY})
    _same(fast, solo.plain.post(SUBMIT, content=bad, headers={**solo.headers, **BINARY}))
    assert 400 == fast.status_code
    assert fast.headers["content-type"].startswith("application/problem+json")
    assert SUBMIT in solo.passed_on


def test_a_body_over_the_limit_or_without_a_length_goes_to_the_body_limit(
        solo: Solo, sqlite_runtime: Runtime) -> None:
    limit = sqlite_runtime.settings.max_body_bytes
    big = b"\x00" * (limit + 1)
    fast = solo.fast.post(SUBMIT, content=big, headers={**solo.headers, **BINARY})
    assert 413 == fast.status_code
    _same(fast, solo.plain.post(SUBMIT, content=big, headers={**solo.headers, **BINARY}))

    def chunked() -> Iterator[bytes]:
        yield encode_batch(_messages(solo.node, 1))

    solo.passed_on.clear()
    streamed = solo.fast.post(SUBMIT, content=chunked(), headers={**solo.headers, **BINARY})
    assert 200 == streamed.status_code
    assert [SUBMIT] == solo.passed_on


def test_a_busy_validator_answers_the_routes_429_problem(solo: Solo) -> None:
    body = encode_batch(_messages(solo.node, 3))
    solo.node._inbox.extend([(bytes(32), b"queued")] * (solo.node.options.busy_inbox + 1))
    fast = solo.fast.post(SUBMIT, content=body, headers={**solo.headers, **BINARY})
    _same(fast, solo.plain.post(SUBMIT, content=body, headers={**solo.headers, **BINARY}))
    assert 429 == fast.status_code
    assert "busy" in fast.json()["detail"]
    assert [] == solo.passed_on
    solo.node._inbox.clear()
    assert 200 == solo.fast.post(SUBMIT, content=body, headers={**solo.headers, **BINARY}).status_code


def test_other_paths_and_methods_pass_through() -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = ValidatorFastPath(app, node=None, tenants=None, body_limit=10,  # type: ignore[arg-type]
                             on_error=simtrust_problem)
    client = TestClient(fast)
    assert 204 == client.get(SUBMIT).status_code
    assert 204 == client.post(FEED).status_code
    assert 204 == client.get("/v1/ledger/network/status").status_code
    assert [("GET", SUBMIT), ("POST", FEED), ("GET", "/v1/ledger/network/status")] == seen
