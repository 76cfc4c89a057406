"""RADIUS AAA over HTTP: gateway clients, APN access settings and users, a SIM's
accounting sessions, and Disconnect/CoA on an operator's request (RFC 5176).

Gateway clients and the server's counters are operator-admin operations; a
tenant key sees its own SIMs' sessions and manages its own APNs' users.
Secrets and passwords are accepted and never returned.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from simtrust.aaa import AUTH_METHODS, DEFAULT_COA_PORT
from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import problem_responses
from simtrust.errors import InvalidInput
from simtrust.subscriber import Iccid, missing_sim

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["radius"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key",
    404: "No such client, APN, user or SIM",
    409: "Already exists",
    422: "Request body or query does not validate",
})


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cidr: str = Field(max_length=64)
    secret: str = Field(min_length=1, max_length=128, repr=False)
    coa_port: int = Field(DEFAULT_COA_PORT, ge=1, le=65535)
    name: str = Field("", max_length=100)

    def __str__(self) -> str:
        return f"ClientIn(cidr={self.cidr!r}, name={self.name!r})"


class AccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth: str | None = Field(None, description=f"One of {', '.join(AUTH_METHODS)}.")
    session_timeout: int | None = Field(None, ge=1, le=2**31 - 1)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    username: str = Field(min_length=1, max_length=253)
    password: str = Field(min_length=1, max_length=128, repr=False)

    def __str__(self) -> str:
        return f"UserIn(username={self.username!r})"


class CoaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_timeout: int | None = Field(None, ge=1, le=2**31 - 1)
    filter_id: str | None = Field(None, max_length=253)
    reason: str = Field("operator", max_length=200)


class DisconnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("operator", max_length=200)


def _tenant(who: Any, tenant_id: str | None) -> str:
    scoped = who.scope(tenant_id)
    if scoped is None:
        raise InvalidInput("tenant_id is required", field="tenant_id")
    return str(scoped)


def _sim(rt: Any, who: Any, iccid: str) -> Any:
    sim = rt.subscriber.inventory.get_sim(Iccid(iccid))
    who.check_tenant(sim.tenant_id, missing_sim(sim.iccid))
    return sim


@router.get("/radius/clients", responses=_ERRORS, summary="RADIUS gateway clients (operator-admin)")
def list_clients(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return {"clients": [c.to_json() for c in rt.aaa.clients.list()]}


@router.post("/radius/clients", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Register a gateway (CIDR + shared secret, sealed at rest)")
def add_client(body: ClientIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return rt.aaa.clients.add(body.cidr, body.secret, actor=who.actor, name=body.name,
                              coa_port=body.coa_port).to_json()


@router.delete("/radius/clients/{ref:path}", responses=_ERRORS,
               summary="Remove a gateway (by id or CIDR)")
def remove_client(ref: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return {"removed": rt.aaa.clients.remove(ref, actor=who.actor).to_json()}


@router.get("/radius/stats", responses=_ERRORS,
            summary="RADIUS server counters, drops included (operator-admin)")
def stats(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    storm = rt.aaa.server.storm
    return {"counters": dict(rt.aaa.server.counters),
            "storm": storm.stats() if storm is not None else None,
            "accounting": {"committed": rt.aaa.accounting.committed,
                           "batches": rt.aaa.accounting.batches,
                           "failures": rt.aaa.accounting.failures}}


@router.get("/apns/{name}/access", responses=_ERRORS, summary="An APN's RADIUS access settings")
def get_access(name: str, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    tenant = _tenant(who, tenant_id)
    rt.subscriber.inventory.get_apn(tenant, name)
    return rt.aaa.apns.access(tenant, name).to_json()


@router.put("/apns/{name}/access", responses=_ERRORS,
            summary="Set an APN's second-level auth and Session-Timeout")
def put_access(name: str, body: AccessIn, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, tenant_id)
    rt.subscriber.inventory.get_apn(tenant, name)
    return rt.aaa.apns.set_access(tenant, name, actor=who.actor, auth=body.auth,
                                  session_timeout=body.session_timeout).to_json()


@router.get("/apns/{name}/users", responses=_ERRORS, summary="An APN's second-level user names")
def list_users(name: str, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    tenant = _tenant(who, tenant_id)
    rt.subscriber.inventory.get_apn(tenant, name)
    return {"users": rt.aaa.apns.users(tenant, name)}


@router.post("/apns/{name}/users", responses=_ERRORS, status_code=status.HTTP_201_CREATED,
             summary="Add a second-level user (password sealed at rest)")
def add_user(name: str, body: UserIn, rt: CurrentRuntime, who: CurrentPrincipal,
             tenant_id: str | None = None) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, tenant_id)
    rt.subscriber.inventory.get_apn(tenant, name)
    rt.aaa.apns.add_user(tenant, name, body.username, body.password, actor=who.actor)
    return {"tenant_id": tenant, "apn": name, "username": body.username}


@router.delete("/apns/{name}/users/{username}", responses=_ERRORS,
               summary="Remove a second-level user")
def remove_user(name: str, username: str, rt: CurrentRuntime, who: CurrentPrincipal,
                tenant_id: str | None = None) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, tenant_id)
    rt.aaa.apns.remove_user(tenant, name, username, actor=who.actor)
    return {"removed": username}


@router.get("/sims/{iccid}/sessions", responses=_ERRORS,
            summary="A SIM's RADIUS accounting sessions, newest first")
def sim_sessions(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal,
                 status_filter: str | None = Query(None, alias="status",
                                                   pattern="^(open|closed)$"),
                 limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    sim = _sim(rt, who, iccid)
    found = rt.aaa.accounting.sessions_of(sim.iccid.value, limit=limit, status=status_filter)
    return {"iccid": sim.iccid.value, "sessions": [s.to_json() for s in found]}


@router.post("/sims/{iccid}/disconnect", responses=_ERRORS,
             summary="Disconnect-Request to the gateway for each open session (RFC 5176)")
async def disconnect(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal,
                     body: DisconnectIn | None = None) -> dict[str, Any]:
    who.require_admin()
    sim = _sim(rt, who, iccid)
    reason = body.reason if body is not None else "operator"
    results = await run_in_threadpool(rt.aaa.disconnect_sim, sim.imsi.value, actor=who.actor,
                                      reason=reason)
    return {"results": [r.to_json() for r in results]}


@router.post("/sims/{iccid}/coa", responses=_ERRORS,
             summary="CoA-Request (Session-Timeout, Filter-Id) for each open session")
async def change(iccid: str, body: CoaIn, rt: CurrentRuntime,
                 who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    if body.session_timeout is None and body.filter_id is None:
        raise InvalidInput("give session_timeout and/or filter_id", field="session_timeout")
    sim = _sim(rt, who, iccid)
    results = await run_in_threadpool(rt.aaa.change_sim, sim.imsi.value, actor=who.actor,
                                      reason=body.reason, session_timeout=body.session_timeout,
                                      filter_id=body.filter_id)
    return {"results": [r.to_json() for r in results]}
