"""Tenants, API keys and the audit trail through the HTTP API (served in-process)."""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from simtrust.api import create_app

ORDER = 10


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    operator = rt.tenants.create_key("operator-admin", "demo operator")
    client = TestClient(create_app(rt))
    ctx.data["client"] = client
    ctx.data["operator_key"] = operator.secret
    op = {"Authorization": f"Bearer {operator.secret}"}
    tenants = []
    for tenant_id, name in (("acme-meters", "Acme Smart Meters"), ("globex-fleet", "Globex Fleet")):
        response = client.post("/v1/tenants", json={"id": tenant_id, "name": name}, headers=op)
        response.raise_for_status()
        tenants.append(tenant_id)
    ctx.data["tenant"] = tenants[0]
    ctx.data["other_tenant"] = tenants[1]
    response = client.post(
        "/v1/api-keys",
        json={"role": "tenant-admin", "name": "acme admin", "tenant_id": tenants[0]},
        headers=op,
    )
    response.raise_for_status()
    tenant_key = response.json()["secret"]
    ctx.data["tenant_key"] = tenant_key
    ctx.say(f"created tenants {', '.join(tenants)} and a tenant-admin key for {tenants[0]}")
    # Tenant isolation: Acme's key cannot see Globex.
    peek = client.get(
        f"/v1/tenants/{tenants[1]}", headers={"Authorization": f"Bearer {tenant_key}"}
    )
    ctx.say(f"acme key reading globex -> HTTP {peek.status_code} ({peek.json()['title']})")
    bad = client.post(
        "/v1/tenants", content=b"{not json", headers={**op, "content-type": "application/json"}
    )
    ctx.say(f"malformed JSON -> HTTP {bad.status_code} {bad.headers['content-type']}")
    if peek.status_code != 404 or bad.status_code != 400:
        raise RuntimeError("tenant isolation or problem details misbehaved")
    return {
        "tenants": tenants,
        "isolation_status": peek.status_code,
        "malformed_json_status": bad.status_code,
        "problem_type": bad.json()["type"],
    }
