"""Settlement over HTTP: the same results as the library, errors as RFC 9457 problems,
every route in the OpenAPI description with its error statuses."""

from __future__ import annotations

from typing import Any

from tests.settlement.test_reconcile import AGREEMENT, HEADER, row
from tests.settlement.test_sla import CONTRACT, ROWS


def test_reconcile_net_sla_and_tokens(api: Any, operator_headers: dict[str, str]) -> None:
    home = "\n".join([HEADER, row("1"), row("2", volume=5000), row("3")]) + "\n"
    visited = "\n".join([HEADER, row("1"), row("2"), row("4", service="sms", volume=2)]) + "\n"
    body = {"agreement": {**AGREEMENT, "tolerance_percent": 2.5}, "home_csv": home,
            "visited_csv": visited, "records": True}
    done = api.post("/v1/settlement/reconcile", json=body, headers=operator_headers)
    assert 200 == done.status_code, done.text
    document = done.json()
    assert {"matched": 2, "partial": 2, "visited-only": 1, "home-only": 1, "duplicate": 0,
            "out-of-agreement": 0} == document["counts"]
    assert 1 + 10 == document["statement"]["disputed_minor_units"]  # partial 1 - 0, sms 2 x 5
    assert document["records_csv"].startswith("charging_id,imsi,side,class\n1,")

    bad = api.post("/v1/settlement/reconcile", headers=operator_headers,
                   json={**body, "home_csv": "charging_id\n1\n"})
    assert 400 == bad.status_code
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "bad header" in bad.json()["detail"]

    statements = [{"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": 9}]
    netted = api.post("/v1/settlement/net", headers=operator_headers,
                      json={"statements": statements, "require_signatures": False})
    assert {"A": -9, "B": 9} == netted.json()["currencies"]["EUR"]["positions"]
    unsigned = api.post("/v1/settlement/net", headers=operator_headers,
                        json={"statements": [{**statements[0], "type": "RoamingStatement"}]})
    assert 400 == unsigned.status_code

    sla = api.post("/v1/settlement/sla/evaluate", headers=operator_headers,
                   json={"contract": CONTRACT, "measurements_csv": "\n".join(
                       ["time,kpi,value,agent,signature", *ROWS]) + "\n"})
    assert 45_000 == sla.json()["total_credit_minor_units"]
    note = api.post("/v1/settlement/sla/credit-note", headers=operator_headers,
                    json={"contract": {**CONTRACT, "provider": "did:example:a",
                                       "customer": "did:example:b"},
                          "measurements_csv": "\n".join(
                              ["time,kpi,value,agent,signature", *ROWS]) + "\n"})
    assert 200 == note.status_code, note.text
    assert ("SlaCreditNote", 45_000) == (note.json()["type"], note.json()["credit_minor_units"])
    no_parties = api.post("/v1/settlement/sla/credit-note", headers=operator_headers,
                          json={"contract": {k: v for k, v in CONTRACT.items()
                                             if k != "provider"},
                                "measurements_csv": "time,kpi,value\n"})
    assert 400 == no_parties.status_code
    assert no_parties.headers["content-type"].startswith("application/problem+json")

    created = api.post("/v1/settlement/tokens", headers=operator_headers,
                       json={"max_supply": 1000, "initial": 10})
    assert 201 == created.status_code, created.text
    token = created.json()["token"]
    minted = api.post(f"/v1/settlement/tokens/{token}/mint", headers=operator_headers,
                      json={"amount": 5})
    assert 15 == minted.json()["minted"]
    over = api.post(f"/v1/settlement/tokens/{token}/mint", headers=operator_headers,
                    json={"amount": 10_000})
    assert 400 == over.status_code
    assert 401 == api.post("/v1/settlement/tokens", json={"max_supply": 1}).status_code


def test_routes_documented(api: Any) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/v1/settlement/reconcile", "/v1/settlement/net",
                 "/v1/settlement/statements/verify", "/v1/settlement/sla/evaluate",
                 "/v1/settlement/sla/credit-note",
                 "/v1/settlement/tokens", "/v1/settlement/tokens/{token}/mint"):
        responses = paths[path]["post"]["responses"]
        assert {"400", "401"} <= set(responses), path
        assert "application/problem+json" in responses["400"]["content"]
