"""The policy HTTP API: versioned writes per tenant, tenant isolation, inline decisions."""

from __future__ import annotations

from typing import Any

from simtrust.runtime import Runtime

RULES = [{"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"], "ports": [443]}]}]


def test_policy_crud_versions_and_isolation(api: Any, sqlite_runtime: Runtime,
                                            operator_headers: dict[str, str]) -> None:
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    sqlite_runtime.tenants.create_tenant("globex", "Globex")
    admin = sqlite_runtime.tenants.create_key("tenant-admin", "acme admin", "acme")
    viewer = sqlite_runtime.tenants.create_key("tenant-viewer", "acme viewer", "acme")
    other = sqlite_runtime.tenants.create_key("tenant-admin", "globex admin", "globex")
    h_admin = {"Authorization": f"Bearer {admin.secret}"}
    h_viewer = {"Authorization": f"Bearer {viewer.secret}"}
    h_other = {"Authorization": f"Bearer {other.secret}"}
    url = "/v1/policy/policies/acme/group:meters"

    r1 = api.put(url, json={"rules": RULES}, headers=h_admin)
    assert 200 == r1.status_code, r1.text
    r2 = api.put(url, json={"rules": [*RULES, {"kind": "rate", "max_flows": 5}]},
                 headers=h_admin)
    assert (1, 2) == (r1.json()["version"], r2.json()["version"])
    assert 1 == len(api.get(url, params={"version": 1}, headers=h_viewer).json()["rules"])
    assert 2 == len(api.get(f"{url}/history", headers=h_viewer).json()["versions"])
    assert 403 == api.put(url, json={"rules": RULES}, headers=h_viewer).status_code
    assert 404 == api.put("/v1/policy/policies/nosuch/tenant", json={"rules": RULES},
                          headers=operator_headers).status_code
    assert 404 == api.get(url, headers=h_other).status_code
    assert 404 == api.put(url, json={"rules": RULES}, headers=h_other).status_code
    assert [] == api.get("/v1/policy/policies", headers=h_other).json()["policies"]
    bad = api.put(url, json={"rules": [{"kind": "destination", "allow": [{"cidrs": ["x"]}]}]},
                  headers=h_admin)
    assert 400 == bad.status_code
    assert "problem+json" in bad.headers["content-type"]

    # inline decision (operator key = the gateway)
    device = {"imsi": "001010000000001", "tenant_id": "acme", "group": "meters",
              "address": "10.64.0.9"}
    assert 403 == api.post("/v1/policy/devices", json=device, headers=h_admin).status_code
    assert 200 == api.post("/v1/policy/devices", json=device,
                           headers=operator_headers).status_code
    ok = api.post("/v1/policy/decide", json={"src_addr": "10.64.0.9", "dst_addr": "192.0.2.7",
                                             "dst_port": 443, "protocol": 6},
                  headers=operator_headers).json()
    no = api.post("/v1/policy/decide", json={"imsi": "001010000000001",
                                             "dst_addr": "203.0.113.7", "dst_port": 23,
                                             "protocol": 6}, headers=operator_headers).json()
    assert (True, False) == (ok["allowed"], no["allowed"])
    assert "destination" == no["violations"][0]["kind"]
    batch = api.post("/v1/policy/decide/batch", json={"flows": [
        {"src_addr": "10.64.0.9", "dst_addr": "192.0.2.7", "dst_port": 443, "protocol": 6},
        {"src_addr": "10.64.0.9", "dst_addr": "192.0.2.7", "dst_port": 80, "protocol": 6},
        {"src_addr": "10.99.0.1", "dst_addr": "192.0.2.7", "dst_port": 443, "protocol": 6}]},
        headers=operator_headers).json()["decisions"]
    assert [(True, "ok"), (False, "destination"), (False, "unknown-device")] == [
        (d["allowed"], d["reason"]) for d in batch]
    ruleset = api.get("/v1/policy/nftables/acme", headers=h_admin)
    assert "table inet simtrust_acme" in ruleset.text
    assert "10.64.0.9 : jump dev_0" in ruleset.text

    hook = {"webhook_url": "https://hooks.example.com/x"}
    assert 200 == api.put("/v1/policy/alerting/acme", json=hook, headers=h_admin).status_code
    assert api.get("/v1/policy/alerting/acme", headers=h_viewer).json()["webhook"]
    assert 404 == api.put("/v1/policy/alerting/acme", json=hook, headers=h_other).status_code

    assert 200 == api.delete(url, headers=h_admin).status_code
    assert [] == api.get("/v1/policy/policies", headers=h_admin).json()["policies"]
    actions = [e.action for e in sqlite_runtime.audit.query(tenant_id="acme", limit=50)]
    assert 2 == actions.count("policy.change")
    assert 1 == actions.count("policy.delete")
