"""The subscriber HTTP API: provisioning without leaking secrets, tenancy, import, attach."""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.runtime import Runtime
from simtrust.subscriber import build_services

from .conftest import K1, OPC1, TENANT, iccid, imei, imsi


@pytest.fixture
def tenants(sqlite_runtime: Runtime) -> dict[str, dict[str, str]]:
    sqlite_runtime.tenants.create_tenant(TENANT, "Acme")
    sqlite_runtime.tenants.create_tenant("globex", "Globex")
    acme = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id=TENANT)
    globex = sqlite_runtime.tenants.create_key("tenant-admin", "globex", tenant_id="globex")
    allocations = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=[]).inventory.allocations
    allocations.set(TENANT, iccid_prefixes=["89882"], imsi_prefixes=["00101"], actor="test")
    allocations.set_addresses(TENANT, networks=["10.1.0.0/16"], actor="test")
    return {"acme": {"Authorization": f"Bearer {acme.secret}"},
            "globex": {"Authorization": f"Bearer {globex.secret}"}}


def sim_body(n: int, **extra: Any) -> dict[str, Any]:
    return {"iccid": iccid(n).value, "imsi": imsi(n).value, "mnc_length": 2, "k": K1.hex(),
            "opc": OPC1.hex(), "state": "active", **extra}


def test_provision_and_read_without_secrets(api: Any, tenants: dict[str, dict[str, str]],
                                            operator_headers: dict[str, str]) -> None:
    created = api.post("/v1/sims", json=sim_body(1), headers=tenants["acme"])
    assert 201 == created.status_code, created.text
    got = api.get(f"/v1/sims/{iccid(1)}", headers=tenants["acme"])
    assert 200 == got.status_code
    for response in (created, got, api.get("/v1/sims", headers=operator_headers)):
        assert K1.hex() not in response.text.lower()
        assert OPC1.hex() not in response.text.lower()
    assert "opc" == got.json()["op_kind"]
    assert TENANT == got.json()["tenant_id"]
    # Another tenant cannot see it; it cannot provision into another tenant either.
    assert 404 == api.get(f"/v1/sims/{iccid(1)}", headers=tenants["globex"]).status_code
    other = api.post("/v1/sims", json=sim_body(2, tenant_id=TENANT), headers=tenants["globex"])
    assert 404 == other.status_code
    both = api.post("/v1/sims", json=sim_body(3, op=OPC1.hex()), headers=tenants["acme"])
    assert 400 == both.status_code
    bad = api.post("/v1/sims", json=sim_body(4, iccid=iccid(4).value[:-1] + "0"
                                             if not iccid(4).value.endswith("0")
                                             else iccid(4).value[:-1] + "1"),
                   headers=tenants["acme"])
    assert (400, "invalid-identifier") == (bad.status_code, bad.json()["type"].rsplit("/", 1)[1])


def test_transitions_over_http(api: Any, tenants: dict[str, dict[str, str]]) -> None:
    api.post("/v1/sims", json=sim_body(1), headers=tenants["acme"])
    url = f"/v1/sims/{iccid(1)}/transition"
    ok = api.post(url, json={"state": "suspended", "reason": "unpaid"}, headers=tenants["acme"])
    assert ("suspended", 200) == (ok.json()["state"], ok.status_code)
    api.post(url, json={"state": "terminated"}, headers=tenants["acme"])
    refused = api.post(url, json={"state": "active"}, headers=tenants["acme"])
    assert 409 == refused.status_code
    assert "invalid-transition" in refused.json()["type"]


def test_import_over_http(api: Any, tenants: dict[str, dict[str, str]]) -> None:
    good = f"ICCID,IMSI,KI,OPC\n{iccid(1)},{imsi(1)},{K1.hex()},{OPC1.hex()}\n"
    response = api.post("/v1/sims/import", content=good,
                        headers={**tenants["acme"], "Content-Type": "text/csv"})
    assert 200 == response.status_code, response.text
    assert 1 == response.json()["imported"]
    bad = f"ICCID,IMSI,KI,OPC\n{iccid(2)},{imsi(2)},zz,{OPC1.hex()}\n1,2,3,4\n"
    rejected = api.post("/v1/sims/import", content=bad,
                        headers={**tenants["acme"], "Content-Type": "text/csv"})
    assert 400 == rejected.status_code
    doc = rejected.json()
    assert 2 == doc["bad_rows"]
    assert doc["errors"][0].startswith("line 2: k:")
    assert all(e.startswith("line 3:") for e in doc["errors"][1:])


def test_attach_and_address_over_http(api: Any, tenants: dict[str, dict[str, str]],
                                      operator_headers: dict[str, str]) -> None:
    api.post("/v1/apns", json={"name": "iot", "pool": "10.1.0.0/29"}, headers=tenants["acme"])
    api.post("/v1/devices", json={"imei": imei(1).value, "label": "meter 1"},
             headers=tenants["acme"])
    devices = api.get("/v1/devices", headers=tenants["acme"]).json()["devices"]
    assert [imei(1).value] == [d["imei"] for d in devices]
    api.post("/v1/sims", json=sim_body(1, apn="iot"), headers=tenants["acme"])
    api.put(f"/v1/tenants/{TENANT}/attach-policy", json={"binding_mode": "exact-pair"},
            headers=tenants["acme"])
    body = {"imsi": imsi(1).value, "imei": imei(1).value, "serving_plmn": "00101"}
    assert 403 == api.post("/v1/attach/decisions", json=body,
                           headers=tenants["acme"]).status_code
    decision = api.post("/v1/attach/decisions", json=body, headers=operator_headers).json()
    assert (True, "ok-first-use-bound", "10.1.0.1") == (
        decision["allowed"], decision["reason"], decision["address"])
    swapped = api.post("/v1/attach/decisions", json={**body, "imei": imei(2).value},
                       headers=operator_headers).json()
    assert (False, "sim-swap") == (swapped["allowed"], swapped["reason"])
    found = api.get("/v1/addresses/10.1.0.1", headers=operator_headers).json()
    assert imsi(1).value == found["imsi"]
    assert 404 == api.get("/v1/addresses/10.1.0.2", headers=operator_headers).status_code
    sim = api.get(f"/v1/sims/{iccid(1)}", headers=tenants["acme"]).json()
    assert [imei(1).value] == [b["imei"] for b in sim["bindings"]]
    history = api.get(f"/v1/sims/{iccid(1)}/decisions", headers=tenants["acme"]).json()
    assert ["ok-first-use-bound", "sim-swap"] == [d["reason"] for d in history["decisions"]]
    assert 404 == api.get(f"/v1/sims/{iccid(1)}/decisions",
                          headers=tenants["globex"]).status_code
    reset = api.delete(f"/v1/sims/{iccid(1)}/bindings", headers=tenants["acme"]).json()
    assert [imei(1).value] == reset["released"]
    again = api.post("/v1/attach/decisions", json={**body, "imei": imei(2).value},
                     headers=operator_headers).json()
    assert "ok-first-use-bound" == again["reason"]


def test_blocklist_over_http(api: Any, tenants: dict[str, dict[str, str]],
                             operator_headers: dict[str, str]) -> None:
    assert 201 == api.post("/v1/blocklist", json={"type": "imei", "value": imei(1).value},
                           headers=operator_headers).status_code
    own = api.post("/v1/blocklist", json={"type": "tac", "value": "35209900"},
                   headers=tenants["acme"])
    assert 201 == own.status_code
    acme_view = api.get("/v1/blocklist", headers=tenants["acme"]).json()["entries"]
    globex_view = api.get("/v1/blocklist", headers=tenants["globex"]).json()["entries"]
    assert [None, TENANT] == [e["tenant_id"] for e in acme_view]
    assert [None] == [e["tenant_id"] for e in globex_view]
    global_id = acme_view[0]["id"]
    assert 403 == api.delete(f"/v1/blocklist/{global_id}",
                             headers=tenants["acme"]).status_code
    assert 200 == api.delete(f"/v1/blocklist/{global_id}", headers=operator_headers).status_code
    csv_text = "type,value\nimei,123\n"
    assert 400 == api.post("/v1/blocklist/import", content=csv_text,
                           headers={**operator_headers, "Content-Type": "text/csv"}).status_code


def test_eps_vectors_and_hn_keys(api: Any, tenants: dict[str, dict[str, str]],
                                 operator_headers: dict[str, str]) -> None:
    api.post("/v1/sims", json=sim_body(1), headers=tenants["acme"])
    response = api.post("/v1/auc/eps-vectors",
                        json={"imsi": imsi(1).value, "serving_plmn": "00101", "count": 2},
                        headers=operator_headers)
    assert 200 == response.status_code, response.text
    vectors = response.json()["vectors"]
    assert 2 == len(vectors)
    assert [32, 16, 32, 64] == [len(vectors[0][k]) for k in ("rand", "xres", "autn", "kasme")]
    key = api.post("/v1/home-network-keys", json={"key_id": 1, "profile": "A"},
                   headers=operator_headers).json()
    assert 64 == len(key["public_key"])
    listed = api.get("/v1/home-network-keys", headers=operator_headers).json()["keys"]
    assert [1] == [k["key_id"] for k in listed]
    assert all("private" not in str(k) for k in listed)
