"""The local energy market over HTTP: orders per interval, clearing, settlement in tokens.

The same operations as ``simtrust energy`` (docs/streams.md "Meters and the local
energy market"). Prosumers are the tenant's registered meters; an interval is
named by its start (Unix seconds, a multiple of the market's interval). Orders,
escrow deposits and withdrawals need an admin key of the meter's tenant (a bid
beyond the buyer's unused deposit is 422 ``insufficient-deposit``; a withdrawal
pays only to the meter's own key); settling pays from the
node key (out of the buyers' deposits), so it needs an operator-admin key. A
tenant key sees its own tenant's market only.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime, Principal
from simtrust.api.problems import problem_responses
from simtrust.errors import InvalidInput
from simtrust.ledger import parse_hex_id

__all__ = ["router"]

router = APIRouter(prefix="/v1/energy", tags=["energy"])

_ERRORS = problem_responses({
    400: "invalid input",
    401: "missing or unknown API key",
    403: "the key may not do this",
    404: "no such meter or tenant",
    409: "gate closed, or the interval already cleared or settled",
    422: "the request does not match the schema",
})
_FUNDS_ERRORS = problem_responses({
    422: "the request does not match the schema, or the meter's unused deposit does not cover "
         "it (reason insufficient-deposit)"}, base=_ERRORS)
_Start = Path(..., ge=0, le=INT64_MAX, json_schema_extra=INT64,
              description="The interval's start, Unix seconds (a multiple of its length)")


class OrderBody(BaseModel):
    interval_start: int = Field(..., ge=0, le=INT64_MAX, json_schema_extra=INT64)
    meter: str = Field(..., min_length=1, max_length=512, description="A registered meter's id")
    side: Literal["buy", "sell"]
    wh: int = Field(..., gt=0, le=INT64_MAX, json_schema_extra=INT64)
    price: int = Field(..., ge=0, le=INT64_MAX, json_schema_extra=INT64,
                       description="Limit price in minor currency units per kWh")
    token_id: str | None = Field(None, pattern="^[0-9a-fA-F]+$", max_length=128,
                                 description="Bids: the token it is paid in (default: the "
                                             "interval's, else the buyer's only deposit)")
    tenant_id: str | None = Field(None, max_length=64, description="Operator keys only")


class WithdrawBody(BaseModel):
    meter: str = Field(..., min_length=1, max_length=512, description="The depositing meter")
    token_id: str = Field(..., pattern="^[0-9a-fA-F]+$", max_length=128)
    amount: int = Field(..., gt=0, le=INT64_MAX, json_schema_extra=INT64)
    tenant_id: str | None = Field(None, max_length=64, description="Operator keys only")


class DepositBody(BaseModel):
    meter: str = Field(..., min_length=1, max_length=512, description="The buyer's meter")
    message_id: str = Field(..., pattern="^[0-9a-fA-F]{64}$",
                            description="A finalized token transfer from the meter's key to "
                                        "the node key")
    tenant_id: str | None = Field(None, max_length=64, description="Operator keys only")


class TenantBody(BaseModel):
    tenant_id: str | None = Field(None, max_length=64, description="Operator keys only")


class SettleBody(TenantBody):
    token_id: str = Field(..., pattern="^[0-9a-fA-F]+$", max_length=128,
                       description="The settlement token the sellers are paid in (hex id)")


def _tenant(who: Principal, requested: str | None) -> str:
    tenant = who.scope(requested)
    if tenant is None:
        raise InvalidInput("tenant_id is required with an operator key", field="tenant_id")
    return tenant


@router.post("/orders", status_code=201, responses=_FUNDS_ERRORS,
             summary="Post a bid or an offer of a registered meter for an interval")
def post_order(body: OrderBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    return rt.energy.post_order(_tenant(who, body.tenant_id), interval_start=body.interval_start,
                                meter=body.meter, side=body.side, wh=body.wh, price=body.price,
                                actor=who.actor, token=None if body.token_id is None
                                else parse_hex_id(body.token_id, "token id"))


@router.get("/intervals/{interval_start}", responses=_ERRORS,
            summary="An interval's orders, clearing and settlement")
def interval(rt: CurrentRuntime, who: CurrentPrincipal, interval_start: int = _Start,
             tenant_id: str | None = None) -> dict[str, Any]:
    return rt.energy.interval(_tenant(who, tenant_id), interval_start)


@router.post("/intervals/{interval_start}/clear", responses=_ERRORS,
             summary="Clear the interval at one price once its gate closed (stored, once)")
def clear_interval(body: TenantBody, rt: CurrentRuntime, who: CurrentPrincipal,
                   interval_start: int = _Start) -> dict[str, Any]:
    who.require_admin()
    return rt.energy.clear_interval(_tenant(who, body.tenant_id), interval_start,
                                    actor=who.actor)


@router.post("/intervals/{interval_start}/settle",
             responses=problem_responses({422: "the request does not match the "
                                         "schema, or the ledger refused a payment"}, base=_ERRORS),
             summary="Check delivery against trusted readings; pay sellers in the token")
def settle_interval(body: SettleBody, rt: CurrentRuntime, who: CurrentPrincipal,
                    interval_start: int = _Start) -> dict[str, Any]:
    who.require_operator()
    return rt.energy.settle_interval(_tenant(who, body.tenant_id), interval_start,
                                     token=parse_hex_id(body.token_id, "token id"), actor=who.actor)


@router.post("/deposits", status_code=201, responses=_ERRORS,
             summary="Register a buyer's escrow deposit (its finalized transfer to the node key)")
def deposit(body: DepositBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    return rt.energy.deposit(_tenant(who, body.tenant_id), meter=body.meter,
                             message_id=bytes.fromhex(body.message_id), actor=who.actor)


@router.post("/withdrawals", status_code=201, responses=_FUNDS_ERRORS,
             summary="Pay unused deposit back to the meter's key with a ledger transfer")
def withdraw(body: WithdrawBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    return rt.energy.withdraw(_tenant(who, body.tenant_id), meter=body.meter,
                              token=parse_hex_id(body.token_id, "token id"), amount=body.amount,
                              actor=who.actor)


@router.get("/balances", responses=_ERRORS,
            summary="A meter's escrow balance per token (deposits minus settled payments and "
                    "withdrawals), what its bids commit and what it can withdraw")
def balances(rt: CurrentRuntime, who: CurrentPrincipal,
             meter: str = Query(..., min_length=1, max_length=512),
             tenant_id: str | None = None) -> dict[str, Any]:
    tenant = _tenant(who, tenant_id)
    return {"meter": meter, "balances": rt.energy.meter_balances(tenant, meter),
            "funds": rt.energy.funds(tenant, meter)["tokens"]}
