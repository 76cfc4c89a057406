"""Settlement over HTTP: reconcile usage, verify statements, net, evaluate SLAs, tokens.

The same operations as ``simtrust settle`` and ``simtrust sla``
(``docs/settlement.md``): usage files and KPI reports travel as CSV text in
the JSON body. JSON numbers in an agreement or contract arrive as binary
floats and are read back through their shortest decimal form (``repr``), which
is the number as written for up to 15 significant digits. Token creation and
minting use the node key and need an operator-admin key.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import problem_responses
from simtrust.ledger import parse_hex_id
from simtrust.settlement import (
    CONTRACT_CODES,
    SettlementTokens,
    StatementStore,
    anchor_statement,
    build_credit_note,
    check_statements,
    code_hash,
    evaluate_sla,
    net_statements,
    parse_agreement,
    parse_sla_contract,
    reconcile_files,
    submit_contract,
    verify_anchored_record,
    verify_statement,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/settlement", tags=["settlement"])

_CSV_MAX = 64 * 1024 * 1024
_ERRORS = problem_responses({
    400: "unreadable or invalid input, or a signature that does not verify",
    401: "missing or unknown API key",
})
_ADMIN_ERRORS = problem_responses({
    403: "not an operator-admin key",
    422: "the ledger did not apply the transaction",
}, base=_ERRORS)


class ReconcileBody(BaseModel):
    agreement: dict[str, Any] = Field(..., description="Roaming agreement (docs/settlement.md)")
    home_csv: str = Field(..., max_length=_CSV_MAX, description="The home network's usage CSV")
    visited_csv: str = Field(..., max_length=_CSV_MAX, description="The visited side's CSV")
    records: bool = Field(False, description="Also return charging_id,imsi,side,class per record")


class NetBody(BaseModel):
    statements: list[dict[str, Any]] = Field(..., max_length=10_000)
    require_signatures: bool = True


class StatementBody(BaseModel):
    statement: dict[str, Any]


class SlaBody(BaseModel):
    contract: dict[str, Any] = Field(..., description="Slice SLA contract (docs/settlement.md)")
    measurements_csv: str = Field(..., max_length=_CSV_MAX)


class TokenBody(BaseModel):
    max_supply: int = Field(..., gt=0, le=INT64_MAX, json_schema_extra=INT64)
    initial: int = Field(0, ge=0, le=INT64_MAX, json_schema_extra=INT64)


class MintBody(BaseModel):
    amount: int = Field(..., gt=0, le=INT64_MAX, json_schema_extra=INT64)


def _reconcile(body: ReconcileBody) -> dict[str, Any]:
    terms = parse_agreement(json.dumps(body.agreement))
    with tempfile.TemporaryDirectory(prefix="simtrust-reconcile-") as folder:
        home, visited = Path(folder) / "home.csv", Path(folder) / "visited.csv"
        home.write_text(body.home_csv, encoding="utf-8")
        visited.write_text(body.visited_csv, encoding="utf-8")
        out = Path(folder) / "records.csv" if body.records else None
        document = reconcile_files(terms, home, visited, records_out=out).to_json()
        if out is not None:
            document["records_csv"] = out.read_text(encoding="utf-8")
    return document


@router.post("/reconcile", summary="Classify both sides' usage records and rate the statement",
             responses=_ERRORS)
async def reconcile(body: ReconcileBody, who: CurrentPrincipal) -> dict[str, Any]:
    return await run_in_threadpool(_reconcile, body)


@router.post("/statements/verify", summary="Check both parties' signatures on a statement",
             responses=_ERRORS)
def verify(body: StatementBody, who: CurrentPrincipal) -> dict[str, Any]:
    return {"verified": True, "signed_by": verify_statement(body.statement)}


@router.post("/net", summary="Multilateral netting: positions and at most N−1 transfers",
             responses=_ERRORS)
def net(body: NetBody, who: CurrentPrincipal) -> dict[str, Any]:
    check_statements(body.statements, require_signatures=body.require_signatures)
    return net_statements(body.statements)


class StoreBody(BaseModel):
    period: str = Field(..., max_length=7, description="The settlement period, YYYY-MM")
    statements: list[dict[str, Any]] = Field(..., max_length=10_000)
    require_signatures: bool = True
    tenant_id: str | None = Field(None, max_length=64,
                                  description="Operator: the tenant that keeps them")


_STORE_ERRORS = problem_responses({
    403: "a tenant-viewer key",
    404: "no such tenant (or another tenant's)",
}, base=_ERRORS)


@router.post("/statements", status_code=201, responses=_STORE_ERRORS,
             summary="Keep a period's statements (checked like /net) for netting later")
def store_statements(body: StoreBody, rt: CurrentRuntime,
                     who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    tenant = who.scope(body.tenant_id)
    if tenant is not None:
        rt.tenants.get_tenant(tenant)
    stored = StatementStore(rt.db).put(
        body.statements, period=body.period, tenant_id=tenant,
        require_signatures=body.require_signatures, now=rt.clock())
    rt.audit.append(actor=who.actor, action="settlement.statements.store",
                    subject=f"period:{body.period}", outcome="success", tenant_id=tenant,
                    details=stored, durable=True)
    return {"period": body.period, **stored}


@router.get("/statements", responses=_STORE_ERRORS,
            summary="Periods with stored statements (a tenant sees its own), newest first")
def statement_periods(rt: CurrentRuntime, who: CurrentPrincipal,
                      tenant_id: str | None = None) -> dict[str, Any]:
    return {"periods": StatementStore(rt.db).periods(who.scope(tenant_id))}


@router.get("/statements/{period}", responses=_STORE_ERRORS,
            summary="A period's stored statements and their netting (each statement once)")
def period_statements(period: str, rt: CurrentRuntime, who: CurrentPrincipal,
                      tenant_id: str | None = None) -> dict[str, Any]:
    statements = StatementStore(rt.db).statements(period, who.scope(tenant_id))
    return {"period": period, "statements": statements,
            "netting": net_statements(statements) if statements else None}


def _sla(body: SlaBody) -> dict[str, Any]:
    contract = parse_sla_contract(json.dumps(body.contract))
    with tempfile.TemporaryDirectory(prefix="simtrust-sla-") as folder:
        path = Path(folder) / "measurements.csv"
        path.write_text(body.measurements_csv, encoding="utf-8")
        return evaluate_sla(contract, path)


@router.post("/sla/evaluate", summary="SLA violations and credits per period",
             responses=_ERRORS)
async def sla_evaluate(body: SlaBody, who: CurrentPrincipal) -> dict[str, Any]:
    return await run_in_threadpool(_sla, body)


def _credit_note(body: SlaBody) -> dict[str, Any]:
    contract = parse_sla_contract(json.dumps(body.contract))
    return build_credit_note(contract, _sla(body))


@router.post("/sla/credit-note", summary="The SLA credits as an unsigned credit note",
             responses=_ERRORS)
async def sla_credit_note(body: SlaBody, who: CurrentPrincipal) -> dict[str, Any]:
    return await run_in_threadpool(_credit_note, body)


@router.post("/tokens", summary="Create a settlement token (foundry on the node key)",
             status_code=201, responses=_ADMIN_ERRORS)
def create_token(body: TokenBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = rt.ledger
    return SettlementTokens(node).create(node.signer, body.max_supply, body.initial).to_json()


@router.post("/tokens/{token}/mint", summary="Mint more of a token the node key's foundry holds",
             responses=_ADMIN_ERRORS)
def mint(token: str, body: MintBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = rt.ledger
    receipt = SettlementTokens(node).mint(node.signer, parse_hex_id(token, "token id"),
                                          body.amount)
    return receipt.to_json()


class ContractBody(BaseModel):
    payload: dict[str, Any] = Field(
        ..., description="A create or transition payload (docs/settlement.md, 'Contracts on "
        "the ledger'): transitions carry the parties' own Ed25519 signatures")


class PayBody(BaseModel):
    transfers: list[dict[str, Any]] = Field(
        ..., max_length=10_000,
        description="Netted transfers (`settle net` output); those whose `from` is the node "
        "key's did:key are paid")


_READ_ERRORS = problem_responses({
    401: "missing or unknown API key",
    404: "no such contract",
})


@router.get("/contract-codes", summary="Transition codes this node runs (name → code hash)",
            responses=_ERRORS)
def contract_codes(who: CurrentPrincipal) -> list[dict[str, str]]:
    return [{"name": name, "code": code_hash(fn)} for name, fn in sorted(CONTRACT_CODES.items())]


@router.post("/contracts", summary="Submit a contract payload; its outcome once finalized",
             status_code=200, responses=problem_responses({422: "the ledger refused the message"},
                                         base=_ADMIN_ERRORS))
def submit(body: ContractBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    """``status`` is ``applied``, ``rejected`` (with ``reason``) or ``pending`` (a consortium
    validator: the outcome appears in the history once the committee commits)."""
    who.require_operator()
    return submit_contract(rt.ledger, rt.contracts, body.payload)


@router.get("/contracts", summary="Every contract on the ledger", responses=_ERRORS)
def contracts(rt: CurrentRuntime, who: CurrentPrincipal) -> list[dict[str, Any]]:
    return rt.contracts.contracts()


@router.get("/contracts/{contract}", summary="A contract's current state",
            responses=_READ_ERRORS)
def contract_state(contract: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return rt.contracts.state(contract)


@router.get("/contracts/{contract}/history",
            summary="Every finalized message of a contract, applied or rejected with its reason",
            responses=_READ_ERRORS)
def contract_history(
    contract: str, rt: CurrentRuntime, who: CurrentPrincipal
) -> list[dict[str, Any]]:
    return rt.contracts.history(contract)


@router.post("/tokens/{token}/pay",
             summary="Pay the node key's netted transfers in a settlement token (finalized)",
             responses=_ADMIN_ERRORS)
def pay(token: str, body: PayBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = rt.ledger
    paid = SettlementTokens(node).settle(body.transfers, node.signer,
                                         parse_hex_id(token, "token id"))
    return {"paid": paid}


class RecordProofBody(BaseModel):
    proof: dict[str, Any] = Field(..., description="A record proof (`settle prove`)")
    anchor: dict[str, Any] = Field(
        ..., description="The anchor receipt: domain, first and issuer (`settle anchor`)")


@router.post("/statements/anchor",
             summary="Anchor a statement's usage-records root on the ledger (finalized)",
             responses=_ADMIN_ERRORS)
def anchor(body: StatementBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return anchor_statement(rt.ledger, body.statement)


@router.post("/records/verify",
             summary="Check a usage record's proof against the root the ledger holds",
             responses=problem_responses({404: "the ledger holds no such anchor"}, base=_ERRORS))
def verify_record(body: RecordProofBody, rt: CurrentRuntime,
                  who: CurrentPrincipal) -> dict[str, Any]:
    return verify_anchored_record(rt.ledger, body.proof, body.anchor)
