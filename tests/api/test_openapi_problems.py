"""The OpenAPI document declares every problem status an operation answers.

Each operation declares its problem statuses with ``application/problem+json``;
then every operation is called without a key, with a viewer key, with an
operator key (empty body), with malformed JSON and with an oversized body, and
each error status the server actually answers must be one the document
declares for that operation. A 405 names every supported method in ``Allow``.
"""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.runtime import Runtime
from tests.api.openapi_walk import operations

PROBLEM = "application/problem+json"
#: Valid-looking values for path parameters, so calls reach the handlers.
FILLERS = {"iccid": "8988200000000000014", "imei": "352099000000014", "imsi": "001010000000001",
           "tenant_id": "acme", "entry_id": "1", "key_id": "0123456789abcdef",
           "event_id": "00000000-0000-4000-8000-000000000000", "did": "did:simtrust:test:x",
           "supiOrSuci": "imsi-001010000000001", "address": "10.0.0.1", "scope": "tenant",
           "message_id": "00" * 32, "owner": "00" * 32}
#: Streams that follow forever when authorised; called without a key only.
STREAMS = {("GET", "/v1/ledger/feed")}


@pytest.fixture
def keys(sqlite_runtime: Runtime, operator_headers: dict[str, str]) -> dict[str, dict[str, str]]:
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    viewer = sqlite_runtime.tenants.create_key("tenant-viewer", "viewer", tenant_id="acme")
    return {"none": {}, "viewer": {"Authorization": f"Bearer {viewer.secret}"},
            "operator": operator_headers}


def _declared(op: dict[str, Any]) -> set[int]:
    return {int(s) for s in op["responses"] if s.isdigit()}


def test_every_operation_declares_its_problem_statuses(api: Any) -> None:
    doc = api.get("/openapi.json").json()
    assert "Problem" in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        declared = _declared(op)
        names = {p["name"] for p in op.get("parameters", [])}
        if "authorization" in names:
            assert {401, 403} <= declared, (method, path)
        if "requestBody" in op:
            assert {400, 413, 422} <= declared, (method, path)
        for status in declared:
            if status >= 400:
                # A problem, or the error format the operation's own spec defines
                # (DID resolution results, OAuth 2.0 token errors), declared.
                content = op["responses"][str(status)].get("content", {})
                assert content, (method, path, status)
                if status in (401, 403, 413):
                    # TM Forum routes answer the TMF630 Error model (application/json).
                    # OID4VCI wallet endpoints answer the spec's JSON errors.
                    assert PROBLEM in content or (method.upper() == "POST" and (
                        path in ("/oauth2/token", "/oauth2/par") or path.startswith(("/oid4vci/", "/oid4vp/responses/")))) \
                        or path.startswith("/tmf-api/"), (method, path, status)
    iccid = next(p for p in doc["paths"]["/v1/sims/{iccid}"]["get"]["parameters"]
                 if p["name"] == "iccid")
    assert iccid["schema"]["pattern"].startswith("^89")


def _url(path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", FILLERS.get(param["name"], "x"))
    return path


def test_the_server_answers_only_declared_statuses(
        api: Any, keys: dict[str, dict[str, str]], sqlite_runtime: Runtime) -> None:
    doc = api.get("/openapi.json").json()
    limit = sqlite_runtime.settings.max_body_bytes
    undeclared = []
    calls = 0
    for method, path, op in operations(doc):
        url = _url(path, op)
        body = "requestBody" in op
        attempts: list[tuple[str, dict[str, Any]]] = [("none", {})]
        if (method, path) not in STREAMS:
            attempts += [("viewer", {"json": {}} if body else {}),
                         ("operator", {"json": {}} if body else {})]
            if body:
                attempts += [("operator", {"content": b"{not json",
                                           "headers": {"Content-Type": "application/json"}}),
                             ("operator", {"content": b"x" * (limit + 1),
                                           "headers": {"Content-Type": "application/json"}})]
        for who, extra in attempts:
            headers = {**keys[who], **extra.pop("headers", {})}
            response = api.request(method, url, headers=headers, **extra)
            calls += 1
            status = response.status_code
            if status >= 400:
                if status not in _declared(op):
                    undeclared.append((method, path, who, status, response.text[:120]))
                    continue
                media = set(op["responses"][str(status)].get("content", {}))
                assert response.headers["content-type"].split(";")[0] in \
                    {m.split(";")[0] for m in media}, (method, path, status)
    assert [] == [u[:4] for u in undeclared], undeclared
    assert calls > 200


def test_405_names_every_supported_method(api: Any) -> None:
    response = api.put("/v1/sims")
    assert 405 == response.status_code
    assert response.headers["content-type"].startswith(PROBLEM)
    assert ["GET", "HEAD", "POST"] == [m.strip() for m in response.headers["allow"].split(",")]
    other = api.post("/v1/sims/8988200000000000014")
    assert {"GET", "PATCH"} <= {m.strip() for m in other.headers["allow"].split(",")}
