"""Enterprise tunnels stored per APN: one per (tenant, APN), the name unique on the
gateway, the PSK sealed at rest and never answered; the operator sets and removes them
over the API, a tenant reads its own and another tenant's answers like a missing one; the
VICI watcher of ``simtrust serve`` reconnects at its pace and stays quiet while charon is
away."""

from __future__ import annotations

from typing import Any

import pytest

from simtrust.errors import Conflict, NotFound
from simtrust.policy import TunnelSpec, TunnelStore, TunnelWatch
from simtrust.runtime import Runtime

PSK = bytes(range(100, 132))


def _spec(name: str = "acme-iot", apn: str = "iot.acme", tenant: str = "acme",
          psk: bytes | None = PSK) -> TunnelSpec:
    return TunnelSpec(name, tenant, apn, "192.0.2.1", "192.0.2.2", "gw.operator.example",
                      "vpn.acme.example", ("10.45.0.0/24",), ("172.16.0.0/24",),
                      "psk" if psk else "pubkey", psk,
                      "" if psk else "/etc/swanctl/x509/gw.pem",
                      "" if psk else "/etc/swanctl/x509ca/acme.pem")


def test_one_tunnel_per_apn_psk_sealed_and_audited(sqlite_runtime: Runtime) -> None:
    store = sqlite_runtime.tunnels
    changes: list[int] = []
    store.on_change.append(lambda: changes.append(1))
    store.put(_spec(), actor="op")
    assert _spec() == store.get("acme", "iot.acme")
    raw = sqlite_runtime.db.query_one("SELECT psk_sealed FROM policy_tunnels")
    assert raw is not None
    assert PSK not in bytes(raw[0])
    replaced = store.put(_spec(name="acme-iot-2", psk=None), actor="op")
    assert [replaced] == store.tunnels("acme") == store.tunnels()
    assert None is store.find("acme-iot")
    with pytest.raises(Conflict):
        store.put(_spec(name="acme-iot-2", apn="other.acme"), actor="op")
    description = TunnelStore.describe(store.get("acme", "iot.acme"))
    assert description["psk_set"] is False
    assert "psk" not in description
    store.delete("acme", "iot.acme", actor="op")
    with pytest.raises(NotFound):
        store.get("acme", "iot.acme")
    assert 3 == len(changes)
    assert ["tunnel.put", "tunnel.put", "tunnel.delete"] == [
        e.action for e in sqlite_runtime.audit.query() if e.action.startswith("tunnel.")]


def test_rotating_the_master_key_keeps_the_psk(sqlite_runtime: Runtime) -> None:
    sqlite_runtime.tunnels.put(_spec(), actor="op")
    _kid, count = sqlite_runtime.rotate_master_key()
    assert count >= 1
    assert PSK == sqlite_runtime.tunnels.get("acme", "iot.acme").psk


def _headers(rt: Runtime, role: str, tenant: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {rt.tenants.create_key(role, role, tenant).secret}"}


def test_api_operator_sets_tenant_reads_its_own_only(sqlite_runtime: Runtime, api: Any) -> None:
    rt = sqlite_runtime
    for tenant in ("acme", "globex"):
        rt.tenants.create_tenant(tenant, tenant.title())
    rt.subscriber.inventory.create_apn("acme", "iot.acme", actor="t", pool="10.45.0.0/24")
    op = _headers(rt, "operator-admin")
    acme = _headers(rt, "tenant-admin", "acme")
    globex = _headers(rt, "tenant-admin", "globex")
    body = {"name": "acme-iot", "local_address": "192.0.2.1", "remote_address": "192.0.2.2",
            "local_id": "gw.operator.example", "remote_id": "vpn.acme.example",
            "enterprise_prefixes": ["172.16.0.0/24"], "psk_hex": PSK.hex()}
    url = "/v1/apns/iot.acme/tunnel?tenant_id=acme"
    assert 403 == api.put(url, json=body, headers=acme).status_code
    assert 404 == api.put("/v1/apns/nope/tunnel?tenant_id=acme", json=body,
                          headers=op).status_code
    put = api.put(url, json=body, headers=op)
    assert 200 == put.status_code, put.text
    assert ["10.45.0.0/24"] == put.json()["apn_pool"]  # the APN's own pool by default
    assert PSK.hex() not in put.text
    assert put.json()["psk_set"] is True
    mine = api.get("/v1/apns/iot.acme/tunnel", headers=acme)
    assert 200 == mine.status_code
    assert "acme-iot" == mine.json()["name"]
    assert ["acme-iot"] == [t["name"] for t in api.get("/v1/tunnels", headers=acme).json()[
        "tunnels"]]
    assert [] == api.get("/v1/tunnels", headers=globex).json()["tunnels"]
    theirs = api.get("/v1/apns/iot.acme/tunnel?tenant_id=acme", headers=globex)
    missing = api.get("/v1/apns/iot.acme/tunnel?tenant_id=nobody", headers=globex)
    assert (404, missing.json()["detail"].replace("nobody", "X")) == (
        theirs.status_code, theirs.json()["detail"].replace("acme", "X"))
    bad = api.put(url, json={**body, "psk_hex": None}, headers=op)
    assert 400 == bad.status_code
    assert "problem+json" in bad.headers["content-type"]
    assert 200 == api.delete(url, headers=op).status_code
    assert 404 == api.get("/v1/apns/iot.acme/tunnel", headers=acme).status_code


def test_watch_retries_at_its_pace_while_charon_is_away(sqlite_runtime: Runtime,
                                                        tmp_path: Any) -> None:
    now = [0.0]
    watch = TunnelWatch(str(tmp_path / "absent.vici"), sqlite_runtime.tunnels,
                        on_alert=lambda _a: None, clock=sqlite_runtime.clock, retry_s=5.0,
                        monotonic=lambda: now[0])
    assert watch.check() is False
    now[0] = 4.9
    assert watch.check() is False
    assert 0 == watch.connects
    assert watch.connected is False
    watch.close()
