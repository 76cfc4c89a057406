"""HTTP API foundation: roles, tenant isolation, RFC 9457 problems, limits, health, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from simtrust.audit.anchoring import verify_event_proof
from simtrust.runtime import Runtime

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert status == response.status_code, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert status == body["status"]
    return body


@pytest.fixture
def acme(api: Any, operator_headers: dict[str, str]) -> dict[str, str]:
    """A tenant with admin and viewer keys; returns their headers."""
    for tenant in ("acme", "globex"):
        assert 201 == api.post("/v1/tenants", json={"id": tenant, "name": tenant.title()},
                               headers=operator_headers).status_code
    out = {}
    for role in ("tenant-admin", "tenant-viewer"):
        r = api.post("/v1/api-keys", json={"role": role, "name": role, "tenant_id": "acme"},
                     headers=operator_headers)
        assert 201 == r.status_code
        out[role] = r.json()["secret"]
    r = api.post("/v1/api-keys", json={"role": "tenant-admin", "name": "g", "tenant_id": "globex"},
                 headers=operator_headers)
    out["globex"] = r.json()["secret"]
    return {k: f"Bearer {v}" for k, v in out.items()}


def test_health_and_ready(api: Any) -> None:
    assert {"status": "ok"} == api.get("/healthz").json()
    assert {"status": "ready"} == api.get("/readyz").json()


def test_openapi_is_served_and_valid(api: Any) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/tenants", "/v1/api-keys", "/v1/audit/events", "/healthz"} <= set(doc["paths"])

    validate(doc)


def test_missing_and_wrong_keys(api: Any) -> None:
    body = _problem(api.get("/v1/tenants"), 401)
    assert body["type"].endswith("/authentication-required")
    _problem(api.get("/v1/tenants", headers={"Authorization": "Basic abc"}), 401)
    _problem(api.get("/v1/tenants", headers={"Authorization": "Bearer stk_" + "0" * 16 + "_" + "A" * 43}), 401)
    assert "Bearer" == api.get("/v1/tenants").headers["www-authenticate"]


def test_tenant_sees_only_itself(api: Any, acme: dict[str, str]) -> None:
    listed = api.get("/v1/tenants", headers={"Authorization": acme["tenant-admin"]}).json()
    assert ["acme"] == [t["id"] for t in listed]
    _problem(api.get("/v1/tenants/globex", headers={"Authorization": acme["tenant-admin"]}), 404)
    # The same answer as for a tenant that does not exist: existence is not revealed.
    a = api.get("/v1/tenants/globex", headers={"Authorization": acme["tenant-admin"]}).json()
    b = api.get("/v1/tenants/nosuch", headers={"Authorization": acme["tenant-admin"]}).json()
    assert a["detail"] == b["detail"]


def test_tenant_cannot_touch_other_tenants_keys(api: Any, acme: dict[str, str],
                                                  operator_headers: dict[str, str]) -> None:
    globex_keys = api.get("/v1/api-keys?tenant_id=globex", headers=operator_headers).json()
    key_id = globex_keys[0]["id"]
    _problem(api.delete(f"/v1/api-keys/{key_id}", headers={"Authorization": acme["tenant-admin"]}), 404)
    _problem(api.get("/v1/api-keys?tenant_id=globex", headers={"Authorization": acme["tenant-admin"]}), 404)
    _problem(api.post("/v1/api-keys", json={"role": "tenant-admin", "name": "x", "tenant_id": "globex"},
                      headers={"Authorization": acme["tenant-admin"]}), 404)
    # Nothing was revoked.
    assert all(k["revoked_at"] is None for k in
               api.get("/v1/api-keys?tenant_id=globex", headers=operator_headers).json())


def test_roles_are_enforced(api: Any, acme: dict[str, str]) -> None:
    viewer = {"Authorization": acme["tenant-viewer"]}
    admin = {"Authorization": acme["tenant-admin"]}
    _problem(api.post("/v1/tenants", json={"id": "x", "name": "x"}, headers=admin), 403)
    _problem(api.post("/v1/api-keys", json={"role": "tenant-viewer", "name": "v", "tenant_id": "acme"},
                      headers=viewer), 403)
    _problem(api.post("/v1/api-keys", json={"role": "operator-admin", "name": "esc"},
                      headers=admin), 403)
    assert 201 == api.post("/v1/api-keys", json={"role": "tenant-viewer", "name": "v2",
                                                 "tenant_id": "acme"}, headers=admin).status_code


def test_key_secret_shown_once(api: Any, operator_headers: dict[str, str],
                               sqlite_runtime: Runtime) -> None:
    created = api.post("/v1/api-keys", json={"role": "operator-admin", "name": "second"},
                       headers=operator_headers).json()
    listed = api.get("/v1/api-keys", headers=operator_headers).json()
    assert all("secret" not in k for k in listed)
    assert created["secret"] not in api.get("/v1/api-keys", headers=operator_headers).text
    revoked = api.delete(f"/v1/api-keys/{created['id']}", headers=operator_headers).json()
    assert revoked["revoked_at"] is not None
    _problem(api.get("/v1/tenants", headers={"Authorization": f"Bearer {created['secret']}"}), 401)


def test_malformed_json_writes_nothing(api: Any, operator_headers: dict[str, str],
                                       sqlite_runtime: Runtime) -> None:
    before = sqlite_runtime.audit.count()
    body = _problem(api.post("/v1/tenants", content=b'{"id": "a",',
                             headers={**operator_headers, "content-type": "application/json"}), 400)
    assert body["type"].endswith("/malformed-json")
    assert [] == sqlite_runtime.tenants.list_tenants()
    assert before == sqlite_runtime.audit.count()


@pytest.mark.parametrize(
    "payload",
    [
        {"id": 5, "name": "x"},
        {"id": "ok"},
        {"id": "BAD ID", "name": "x"},
        {"id": "ok", "name": "x", "extra": True},
        [1, 2, 3],
    ],
)
def test_wrong_types_are_422(api: Any, operator_headers: dict[str, str], payload: Any,
                             sqlite_runtime: Runtime) -> None:
    body = _problem(api.post("/v1/tenants", json=payload, headers=operator_headers), 422)
    assert body["errors"]
    assert [] == sqlite_runtime.tenants.list_tenants()


def test_oversized_bodies_are_413(api: Any, operator_headers: dict[str, str],
                                  sqlite_runtime: Runtime) -> None:
    limit = sqlite_runtime.settings.max_body_bytes
    big = b'{"id": "a", "name": "' + b"x" * limit + b'"}'
    body = _problem(api.post("/v1/tenants", content=big,
                             headers={**operator_headers, "content-type": "application/json"}), 413)
    assert body["type"].endswith("/payload-too-large")

    def chunks() -> Any:
        yield b'{"id": "a", "name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    streamed = api.post("/v1/tenants", content=chunks(),
                        headers={**operator_headers, "content-type": "application/json"})
    _problem(streamed, 413)
    assert [] == sqlite_runtime.tenants.list_tenants()
    # The server keeps serving.
    assert 201 == api.post("/v1/tenants", json={"id": "after", "name": "After"},
                           headers=operator_headers).status_code


def test_duplicate_tenant_is_409(api: Any, operator_headers: dict[str, str]) -> None:
    assert 201 == api.post("/v1/tenants", json={"id": "dup", "name": "A"},
                           headers=operator_headers).status_code
    _problem(api.post("/v1/tenants", json={"id": "dup", "name": "B"}, headers=operator_headers), 409)


def test_unknown_route_and_method(api: Any, operator_headers: dict[str, str]) -> None:
    _problem(api.get("/v1/nothing-here", headers=operator_headers), 404)
    _problem(api.put("/v1/tenants", headers=operator_headers), 405)


def test_audit_over_http(api: Any, acme: dict[str, str], operator_headers: dict[str, str]) -> None:
    own = api.get("/v1/audit/events", headers={"Authorization": acme["tenant-admin"]}).json()
    assert own["events"]
    assert {"acme"} == {e["tenant_id"] for e in own["events"]}
    _problem(api.get("/v1/audit/events?tenant_id=globex",
                     headers={"Authorization": acme["tenant-admin"]}), 404)
    verdict = api.post("/v1/audit/verify", headers=operator_headers).json()
    assert verdict["intact"] is True
    assert verdict["records"] >= 4
    _problem(api.post("/v1/audit/verify", headers={"Authorization": acme["tenant-admin"]}), 403)
    first = own["events"][0]["event_id"]
    assert first == api.get(f"/v1/audit/events/{first}",
                            headers={"Authorization": acme["tenant-admin"]}).json()["event_id"]
    other = api.get("/v1/audit/events?tenant_id=globex", headers=operator_headers).json()["events"]
    _problem(api.get(f"/v1/audit/events/{other[0]['event_id']}",
                     headers={"Authorization": acme["tenant-admin"]}), 404)


def test_audit_proof_over_http(api: Any, acme: dict[str, str],
                               operator_headers: dict[str, str]) -> None:
    own = api.get("/v1/audit/events", headers={"Authorization": acme["tenant-admin"]}).json()
    event_id = own["events"][0]["event_id"]
    _problem(api.get(f"/v1/audit/events/{event_id}/proof",
                     headers={"Authorization": acme["tenant-admin"]}), 404)
    _problem(api.post("/v1/audit/anchor", headers={"Authorization": acme["tenant-admin"]}), 403)
    receipt = api.post("/v1/audit/anchor", headers=operator_headers).json()
    assert receipt["size"] >= 1
    proof = api.get(f"/v1/audit/events/{event_id}/proof",
                    headers={"Authorization": acme["tenant-admin"]}).json()

    assert event_id == verify_event_proof(proof).event_id
    other = api.get("/v1/audit/events?tenant_id=globex", headers=operator_headers).json()["events"]
    _problem(api.get(f"/v1/audit/events/{other[0]['event_id']}/proof",
                     headers={"Authorization": acme["tenant-admin"]}), 404)
