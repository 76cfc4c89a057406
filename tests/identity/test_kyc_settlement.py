"""Paid verifications netted by the settlement engine (issue 18, reusable KYC as a paid service).

A statement's billed lines are obligations (relying party pays issuing operator,
price × anchored verifications); the settlement engine's multilateral netting
turns the period's obligations into at most N−1 transfers. Pending (not yet
anchored) receipts owe nothing yet.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from simtrust.identity import VerificationReceipt, verification_statement
from simtrust.runtime import Runtime
from simtrust.settlement import net_statements

from .conftest import NOW

A, B, C = "did:simtrust:op-a", "did:simtrust:op-b", "did:web:bank.example"


def _receipt(n: int, issuer: str, party: str) -> VerificationReceipt:
    return VerificationReceipt(presentation_hash=f"{n:064x}", verifier="did:web:simtrust",
                               issuer=issuer, verified_at="2026-06-01T12:00:00Z",
                               relying_party=party, credential_type="urn:kyc")  # fmt: skip


def test_obligations_net_into_transfers() -> None:
    receipts = [
        *[(_receipt(i, A, B), True) for i in range(3)],  # B owes A 3 × 50
        *[(_receipt(10 + i, B, A), True) for i in range(2)],  # A owes B 2 × 50
        (_receipt(20, A, C), True),  # C owes A 50
        (_receipt(21, A, C), False),  # pending: not billed yet
    ]
    statement = verification_statement(receipts, start=NOW - timedelta(days=1),
                                       end=NOW + timedelta(days=1), price_minor_units=50,
                                       currency="EUR")  # fmt: skip
    owed = {(o["payer"], o["payee"]): o["total_minor_units"] for o in statement["obligations"]}
    assert {(B, A): 150, (A, B): 100, (C, A): 50} == owed
    netted = net_statements(statement["obligations"])["currencies"]["EUR"]
    assert {A: 100, B: -50, C: -50} == netted["positions"]
    assert 2 == len(netted["transfers"])  # N−1 for three parties
    assert 100 == netted["transferred_minor_units"]


def test_settlement_endpoint(api: Any, operator_headers: dict[str, str],
                             sqlite_runtime: Runtime) -> None:  # fmt: skip
    period = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "price": 50}
    response = api.get("/kyc/settlement", params=period, headers=operator_headers)
    assert 200 == response.status_code, response.text
    body = response.json()
    assert ("VerificationStatement", [], {}) == (
        body["statement"]["type"], body["statement"]["obligations"], body["netting"]["currencies"])
    backwards = {**period, "end": "2025-01-01T00:00:00Z"}
    refused = api.get("/kyc/settlement", params=backwards, headers=operator_headers)
    assert (400, "application/problem+json") == (
        refused.status_code, refused.headers["content-type"].split(";")[0])
    sqlite_runtime.tenants.create_tenant("acme", "Acme")
    tenant = sqlite_runtime.tenants.create_key("tenant-admin", "t", tenant_id="acme").secret
    denied = api.get("/kyc/settlement", params=period,
                     headers={"Authorization": f"Bearer {tenant}"})  # fmt: skip
    assert 403 == denied.status_code
