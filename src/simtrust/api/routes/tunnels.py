"""Enterprise IPsec tunnels per APN (IKEv2, RFC 7296; rendered for strongSwan, docs/tunnels.md):
the operator sets the one tunnel of an enterprise APN (the operator's gateway end, the
enterprise's endpoint, traffic selectors from the APN's pool and the enterprise's
prefixes) and removes it; the tenant reads its own. The PSK is write-only: sealed at rest,
never answered (``psk_set`` says whether one is held).
docs/decisions/policy-tunnels-per-apn.md says who may change what.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Principal
from simtrust.api.problems import problem_responses
from simtrust.errors import InvalidInput, NotFound
from simtrust.policy import TunnelSpec, TunnelStore

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tunnels"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key",
    404: "No such tenant, APN or tunnel",
    409: "The tunnel name serves another APN",
    422: "Request body or query does not validate",
})


class TunnelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=31, pattern=r"^[a-z0-9][a-z0-9-]*$",
                      description="swanctl connection name, unique on the gateway")
    local_address: str = Field(max_length=45, description="The operator gateway's address")
    remote_address: str = Field(max_length=45, description="The enterprise endpoint's address")
    local_id: str = Field(max_length=128, description="The gateway's IKE identity")
    remote_id: str = Field(max_length=128, description="The enterprise's IKE identity")
    apn_pool: list[str] | None = Field(
        None, max_length=16, description="Traffic selectors on the APN side (CIDR); "
        "default: the APN's address pool")
    enterprise_prefixes: list[str] = Field(min_length=1, max_length=16,
                                           description="The enterprise's prefixes (CIDR)")
    auth: Literal["psk", "pubkey"] = "psk"
    psk_hex: str | None = Field(None, min_length=32, max_length=256,
                                pattern=r"^[0-9a-fA-F]+$",
                                description="PSK (hex, 16 bytes or more; write-only)")
    local_cert: str = Field("", max_length=251, description="Gateway certificate file")
    remote_ca: str = Field("", max_length=251,
                           description="CA file trusted for the enterprise's certificate")
    dpd_delay_s: int = Field(30, ge=5, le=3600, description="Dead peer detection interval")


def _tenant(who: Principal, requested: str | None) -> str:
    tenant = who.scope(requested)
    if tenant is None:
        raise InvalidInput("name the tenant_id", field="tenant_id")
    return tenant


@router.put("/apns/{name}/tunnel", responses=_ERRORS,
            summary="Set the enterprise tunnel of an APN (operator)")
def put_tunnel(name: str, body: TunnelIn, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    who.require_operator()
    tenant = _tenant(who, tenant_id)
    apn = rt.subscriber.inventory.get_apn(tenant, name)
    pool = body.apn_pool if body.apn_pool is not None else (
        [str(apn.pool)] if apn.pool is not None else [])
    if not pool:
        raise InvalidInput("the APN has no address pool; name apn_pool", field="apn_pool")
    if (body.auth == "psk") != (body.psk_hex is not None):
        raise InvalidInput("psk_hex goes with auth psk, and only with it", field="psk_hex")
    spec = TunnelSpec(body.name, tenant, name, body.local_address, body.remote_address,
                      body.local_id, body.remote_id, tuple(pool),
                      tuple(body.enterprise_prefixes), body.auth,
                      bytes.fromhex(body.psk_hex) if body.psk_hex is not None else None,
                      body.local_cert, body.remote_ca, dpd_delay_s=body.dpd_delay_s)
    return TunnelStore.describe(rt.tunnels.put(spec, actor=who.actor))


@router.get("/apns/{name}/tunnel", responses=_ERRORS, summary="An APN's enterprise tunnel")
def get_tunnel(name: str, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    tenant = _tenant(who, tenant_id)
    return TunnelStore.describe(rt.tunnels.get(tenant, name))


@router.delete("/apns/{name}/tunnel", responses=_ERRORS,
               summary="Remove an APN's enterprise tunnel (operator)")
def delete_tunnel(name: str, rt: CurrentRuntime, who: CurrentPrincipal,
                  tenant_id: str | None = None) -> dict[str, Any]:
    who.require_operator()
    tenant = _tenant(who, tenant_id)
    return {"removed": TunnelStore.describe(rt.tunnels.delete(tenant, name, actor=who.actor))}


@router.get("/tunnels", responses=_ERRORS,
            summary="Enterprise tunnels (a tenant's own; the operator's: all or one tenant's)")
def list_tunnels(rt: CurrentRuntime, who: CurrentPrincipal,
                 tenant_id: str | None = None) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    if scope is None and not who.is_operator:
        raise NotFound("no tenant")
    return {"tunnels": [TunnelStore.describe(s) for s in rt.tunnels.tunnels(scope)]}
