"""HTTP API and CLI of the AAA: gateway clients (secrets never echoed), APN access and
users, a SIM's sessions; bad input is a problem document or one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.cli import main
from simtrust.runtime import Runtime
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState

from .conftest import K1, OPC1, iccid, imsi


def test_clients_api_never_returns_secrets(api: Any, operator_headers: dict[str, str]) -> None:
    created = api.post("/v1/radius/clients", headers=operator_headers,
                       json={"cidr": "10.1.0.0/24", "secret": "topsecret", "coa_port": 3799})
    assert 201 == created.status_code, created.text
    assert "topsecret" not in created.text
    listed = api.get("/v1/radius/clients", headers=operator_headers)
    assert ["10.1.0.0/24"] == [c["cidr"] for c in listed.json()["clients"]]
    assert "topsecret" not in listed.text
    dup = api.post("/v1/radius/clients", headers=operator_headers,
                   json={"cidr": "10.1.0.0/24", "secret": "x"})
    assert 409 == dup.status_code
    bad = api.post("/v1/radius/clients", headers=operator_headers,
                   json={"cidr": "not-a-cidr", "secret": "hidden-value"})
    assert 400 == bad.status_code
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "hidden-value" not in bad.text
    gone = api.delete("/v1/radius/clients/10.1.0.0/24", headers=operator_headers)
    assert 200 == gone.status_code
    assert [] == api.get("/v1/radius/clients", headers=operator_headers).json()["clients"]


def test_apn_access_users_and_sessions(api: Any, operator_headers: dict[str, str],
                                       sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    rt.tenants.create_tenant("acme", "Acme")
    inventory = rt.subscriber.inventory
    inventory.create_apn("acme", "acme.iot", actor="t", pool="10.9.0.0/24")
    inventory.add_sim("acme", SimSpec(iccid(1), imsi(1), SimSecrets(K1, OPC1, OpKind.OPC),
                                      state=SimState.ACTIVE, apn="acme.iot"), actor="t")
    put = api.put("/v1/apns/acme.iot/access?tenant_id=acme", headers=operator_headers,
                  json={"auth": "chap", "session_timeout": 900})
    assert {"auth": "chap", "session_timeout": 900} == {k: put.json()[k] for k in
                                                        ("auth", "session_timeout")}
    bad = api.put("/v1/apns/acme.iot/access?tenant_id=acme", headers=operator_headers,
                  json={"auth": "kerberos"})
    assert 400 == bad.status_code
    user = api.post("/v1/apns/acme.iot/users?tenant_id=acme", headers=operator_headers,
                    json={"username": "meter", "password": "pw-1"})
    assert 201 == user.status_code
    assert "pw-1" not in user.text
    assert ["meter"] == api.get("/v1/apns/acme.iot/users?tenant_id=acme",
                                headers=operator_headers).json()["users"]
    missing = api.get("/v1/apns/nope/access?tenant_id=acme", headers=operator_headers)
    assert 404 == missing.status_code
    sessions = api.get(f"/v1/sims/{iccid(1)}/sessions", headers=operator_headers)
    assert {"iccid": iccid(1).value, "sessions": []} == sessions.json()
    assert 200 == api.get("/v1/radius/stats", headers=operator_headers).status_code


def test_openapi_lists_the_radius_routes(api: Any) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/v1/radius/clients", "/v1/sims/{iccid}/sessions", "/v1/apns/{name}/access",
                 "/v1/apns/{name}/users", "/v1/sims/{iccid}/disconnect", "/v1/sims/{iccid}/coa",
                 "/v1/radius/stats"):
        for operation in paths[path].values():
            for code in ("400", "401", "403", "404"):
                content = operation["responses"][code]["content"]
                assert "application/problem+json" in content, (path, code)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (exit code, stdout, stderr)."""
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_clients_apn_and_sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    assert 0 == _cli(capsys, "init", "--json")[0]
    code, out, err = _cli(capsys, "radius", "clients", "add", "127.0.0.1/32", "--secret",
                          "s3cr3t", "--coa-port", "3799", "--json")
    assert 0 == code, err
    assert "s3cr3t" not in out
    code, out, _ = _cli(capsys, "radius", "clients", "list", "--json")
    assert ["127.0.0.1/32"] == [c["cidr"] for c in json.loads(out)["clients"]]
    code, _, err = _cli(capsys, "radius", "clients", "add", "nonsense", "--secret", "s")
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    assert 0 == _cli(capsys, "radius", "clients", "remove", "127.0.0.1/32")[0]
    code, _, err = _cli(capsys, "sim", "sessions", "123")
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
    rt = Runtime.open()
    try:
        rt.tenants.create_tenant("acme", "Acme")
    finally:
        rt.close()
    assert 0 == _cli(capsys, "apn", "create", "acme.iot", "--tenant", "acme", "--pool",
                     "10.8.0.0/24")[0]
    code, out, err = _cli(capsys, "apn", "access", "acme.iot", "--tenant", "acme", "--auth",
                          "pap", "--session-timeout", "600", "--json")
    assert (0, "pap", 600) == (code, json.loads(out)["auth"], json.loads(out)["session_timeout"])
    assert 0 == _cli(capsys, "apn", "users", "add", "acme.iot", "meter", "--tenant", "acme",
                     "--password", "pw")[0]
    code, out, _ = _cli(capsys, "apn", "users", "list", "acme.iot", "--tenant", "acme", "--json")
    assert {"users": ["meter"]} == json.loads(out)
    code, _, err = _cli(capsys, "apn", "access", "acme.iot", "--tenant", "acme", "--auth", "x")
    assert 2 == code
    assert 1 == len(err.strip().splitlines())
