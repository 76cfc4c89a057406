"""POST /v1/attach/decisions taken at the application's entry (AttachFront): the same
bytes and headers as the route's JSONResponse, the body limit, the 500 problem of an
unexpected error, and the requests it leaves to the whole application (mounted in
another application, FastAPI's telemetry on)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from simtrust.api import _attach_fast, create_app
from simtrust.api._attach_fast import AttachFront
from simtrust.runtime import Runtime

from .conftest import TENANT, feed_not_due, imei, imsi
from .test_api import sim_body

URL = "/v1/attach/decisions"


@pytest.fixture
def app(sqlite_runtime: Runtime) -> Any:
    return create_app(sqlite_runtime)


@pytest.fixture
def client(app: Any, sqlite_runtime: Runtime) -> Iterator[tuple[TestClient, dict[str, str]]]:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    acme = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    operator = sqlite_runtime.tenants.create_key("operator-admin", "network elements")
    sqlite_runtime.subscriber.inventory.allocations.set(
        TENANT, iccid_prefixes=["89882"], imsi_prefixes=["00101"], actor="test")
    with TestClient(app, raise_server_exceptions=False) as http:
        assert 201 == http.post("/v1/sims", json=sim_body(1), headers={
            "Authorization": f"Bearer {acme.secret}"}).status_code
        headers = {"Authorization": f"Bearer {operator.secret}"}
        assert 200 == http.post(URL, json=_body(dry_run=True), headers=headers).status_code
        yield http, headers


def _body(**extra: Any) -> dict[str, Any]:
    return {"imsi": imsi(1).value, "imei": imei(1).value, "serving_plmn": "00101", **extra}


class _FrontAnswers:
    """Counts the requests the front takes (it alone passes the body limit)."""

    def __init__(self, front: AttachFront) -> None:
        self.spy = mock.patch.object(front.decisions, "answer",
                                     wraps=front.decisions.answer).start()

    @property
    def call_count(self) -> int:
        return sum(1 for call in self.spy.call_args_list if len(call.args) > 4)


def _answers(front: AttachFront) -> _FrontAnswers:
    return _FrontAnswers(front)


def test_the_answer_is_jsonresponses_bytes_and_headers(
    app: Any, client: tuple[TestClient, dict[str, str]],
) -> None:
    http, headers = client
    spy = _answers(app.attach_front)
    try:
        answer = http.post(URL, json=_body(dry_run=True), headers=headers)
    finally:
        mock.patch.stopall()
    assert 1 == spy.call_count
    expected = JSONResponse(answer.json())
    assert expected.body == answer.content
    assert expected.raw_headers == [(k.lower(), v) for k, v in answer.headers.raw]


def test_a_body_over_the_limit_gets_the_apps_413(
    app: Any, client: tuple[TestClient, dict[str, str]], sqlite_runtime: Runtime,
) -> None:
    http, headers = client
    limit = sqlite_runtime.settings.max_body_bytes
    padded = b'{"imsi": "' + imsi(1).value.encode() + b'"' + b" " * limit + b"}"
    front: AttachFront = app.attach_front
    with mock.patch.object(front, "whole", wraps=front.whole) as whole:
        refused = http.post(URL, content=padded, headers={
            **headers, "Content-Type": "application/json"})
    assert 1 == whole.call_count  # declared over the limit: the whole application answers
    assert (413, "application/problem+json") == (refused.status_code,
                                                 refused.headers["content-type"])
    assert limit == refused.json()["limit"]


@pytest.mark.parametrize("front", [True, False])
def test_an_unexpected_error_answers_the_apps_500_problem(
    app: Any, client: tuple[TestClient, dict[str, str]], sqlite_runtime: Runtime,
    front: bool,
) -> None:
    http, headers = client
    if not front:
        app.attach_front = None
    engine = sqlite_runtime.subscriber.attach
    with mock.patch.object(engine, "decide_held", side_effect=RuntimeError("boom")):
        failed = http.post(URL, json=_body(), headers=headers)
    assert (500, "application/problem+json") == (failed.status_code,
                                                 failed.headers["content-type"])
    problem = failed.json()
    assert ("internal", URL) == (problem["type"].rsplit("/", 1)[1], problem["instance"])
    assert "boom" not in failed.text


def test_what_it_takes(app: Any) -> None:
    front: AttachFront = app.attach_front
    scope = {"type": "http", "path": URL, "method": "POST"}
    assert front.takes(dict(scope))
    assert not front.takes({**scope, "method": "GET"})
    assert not front.takes({**scope, "path": "/v1/sims"})
    assert not front.takes({**scope, "type": "websocket"})
    assert not front.takes({**scope, "app": object()})  # mounted: the parent's layers


def test_with_telemetry_on_the_whole_application_answers(
    app: Any, client: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    http, headers = client
    front: AttachFront = app.attach_front
    monkeypatch.setattr(_attach_fast, "TELEMETRY_RECHECK_S", 0.0)
    spy = _answers(front)
    try:
        with mock.patch.object(front._telemetry, "enabled", return_value=True):
            traced = http.post(URL, json=_body(dry_run=True), headers=headers)
        plain = http.post(URL, json=_body(dry_run=True), headers=headers)
    finally:
        mock.patch.stopall()
    assert 1 == spy.call_count  # only the request made with telemetry off
    assert (200, 200) == (traced.status_code, plain.status_code)
    assert traced.json() == plain.json()


def test_telemetry_is_asked_at_most_every_recheck_interval(app: Any) -> None:
    front: AttachFront = app.attach_front
    scope = {"type": "http", "path": URL, "method": "POST"}
    with mock.patch.object(front._telemetry, "enabled", return_value=False) as asked:
        assert front.takes(dict(scope))
        assert front.takes(dict(scope))
    assert 1 == asked.call_count


def test_decisions_of_concurrent_requests_are_answered_once_stored(
    app: Any, client: tuple[TestClient, dict[str, str]], sqlite_runtime: Runtime,
) -> None:
    """Requests decided together on the loop: each answer after its batch is stored."""
    http, headers = client
    engine = sqlite_runtime.subscriber.attach
    feed_not_due(engine)
    assert 200 == http.post(URL, json=_body(), headers=headers).status_code  # binds
    http.post(URL, json=_body(), headers=headers)  # the binding cached
    body = http.post(URL, json=_body(), headers=headers).request.content
    raw = [(b"authorization", headers["Authorization"].encode()),
           (b"content-type", b"application/json"),
           (b"content-length", str(len(body)).encode())]
    statuses: list[int] = []

    async def one() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": URL, "raw_path": URL.encode(),
                 "query_string": b"", "root_path": "", "headers": raw,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(8)))

    with mock.patch.object(engine, "commit_deferred", wraps=engine.commit_deferred) as commit:
        asyncio.run(many())
    assert [200] * 8 == statuses
    assert 8 == sum(len(call.args[0]) for call in commit.call_args_list)
