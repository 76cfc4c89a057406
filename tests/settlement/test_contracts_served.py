"""Contracts served (issue 15 item 1): the node's contract engine behind the API and the
``simtrust contract`` commands, state and history queryable by id, a refused or stale
transition answered as rejected with its reason; netted transfers paid over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.runtime import Runtime
from simtrust.settlement import (
    CONTRACT_CODES,
    code_hash,
    create_payload,
    party_public_key,
    transition_payload,
)
from tests.settlement.test_cli import cli
from tests.settlement.test_contracts import HOME, INITIAL, STRANGER, VISITED

CODE = code_hash(CONTRACT_CODES["roaming-agreement"])


def test_contract_api(api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime) -> None:
    codes = api.get("/v1/settlement/contract-codes", headers=operator_headers).json()
    assert [{"name": name, "code": code_hash(code)} for name, code in CONTRACT_CODES.items()
            ] == codes
    assert {"name": "roaming-agreement", "code": CODE} in codes

    def submit(payload: bytes) -> Any:
        return api.post("/v1/settlement/contracts", headers=operator_headers,
                        json={"payload": json.loads(payload)})

    created = submit(create_payload("ra-api", CODE, INITIAL))
    assert 200 == created.status_code, created.text
    assert ("applied", "create", "ra-api") == (
        created.json()["status"], created.json()["op"], created.json()["contract"])
    first = api.get("/v1/settlement/contracts/ra-api", headers=operator_headers).json()
    assert (0, "proposed") == (first["seq"], first["state"]["status"])
    signed = submit(transition_payload("ra-api", first["state_hash"], {"action": "sign"}, [HOME]))
    assert "applied" == signed.json()["status"]
    stale = submit(transition_payload("ra-api", first["state_hash"], {"action": "sign"},
                                      [VISITED]))
    assert ("rejected", "stale-state") == (stale.json()["status"], stale.json()["reason"])
    now = api.get("/v1/settlement/contracts/ra-api", headers=operator_headers).json()
    stranger = submit(transition_payload("ra-api", now["state_hash"], {"action": "sign"},
                                         [STRANGER]))
    assert ("rejected", "not-a-party") == (stranger.json()["status"], stranger.json()["reason"])
    done = submit(transition_payload("ra-api", now["state_hash"], {"action": "sign"}, [VISITED]))
    assert "applied" == done.json()["status"]
    final = api.get("/v1/settlement/contracts/ra-api", headers=operator_headers).json()
    assert ("active", 2) == (final["state"]["status"], final["seq"])
    history = api.get("/v1/settlement/contracts/ra-api/history", headers=operator_headers).json()
    assert ["applied", "applied", "rejected", "rejected", "applied"] == [
        h["status"] for h in history]
    listed = api.get("/v1/settlement/contracts", headers=operator_headers).json()
    assert [("ra-api", "active", 2)] == [(c["contract"], c["status"], c["seq"]) for c in listed]
    # The engine is the runtime's, replayed from the ledger: a fresh one agrees.
    assert final["state_hash"] == sqlite_runtime.contracts.state("ra-api")["state_hash"]

    missing = api.get("/v1/settlement/contracts/nope", headers=operator_headers)
    assert 404 == missing.status_code
    assert missing.headers["content-type"].startswith("application/problem+json")
    floats = api.post("/v1/settlement/contracts", headers=operator_headers,
                      json={"payload": {"op": "create", "contract": "f", "code": CODE,
                                        "state": {"x": 1.5}}})
    assert 400 == floats.status_code
    huge = api.post("/v1/settlement/contracts", headers=operator_headers,
                    json={"payload": {"op": "create", "contract": "h", "code": CODE,
                                      "state": {"x": 2**60}}})
    assert 400 == huge.status_code
    assert huge.headers["content-type"].startswith("application/problem+json")
    no_op = api.post("/v1/settlement/contracts", headers=operator_headers,
                     json={"payload": {"contract": "f"}})
    assert 400 == no_op.status_code
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    viewer = sqlite_runtime.tenants.create_key("tenant-admin", "acme admin", "acme")
    refused = api.post("/v1/settlement/contracts",
                       headers={"Authorization": f"Bearer {viewer.secret}"},
                       json={"payload": json.loads(create_payload("v", CODE, INITIAL))})
    assert 403 == refused.status_code
    assert 401 == api.get("/v1/settlement/contracts").status_code
    paths = api.get("/openapi.json").json()["paths"]
    assert "404" in paths["/v1/settlement/contracts/{contract}"]["get"]["responses"]
    assert "403" in paths["/v1/settlement/contracts"]["post"]["responses"]


def test_pay_netted_transfers_over_http(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    node = sqlite_runtime.ledger
    me = did_key(node.signer.public_key)
    other = did_key(Ed25519Signer(b"\x31" * 32).public_key)
    token = api.post("/v1/settlement/tokens", headers=operator_headers,
                     json={"max_supply": 1000, "initial": 100}).json()["token"]
    transfers = [{"from": me, "to": other, "amount_minor_units": 40},
                 {"from": other, "to": me, "amount_minor_units": 7}]  # not ours: skipped
    paid = api.post(f"/v1/settlement/tokens/{token}/pay", headers=operator_headers,
                    json={"transfers": transfers})
    assert 200 == paid.status_code, paid.text
    assert [other] == [p["to"] for p in paid.json()["paid"]]
    assert {bytes.fromhex(token): 40} == node.balance(party_public_key(other)).tokens
    bad = api.post(f"/v1/settlement/tokens/{token}/pay", headers=operator_headers,
                   json={"transfers": [{"from": me, "to": other, "amount_minor_units": -1}]})
    assert 400 == bad.status_code


def test_contract_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    cli("init", "--json", check=True)
    keys = {}
    for name, signer in (("home", HOME), ("visited", VISITED)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"type": "Ed25519", "seed": signer.seed().hex()}))
        keys[name] = path
    state = tmp_path / "state.json"
    state.write_text(json.dumps(INITIAL))
    sign = tmp_path / "sign.json"
    sign.write_text(json.dumps({"action": "sign"}))
    created = cli("contract", "create", "ra-cli", "--code", "roaming-agreement",
                   "--state", str(state), "--json")
    assert 0 == created.returncode, created.stderr
    assert "applied" == json.loads(created.stdout)["status"]
    for who in ("home", "visited"):
        step = cli("contract", "transition", "ra-cli", "--input", str(sign),
                    "--key", str(keys[who]), "--json")
        assert 0 == step.returncode, step.stderr
        assert "applied" == json.loads(step.stdout)["status"]
    shown = json.loads(cli("contract", "show", "ra-cli", "--json").stdout)
    assert ("active", 2) == (shown["state"]["status"], shown["seq"])
    history = json.loads(cli("contract", "history", "ra-cli", "--json").stdout)
    assert 3 == len(history)
    unknown = cli("contract", "create", "x", "--code", "nope", "--state", str(state))
    assert 2 == unknown.returncode
    assert 1 == len(unknown.stderr.strip().splitlines())
    missing = cli("contract", "show", "nope")
    assert 0 != missing.returncode
    assert "no contract" in missing.stderr
