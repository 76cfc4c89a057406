"""Policies, inline flow decisions, gateway facts and the nftables rendering over HTTP.

Tenant admins write their own tenant's policies (each write a new, audited
version); viewers read them. The inline decision, the name→address reports
and device registrations are the gateway's calls and need an operator key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Id64
from simtrust.domain import DeviceContext, ImsiDigits, imsi_digits
from simtrust.errors import InvalidInput
from simtrust.policy import (
    GatewayDevice,
    Scope,
    policy_from_dict,
    render_ruleset,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/policy", tags=["policy"])


class PolicyBody(BaseModel):
    """The rules of a policy (see docs/policy.md for each rule kind)."""

    model_config = ConfigDict(extra="forbid")
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=64)


class DecideBody(BaseModel):
    """One flow about to start; the device is named by ``imsi`` or by ``src_addr``."""

    model_config = ConfigDict(extra="forbid")
    dst_addr: str = Field(max_length=64)
    dst_port: int = Field(ge=0, le=65535)
    protocol: int = Field(ge=0, le=255)
    src_addr: str | None = Field(default=None, max_length=64)
    src_port: int = Field(default=0, ge=0, le=65535)
    imsi: str | None = Field(default=None, pattern=r"^[0-9]{6,15}$")
    at: float | None = None


class NamesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=253)
    addresses: list[str] = Field(max_length=256)


class DeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imsi: str = Field(pattern=r"^[0-9]{6,15}$")
    tenant_id: str = Field(min_length=1, max_length=64)
    apn: str = ""
    group: str = ""
    tz: str = "UTC"
    serving_mcc: str | None = Field(default=None, pattern=r"^[0-9]{3}$")
    address: str | None = None


@router.get("/policies", summary="Current policies (a tenant sees only its own)")
def list_policies(rt: CurrentRuntime, who: CurrentPrincipal,
                  tenant_id: str | None = None) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    return {"policies": [p.to_dict() for p in rt.policy.store.current(scope)]}


@router.put("/policies/{tenant_id}/{scope}", summary="Write a new version of a policy")
def put_policy(tenant_id: str, scope: str, body: PolicyBody, rt: CurrentRuntime,
               who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    who.require_admin()
    rt.tenants.get_tenant(tenant_id)  # NotFound for a tenant that does not exist
    policy = policy_from_dict({"tenant_id": tenant_id, "scope": scope, "rules": body.rules})
    return rt.policy.store.put(policy, actor=who.actor).to_dict()


@router.get("/policies/{tenant_id}/{scope}", summary="A policy (latest or a given version)")
def get_policy(tenant_id: str, scope: str, rt: CurrentRuntime, who: CurrentPrincipal,
               version: Annotated[Id64 | None, Query()] = None) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    return rt.policy.store.get(tenant_id, Scope.parse(scope), version).to_dict()


@router.get("/policies/{tenant_id}/{scope}/history", summary="Every version of a policy")
def policy_history(tenant_id: str, scope: str, rt: CurrentRuntime,
                   who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    rows = rt.policy.store.history(tenant_id, Scope.parse(scope))
    return {"versions": [{**p.to_dict(), "actor": a, "created_at": c} for p, a, c in rows]}


@router.delete("/policies/{tenant_id}/{scope}", status_code=status.HTTP_200_OK,
               summary="Deactivate a policy (a new, inactive version)")
def delete_policy(tenant_id: str, scope: str, rt: CurrentRuntime,
                  who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    who.require_admin()
    return rt.policy.store.delete(tenant_id, Scope.parse(scope),
                                           actor=who.actor).to_dict()


class AlertingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook_url: str | None = Field(default=None, max_length=2048)


@router.put("/alerting/{tenant_id}", summary="Set the tenant's webhook for policy alerts")
def set_alerting(tenant_id: str, body: AlertingBody, rt: CurrentRuntime,
                 who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    who.require_admin()
    rt.policy.store.set_webhook(tenant_id, body.webhook_url, actor=who.actor)
    return {"tenant_id": tenant_id, "webhook": body.webhook_url is not None}


@router.get("/alerting/{tenant_id}", summary="Whether the tenant has a policy-alert webhook")
def get_alerting(tenant_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    url = rt.policy.store.webhook(tenant_id)
    return {"tenant_id": tenant_id, "webhook": url is not None,
            "mqtt_topic": f"simtrust/policy/alerts/{tenant_id}/+"}


def _imsi(text: str | None) -> ImsiDigits | None:
    return None if text is None else imsi_digits(text)


@router.post("/decide", summary="May this flow start? (inline gateway, operator key)")
def decide(body: DecideBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    if body.imsi is None and body.src_addr is None:
        raise InvalidInput("give imsi or src_addr", field="imsi")
    decision = rt.policy.engine.decide(
        dst_addr=body.dst_addr, dst_port=body.dst_port, protocol=body.protocol,
        src_addr=body.src_addr, imsi=_imsi(body.imsi), src_port=body.src_port, at=body.at)
    return decision.to_dict()


class DecideBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flows: list[DecideBody] = Field(min_length=1, max_length=1000)


@router.post("/decide/batch", summary="Decide up to 1,000 flow starts in one call (operator key)")
def decide_batch(body: DecideBatchBody, rt: CurrentRuntime, who: CurrentPrincipal
                 ) -> dict[str, Any]:
    who.require_operator()
    engine = rt.policy.engine
    out = []
    for f in body.flows:
        if f.imsi is None and f.src_addr is None:
            raise InvalidInput("every flow needs imsi or src_addr", field="imsi")
        out.append(engine.decide(dst_addr=f.dst_addr, dst_port=f.dst_port, protocol=f.protocol,
                                 src_addr=f.src_addr, imsi=_imsi(f.imsi), src_port=f.src_port,
                                 at=f.at).to_dict())
    return {"decisions": out}


@router.post("/names", summary="Report a DNS answer the gateway saw (operator key)")
def report_names(body: NamesBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    try:
        rt.policy.names.report(body.name, body.addresses)
    except ValueError:
        raise InvalidInput("addresses must be IP addresses", field="addresses") from None
    return {"name": body.name, "addresses": sorted(body.addresses)}


@router.post("/devices", summary="Register a device context and address (operator key)")
def register_device(body: DeviceBody, rt: CurrentRuntime, who: CurrentPrincipal
                    ) -> dict[str, Any]:
    who.require_operator()
    ctx = DeviceContext(imsi_digits(body.imsi), body.tenant_id, body.apn, body.group, body.tz,
                        body.serving_mcc)
    try:
        rt.policy.register(ctx, body.address)
    except ValueError:
        raise InvalidInput("bad address", field="address") from None
    return {"imsi": body.imsi, "address": body.address}


@router.get("/nftables/{tenant_id}", summary="The tenant's nftables ruleset for the gateway",
            response_class=Response)
def nftables(tenant_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
    who.check_tenant(tenant_id)
    service = rt.policy
    devices = []
    for imsi in service.devices.imsis():
        ctx = service.devices.context(imsi)
        addr = service.addresses.address_of(imsi)
        if ctx is not None and addr is not None and ctx.tenant_id == tenant_id:
            devices.append(GatewayDevice(ctx, addr))
    text = render_ruleset(tenant_id, service.policies, devices, service.engine.removed)
    return Response(text, media_type="text/plain")


@router.get("/status", summary="Policy engine counters (operator key)")
def engine_status(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return rt.policy.status()
