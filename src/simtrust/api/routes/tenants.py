"""Tenants and API keys: who may use the platform, with which role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.errors import PermissionDenied
from simtrust.store import missing_key

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tenants"])


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                    description="Short lower-case identifier, e.g. `acme-meters`")
    name: str = Field(min_length=1, max_length=200)


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: str


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(pattern=r"^(operator-admin|tenant-admin|tenant-viewer)$")
    name: str = Field(min_length=1, max_length=200)
    tenant_id: str | None = None


class KeyOut(BaseModel):
    id: str
    tenant_id: str | None
    role: str
    name: str
    created_at: str
    revoked_at: str | None


class NewKeyOut(KeyOut):
    secret: str = Field(description="The API key. Shown once; only its hash is stored.",
                        repr=False)


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantOut,
             summary="Create a tenant (operator-admin)")
def create_tenant(body: TenantIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    with rt.db.transaction():
        tenant = rt.tenants.create_tenant(body.id, body.name)
        rt.audit.append(actor=who.actor, action="tenant.create", subject=f"tenant:{tenant.id}",
                        outcome="success", tenant_id=tenant.id)
    return tenant.to_json()


@router.get("/tenants", response_model=list[TenantOut], summary="List visible tenants")
def list_tenants(rt: CurrentRuntime, who: CurrentPrincipal) -> list[dict[str, Any]]:
    tenants = rt.tenants.list_tenants()
    return [t.to_json() for t in tenants if who.is_operator or t.id == who.tenant_id]


@router.get("/tenants/{tenant_id}", response_model=TenantOut, summary="Get a tenant")
def get_tenant(tenant_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    return rt.tenants.get_tenant(tenant_id).to_json()


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=NewKeyOut,
             summary="Create an API key; the secret is returned once")
def create_key(body: KeyIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    if not who.is_operator:
        if body.role == "operator-admin":
            raise PermissionDenied("only operator-admin keys may create operator-admin keys")
        who.check_tenant(body.tenant_id)
    with rt.db.transaction():
        new = rt.tenants.create_key(body.role, body.name, body.tenant_id)
        rt.audit.append(actor=who.actor, action="apikey.create", subject=f"apikey:{new.key.id}",
                        outcome="success", tenant_id=new.key.tenant_id,
                        details={"role": new.key.role})
    return {**new.key.to_json(), "secret": new.secret}


@router.get("/api-keys", response_model=list[KeyOut], summary="List API keys (no secrets)")
def list_keys(rt: CurrentRuntime, who: CurrentPrincipal,
              tenant_id: str | None = None) -> list[dict[str, Any]]:
    who.require_admin()
    return [k.to_json() for k in rt.tenants.list_keys(who.scope(tenant_id))]


@router.delete("/api-keys/{key_id}", response_model=KeyOut, summary="Revoke an API key")
def revoke_key(key_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    key = rt.tenants.get_key(key_id)
    who.check_tenant(key.tenant_id, missing_key(key_id))
    with rt.db.transaction():
        key = rt.tenants.revoke_key(key_id)
        rt.audit.append(actor=who.actor, action="apikey.revoke", subject=f"apikey:{key.id}",
                        outcome="success", tenant_id=key.tenant_id)
    return key.to_json()
