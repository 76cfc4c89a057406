"""The ledger HTTP API: submit (signed, prepared, node-issued), queries, feed, and fuzzing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.ledger import Ed25519Signer, encode_tagged_data
from simtrust.runtime import Runtime

CLIENT = Ed25519Signer(b"\x31" * 32)


def test_prepare_sign_submit_and_read_back(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    payload = encode_tagged_data(b"meter", b"kwh=12").hex()
    prep = api.post("/v1/ledger/prepare", headers=operator_headers, json={
        "issuer": CLIENT.public_key.hex(), "payload_type": "tagged-data", "payload": payload,
    })
    assert 200 == prep.status_code, prep.text
    to_sign = bytes.fromhex(prep.json()["signing_bytes"])
    sub = api.post("/v1/ledger/messages", headers=operator_headers, json={
        "signing_bytes": to_sign.hex(), "signature": CLIENT.sign(to_sign).hex(),
    })
    assert 201 == sub.status_code, sub.text
    mid = sub.json()["message_id"]
    got = api.get(f"/v1/ledger/messages/{mid}", headers=operator_headers).json()
    assert "finalized" == got["state"]
    assert "kwh=12" == got["body"]["text"]
    assert CLIENT.public_key.hex() == got["issuer"]
    raw = api.get(f"/v1/ledger/messages/{mid}/raw", headers=operator_headers).content
    assert to_sign == raw[:-64]
    again = api.post("/v1/ledger/messages", headers=operator_headers, json={"message": raw.hex()})
    assert ("duplicate", 200) == (again.json()["status"], again.status_code)
    mine = api.get("/v1/ledger/messages", headers=operator_headers,
                   params={"issuer": CLIENT.public_key.hex()}).json()["messages"]
    assert [mid] == [m["message_id"] for m in mine]
    assert [mid] == api.get("/v1/ledger/tips", headers=operator_headers).json()["tips"]


def test_rejection_is_a_problem_with_reason(api: Any, operator_headers: dict[str, str]) -> None:
    prep = api.post("/v1/ledger/prepare", headers=operator_headers, json={
        "issuer": CLIENT.public_key.hex(), "payload_type": "tagged-data",
        "payload": encode_tagged_data(b"", b"x").hex(),
    }).json()
    res = api.post("/v1/ledger/messages", headers=operator_headers, json={
        "signing_bytes": prep["signing_bytes"], "signature": "00" * 64,
    })
    assert 422 == res.status_code
    assert "signature" == res.json()["reason"]
    res = api.post("/v1/ledger/messages", headers=operator_headers, json={"message": "zz"})
    assert 400 == res.status_code


def test_value_queries_and_feed(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime
) -> None:
    node = sqlite_runtime.ledger
    tx = node.transfer(node.signer, CLIENT.public_key, 4_200)
    bal = api.get(f"/v1/ledger/balances/{CLIENT.public_key.hex()}", headers=operator_headers)
    assert 4_200 == bal.json()["amount"]
    outs = api.get(f"/v1/ledger/outputs/{CLIENT.public_key.hex()}", headers=operator_headers)
    assert tx.hex() == outs.json()["outputs"][0]["transaction"]
    status = api.get(f"/v1/ledger/transactions/{tx.hex()}", headers=operator_headers).json()
    assert "finalized" == status["state"]
    data = api.post("/v1/ledger/data", headers=operator_headers,
                    json={"tag": "note", "data": "hello"})
    assert 201 == data.status_code
    kids = api.get(f"/v1/ledger/messages/{tx.hex()}/children", headers=operator_headers).json()
    assert [data.json()["message_id"]] == kids["children"]
    with api.stream("GET", "/v1/ledger/feed", headers=operator_headers,
                    params={"max_events": 2}) as stream:
        body = "".join(stream.iter_text())
    assert "id: 1\nevent: finalized" in body
    assert tx.hex() in body
    assert data.json()["message_id"] in body
    resumed = api.get("/v1/ledger/feed", headers={**operator_headers, "Last-Event-ID": "1"},
                      params={"max_events": 1}).text
    assert "id: 2\n" in resumed
    assert tx.hex() not in resumed


def test_reads_need_a_key(api: Any) -> None:
    assert 401 == api.get("/v1/ledger/tips").status_code


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_fuzz_submit_never_breaks_the_node(
    api: Any, operator_headers: dict[str, str], sqlite_runtime: Runtime, data: bytes
) -> None:
    node = sqlite_runtime.ledger
    before = node.snapshot()
    res = api.post("/v1/ledger/messages", headers=operator_headers, json={"message": data.hex()})
    assert res.status_code in (400, 413, 422)
    assert before == node.snapshot()
    assert node.snapshot() == node.recompute()


def test_only_the_operator_makes_the_node_sign_data(sqlite_runtime: Any, api: Any,
                                                    operator_headers: dict[str, str]) -> None:
    """docs/decisions/ledger-node-key-data.md: a tenant admin gets 403, nothing is issued."""
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    tenant = sqlite_runtime.tenants.create_key("tenant-admin", "acme", tenant_id="acme")
    headers = {"Authorization": f"Bearer {tenant.secret}"}
    before = api.get("/v1/ledger/info", headers=operator_headers).json()["messages"]
    refused = api.post("/v1/ledger/data", headers=headers, json={"tag": "t", "data": "x"})
    assert 403 == refused.status_code
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert before == api.get("/v1/ledger/info", headers=operator_headers).json()["messages"]
    ok = api.post("/v1/ledger/data", headers=operator_headers, json={"tag": "t", "data": "x"})
    assert 201 == ok.status_code
    spec = api.get("/openapi.json").json()["paths"]["/v1/ledger/data"]["post"]
    assert "application/problem+json" in spec["responses"]["403"]["content"]
