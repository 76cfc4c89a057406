"""POST /v1/attach/decisions: the common request answered by the pure ASGI fast path
(api/_attach_fast.py) gets the route's answer; every other request gets the route's own
answer, refusals and problem documents included. Each test runs with the request taken
at the application's entry (AttachFront) and, as while FastAPI's telemetry is on, by the
middleware inside the application (AttachFastPath)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.api.routes.subscriber import AttachIn
from simtrust.errors import Conflict
from simtrust.runtime import Runtime
from simtrust.subscriber import decision_history

from .conftest import TENANT, feed_not_due, imei, imsi
from .test_api import sim_body

URL = "/v1/attach/decisions"


@pytest.fixture(params=["front", "middleware"])
def api(request: pytest.FixtureRequest, sqlite_runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(sqlite_runtime)
    assert app.attach_front is not None  # type: ignore[attr-defined]
    if request.param == "middleware":
        app.attach_front = None  # type: ignore[attr-defined]
    with TestClient(app) as client:
        yield client


@pytest.fixture
def fleet(api: Any, sqlite_runtime: Runtime) -> dict[str, dict[str, str]]:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    acme = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    operator = sqlite_runtime.tenants.create_key("operator-admin", "network elements")
    inventory = sqlite_runtime.subscriber.inventory
    inventory.allocations.set(TENANT, iccid_prefixes=["89882"], imsi_prefixes=["00101"],
                              actor="test")
    headers = {"acme": {"Authorization": f"Bearer {acme.secret}"},
               "operator": {"Authorization": f"Bearer {operator.secret}"},
               "x-api-key": {"X-API-Key": operator.secret}}
    assert 201 == api.post("/v1/sims", json=sim_body(1), headers=headers["acme"]).status_code
    return headers


def _body(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"imsi": imsi(n).value, "imei": imei(n).value, "serving_plmn": "00101", **extra}


def _fast_calls() -> mock.MagicMock:
    """A spy on the body parse only the fast path does (the route parses through FastAPI)."""
    return mock.patch.object(AttachIn, "model_validate_json",
                             wraps=AttachIn.model_validate_json).start()


def test_fast_answer_is_the_routes(api: Any, fleet: dict[str, dict[str, str]],
                                   sqlite_runtime: Runtime) -> None:
    # The key's first use goes through the route (it is not yet accepted moments ago).
    first = api.post(URL, json=_body(dry_run=True), headers=fleet["operator"])
    spy = _fast_calls()
    try:
        again = api.post(URL, json=_body(dry_run=True), headers=fleet["operator"])
        by_x_key = api.post(URL, json=_body(dry_run=True), headers=fleet["x-api-key"])
    finally:
        mock.patch.stopall()
    assert 2 == spy.call_count
    assert (200, 200, 200) == (first.status_code, again.status_code, by_x_key.status_code)
    assert first.json() == again.json() == by_x_key.json()
    assert first.headers["content-type"] == again.headers["content-type"]
    decided = api.post(URL, json=_body(), headers=fleet["operator"]).json()
    assert (True, "ok") == (decided["allowed"], decided["reason"])
    # Audited (dry runs are not): the decision is in the SIM's history.
    history = api.get(f"/v1/sims/{sim_body(1)['iccid']}/decisions", headers=fleet["acme"])
    assert ["ok"] == [d["reason"] for d in history.json()["decisions"]]


def test_other_requests_get_the_routes_refusals(api: Any,
                                                fleet: dict[str, dict[str, str]]) -> None:
    api.post(URL, json=_body(dry_run=True), headers=fleet["operator"])  # keys accepted
    api.get("/v1/sims", headers=fleet["acme"])
    tenant = api.post(URL, json=_body(), headers=fleet["acme"])
    assert (403, "application/problem+json") == (tenant.status_code,
                                                 tenant.headers["content-type"])
    missing = api.post(URL, json={"imsi": imsi(1).value}, headers=fleet["operator"])
    assert (422, "validation-error") == (missing.status_code,
                                         missing.json()["type"].rsplit("/", 1)[1])
    extra = api.post(URL, json=_body(colour="red"), headers=fleet["operator"])
    assert 422 == extra.status_code
    malformed = api.post(URL, content=b'{"imsi": ', headers={
        **fleet["operator"], "Content-Type": "application/json"})
    assert (400, "malformed-json") == (malformed.status_code,
                                       malformed.json()["type"].rsplit("/", 1)[1])
    plmn = api.post(URL, json=_body(serving_plmn="1"), headers=fleet["operator"])
    assert (400, "application/problem+json") == (plmn.status_code,
                                                 plmn.headers["content-type"])
    anonymous = api.post(URL, json=_body())
    assert (401, "Bearer") == (anonymous.status_code, anonymous.headers["www-authenticate"])
    unknown = api.post(URL, json=_body(), headers={"Authorization": "Bearer st_nope"})
    assert 401 == unknown.status_code

    def chunks() -> Any:
        yield b'{"imsi": "' + imsi(1).value.encode() + b'", "imei": "'
        yield imei(1).value.encode() + b'", "serving_plmn": "00101", "dry_run": true}'

    chunked = api.post(URL, content=chunks(), headers={
        **fleet["operator"], "Content-Type": "application/json"})
    assert (200, True) == (chunked.status_code, chunked.json()["allowed"])


def test_a_failed_decision_answers_a_problem(api: Any, fleet: dict[str, dict[str, str]],
                                             sqlite_runtime: Runtime) -> None:
    api.post(URL, json=_body(dry_run=True), headers=fleet["operator"])
    engine = sqlite_runtime.subscriber.attach
    spy = _fast_calls()
    try:
        with mock.patch.object(engine, "decide", side_effect=Conflict("busy", reason="test")):
            refused = api.post(URL, json=_body(), headers=fleet["operator"])
    finally:
        mock.patch.stopall()
    assert 1 == spy.call_count
    assert (409, "application/problem+json") == (refused.status_code,
                                                 refused.headers["content-type"])
    assert URL == refused.json()["instance"]
    bad_imsi = api.post(URL, json=_body(imsi="12"), headers=fleet["operator"])
    assert (400, "application/problem+json") == (bad_imsi.status_code,
                                                 bad_imsi.headers["content-type"])


def test_a_decision_from_memory_is_answered_once_stored(
    api: Any, fleet: dict[str, dict[str, str]], sqlite_runtime: Runtime,
) -> None:
    """A bound pair is decided on the event loop; its answer comes after the committer
    stored it; a failed store answers the app's problem."""
    engine = sqlite_runtime.subscriber.attach
    feed_not_due(engine)
    assert 200 == api.post(URL, json=_body(), headers=fleet["operator"]).status_code  # binds
    audit = sqlite_runtime.subscriber.inventory.audit
    stored = len(decision_history(audit, tenant_id=None))
    held = mock.patch.object(engine, "decide_held", wraps=engine.decide_held).start()
    commit = mock.patch.object(engine, "commit_deferred", wraps=engine.commit_deferred).start()
    try:
        again = api.post(URL, json=_body(), headers=fleet["operator"])
        assert (1, 1) == (held.call_count, commit.call_count)
        assert (200, "ok") == (again.status_code, again.json()["reason"])
        assert stored + 1 == len(decision_history(audit, tenant_id=None))
        commit.side_effect = Conflict("store busy", reason="test")
        refused = api.post(URL, json=_body(), headers=fleet["operator"])
    finally:
        mock.patch.stopall()
    assert (409, "application/problem+json") == (refused.status_code,
                                                 refused.headers["content-type"])
    assert stored + 1 == len(decision_history(audit, tenant_id=None))
