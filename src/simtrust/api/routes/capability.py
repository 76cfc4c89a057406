"""Capability credentials and the policy enforcement point in front of datasets.

``POST /capabilities`` (operator-admin) grants a root capability on a
dataset behind simtrust (a VC signed by the platform issuer, with a
revocation entry in its Bitstring Status List; revoke it with
``POST /credentials/status``). ``POST /capabilities/check`` is the
enforcement point's decision API: a capability token (bearer chain or
holder-signed presentation, see ``simtrust.identity.CapabilityEnforcer``),
an action and a resource → ``{"decision": "permit"|"deny", "reason", ...}``,
200 when permitted and 403 when not; every decision is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime

__all__ = ["router"]

router = APIRouter(tags=["capabilities"])


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grantee: str = Field(min_length=5, max_length=500)
    resource: str = Field(min_length=1, max_length=1000)
    actions: list[str] = Field(min_length=1, max_length=32)
    validUntil: datetime | None = None  # noqa: N815 - VCDM member name
    delegationDepth: int = Field(default=0, ge=0, le=8)  # noqa: N815
    ratePerMinute: int | None = Field(default=None, gt=0)  # noqa: N815


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capability: str = Field(max_length=262_144)
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=1000)


@router.post(
    "/capabilities",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a capability on a dataset (operator-admin)",
)
def grant(body: GrantRequest, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    credential = rt.identity.grant_capability(
        grantee=body.grantee, resource=body.resource, actions=body.actions,
        valid_until=body.validUntil, delegation_depth=body.delegationDepth,
        rate_per_minute=body.ratePerMinute,
    )  # fmt: skip
    rt.audit.append(
        actor=who.actor, action="capability.grant", subject=credential["id"], outcome="success",
        details={"grantee": body.grantee, "resource": body.resource, "actions": body.actions},
    )  # fmt: skip
    return {"verifiableCredential": credential}


@router.post(
    "/capabilities/check",
    summary="Enforcement point: may this capability do ACTION on RESOURCE now?",
    responses={403: {"description": "denied; the body says why"}},
)
def check(body: CheckRequest, rt: CurrentRuntime, who: CurrentPrincipal) -> JSONResponse:
    service = rt.identity
    decision = service.capabilities.check(
        body.capability, action=body.action, resource=body.resource, now=service.now()
    )
    rt.audit.append(
        actor=who.actor, action="capability.access", subject=body.resource,
        outcome="allow" if decision.permit else "deny",
        details={"action": body.action, **decision.to_json()},
    )  # fmt: skip
    return JSONResponse(decision.to_json(), status_code=200 if decision.permit else 403)
