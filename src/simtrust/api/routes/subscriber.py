"""Subscriber inventory, attach decisions, blocklist and AuC over HTTP.

SIM secrets (K, OP/OPc, TOP/TOPc) are accepted on provisioning and never
returned. Tenant keys see and change only their own tenant's objects; attach
decisions, EPS vectors, the global blocklist, home network keys and address
lookups are operator-admin operations (the network elements' role).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import INT64, INT64_MAX, CurrentPrincipal, CurrentRuntime, Id64
from simtrust.errors import InvalidInput, NotFound
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AttachPolicy,
    AuthMethod,
    BindingMode,
    Iccid,
    Imei,
    ImeiSv,
    Imsi,
    OpKind,
    Plmn,
    Roaming,
    SimSecrets,
    SimSpec,
    SimState,
    SubscriberServices,
    SwapAction,
    TuakParams,
    UnknownDevice,
    decision_history,
    missing_block,
    missing_sim,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["subscriber"])

_HEX128 = r"^[0-9A-Fa-f]{32}$"
_HEX256 = r"^[0-9A-Fa-f]{64}$"


def _services(rt: Runtime) -> SubscriberServices:
    return rt.subscriber


def _tenant_for_write(who: Any, tenant_id: str | None) -> str:
    """The tenant a write applies to: a tenant key's own, or the operator's choice."""
    who.require_admin()
    scoped = who.scope(tenant_id)
    if scoped is None:
        raise InvalidInput("tenant_id is required", field="tenant_id")
    return str(scoped)


def _visible_sim(services: SubscriberServices, who: Any, iccid: str) -> Any:
    sim = services.inventory.get_sim(Iccid(iccid))
    who.check_tenant(sim.tenant_id, missing_sim(sim.iccid))
    return sim


# -- attach decisions ----------------------------------------------------------------
# First in the module: routes are matched in the order they are declared, and network
# elements call this one on every attach (docs/decisions/api-attach-route.md).


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imsi: str
    imei: str = Field(description="IMEI (15 digits) or IMEISV (16 digits)")
    serving_plmn: str = Field(description="MCC+MNC, e.g. 00101 or 310-410")
    dry_run: bool = False


@router.post("/attach/decisions", summary="Decide an attach (operator-admin)",
             response_model=dict[str, Any])
async def attach_decision(body: AttachIn, rt: CurrentRuntime,
                          who: CurrentPrincipal) -> Response:
    # The decision blocks until its audit record is durable (group commit): it alone runs
    # on the thread pool. A plain endpoint would also have its answer checked against
    # ``response_model`` on the pool (a second hand-off); the answer is returned encoded
    # instead (``response_model`` still describes it in OpenAPI).
    who.require_operator()
    decision = await run_in_threadpool(
        _services(rt).attach.decide, body.imsi, body.imei, Plmn.parse(body.serving_plmn),
        actor=who.actor, dry_run=body.dry_run,
    )
    return JSONResponse(decision.to_json())


# -- SIMs ----------------------------------------------------------------------


class TuakIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keccak_iterations: int = Field(1, ge=1, le=255)
    mac_bits: int = Field(64, ge=0, le=256)
    res_bits: int = Field(64, ge=0, le=256)
    ck_bits: int = Field(128, ge=0, le=256)
    ik_bits: int = Field(128, ge=0, le=256)


class SimIn(BaseModel):
    """A SIM to provision: exactly one of ``opc``/``op`` (MILENAGE) or ``topc``/``top`` (TUAK)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    tenant_id: str | None = None
    iccid: str
    imsi: str
    mnc_length: Literal[2, 3] | None = None
    # Secrets: repr=False keeps them out of repr() and str() (pydantic prints both
    # from the same field list); hide_input_in_errors keeps them out of 422 bodies.
    k: str = Field(pattern=r"^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{64})$", description="K (secret)",
                   repr=False)
    opc: str | None = Field(None, pattern=_HEX128, repr=False)
    op: str | None = Field(None, pattern=_HEX128, repr=False)
    topc: str | None = Field(None, pattern=_HEX256, repr=False)
    top: str | None = Field(None, pattern=_HEX256, repr=False)
    amf: str = Field("8000", pattern=r"^[0-9A-Fa-f]{4}$")
    tuak: TuakIn | None = None
    state: SimState = SimState.INVENTORY
    group_id: Id64 | None = None
    apn: str | None = None
    static_ip: str | None = None
    binding_mode: BindingMode | None = None
    roaming: list[str] | None = None
    auth_method: AuthMethod = AuthMethod.FIVEG_AKA

    def secrets(self) -> SimSecrets:
        given = [(kind, value) for kind, value in (
            (OpKind.OPC, self.opc), (OpKind.OP, self.op),
            (OpKind.TOPC, self.topc), (OpKind.TOP, self.top),
        ) if value is not None]
        if len(given) != 1:
            raise InvalidInput("give exactly one of opc, op, topc, top", field="opc")
        kind, value = given[0]
        return SimSecrets(bytes.fromhex(self.k), bytes.fromhex(value), kind)


class SimPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group_id: Id64 | None = None
    apn: str | None = None
    static_ip: str | None = None
    binding_mode: BindingMode | None = None
    roaming: list[str] | None = None
    auth_method: AuthMethod | None = None
    clear: list[Literal["group_id", "apn", "static_ip", "binding_mode", "roaming"]] = []


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: SimState
    reason: str = Field("", max_length=200)


@router.get("/sims", summary="List SIMs (keyset pages by ICCID)")
def list_sims(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    tenant_id: str | None = None,
    state: SimState | None = None,
    after: str = "",
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    sims = _services(rt).inventory.list_sims(who.scope(tenant_id), state=state, after=after,
                                             limit=limit)
    return {
        "sims": [s.to_json() for s in sims],
        "next_after": sims[-1].iccid.value if len(sims) == limit else None,
    }


@router.post("/sims", status_code=status.HTTP_201_CREATED, summary="Provision one SIM")
def create_sim(body: SimIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _tenant_for_write(who, body.tenant_id)
    spec = SimSpec(
        iccid=Iccid(body.iccid),
        imsi=Imsi(body.imsi, body.mnc_length or 0),
        secrets=body.secrets(),
        amf=bytes.fromhex(body.amf),
        tuak=TuakParams(**body.tuak.model_dump()) if body.tuak else None,
        state=body.state,
        group_id=body.group_id,
        apn=body.apn,
        static_ip=body.static_ip,
        binding_mode=body.binding_mode,
        roaming=Roaming.parse(body.roaming) if body.roaming is not None else None,
        auth_method=body.auth_method,
    )
    return _services(rt).inventory.add_sim(tenant, spec, actor=who.actor,
                                           own_allocation=not who.is_operator).to_json()


@router.post("/sims/import", summary="Import a SIM-vendor CSV file (all-or-nothing)")
async def import_sims(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    tenant_id: str | None = None,
    body: str = Body(..., media_type="text/csv",
                     description="The vendor file; header names as in docs/subscriber.md"),
) -> dict[str, Any]:
    tenant = _tenant_for_write(who, tenant_id)
    importer = _services(rt).importer
    summary = await run_in_threadpool(
        importer.import_stream, io.StringIO(body, newline=""), tenant, actor=who.actor,
        name="upload.csv", own_allocation=not who.is_operator,
    )
    return summary.to_json()


@router.get("/sims/{iccid}", summary="Get one SIM (never its secrets)")
def get_sim(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    services = _services(rt)
    sim = _visible_sim(services, who, iccid)
    out: dict[str, Any] = sim.to_json()
    out["bindings"] = services.inventory.bindings(sim.iccid)
    out["address"] = services.addresses.address_of(sim.imsi.value)
    return out


@router.patch("/sims/{iccid}", summary="Change a SIM's attach settings")
def patch_sim(iccid: str, body: SimPatch, rt: CurrentRuntime,
              who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    services = _services(rt)
    sim = _visible_sim(services, who, iccid)
    return services.inventory.update_sim(
        sim.iccid, actor=who.actor, group_id=body.group_id, apn=body.apn,
        static_ip=body.static_ip, binding_mode=body.binding_mode,
        roaming=Roaming.parse(body.roaming) if body.roaming is not None else None,
        auth_method=body.auth_method, clear=body.clear, own_allocation=not who.is_operator,
    ).to_json()


@router.post("/sims/{iccid}/transition", summary="Move a SIM along its life cycle")
def transition_sim(iccid: str, body: TransitionIn, rt: CurrentRuntime,
                   who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    services = _services(rt)
    sim = _visible_sim(services, who, iccid)
    return services.inventory.transition(sim.iccid, body.state, actor=who.actor,
                                         reason=body.reason).to_json()


@router.get("/sims/{iccid}/decisions", summary="A SIM's attach decisions from the audit log")
def sim_decisions(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal,
                  since: datetime | None = None,
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    services = _services(rt)
    sim = _visible_sim(services, who, iccid)
    rows = decision_history(rt.audit, tenant_id=sim.tenant_id, iccid=sim.iccid.value,
                            since=since, limit=limit)
    return {"decisions": rows}


@router.delete("/sims/{iccid}/bindings", summary="Reset a SIM's IMEI bindings (re-learn)")
def reset_bindings(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    services = _services(rt)
    sim = _visible_sim(services, who, iccid)
    return {"released": services.inventory.clear_bindings(sim.iccid, actor=who.actor)}


# -- groups, devices, APNs, policy -----------------------------------------------


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = None
    name: str = Field(min_length=1, max_length=200)
    binding_mode: BindingMode | None = None
    swap_action: SwapAction | None = None
    roaming: list[str] | None = None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = None
    imei: str
    imeisv: str | None = None
    group_id: Id64 | None = None
    label: str = Field("", max_length=200)


class ApnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = None
    name: str
    pool: str | None = Field(None, description="CIDR block addresses are leased from")


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    binding_mode: BindingMode = BindingMode.NONE
    swap_action: SwapAction = SwapAction.DENY
    unknown_device: UnknownDevice = UnknownDevice.ALLOW
    roaming: list[str] = []
    webhook_url: str | None = None


@router.post("/device-groups", status_code=status.HTTP_201_CREATED,
             summary="Create a device group")
def create_group(body: GroupIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _tenant_for_write(who, body.tenant_id)
    return _services(rt).inventory.create_group(
        tenant, body.name, actor=who.actor, binding_mode=body.binding_mode,
        swap_action=body.swap_action,
        roaming=Roaming.parse(body.roaming) if body.roaming is not None else None,
    ).to_json()


@router.get("/device-groups", summary="List a tenant's device groups")
def list_groups(rt: CurrentRuntime, who: CurrentPrincipal,
                tenant_id: str | None = None) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    if scope is None:
        raise InvalidInput("tenant_id is required", field="tenant_id")
    return {"groups": [g.to_json() for g in _services(rt).inventory.list_groups(scope)]}


@router.post("/devices", status_code=status.HTTP_201_CREATED, summary="Register a device")
def create_device(body: DeviceIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _tenant_for_write(who, body.tenant_id)
    return _services(rt).inventory.add_device(
        tenant, Imei(body.imei), actor=who.actor,
        imeisv=ImeiSv(body.imeisv) if body.imeisv else None,
        group_id=body.group_id, label=body.label,
    ).to_json()


@router.get("/devices", summary="List a tenant's devices (keyset pages by IMEI)")
def list_devices(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                 after: str = "", limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    if scope is None:
        raise InvalidInput("tenant_id is required", field="tenant_id")
    devices = _services(rt).inventory.list_devices(scope, after=after, limit=limit)
    return {"devices": [d.to_json() for d in devices]}


@router.get("/devices/{imei}", summary="Get a device")
def get_device(imei: str, rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    """A device of the caller's tenant (devices are per tenant: an IMEI may be listed
    by several); the operator names the tenant or gets the first listing."""
    device = _services(rt).inventory.get_device(Imei(imei), who.scope(tenant_id))
    return device.to_json()


@router.post("/apns", status_code=status.HTTP_201_CREATED, summary="Create an APN")
def create_apn(body: ApnIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _tenant_for_write(who, body.tenant_id)
    return _services(rt).inventory.create_apn(tenant, body.name, actor=who.actor,
                                              pool=body.pool,
                                              own_allocation=not who.is_operator).to_json()


@router.get("/apns", summary="List a tenant's APNs")
def list_apns(rt: CurrentRuntime, who: CurrentPrincipal,
              tenant_id: str | None = None) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    if scope is None:
        raise InvalidInput("tenant_id is required", field="tenant_id")
    return {"apns": [a.to_json() for a in _services(rt).inventory.list_apns(scope)]}


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    iccid_prefixes: list[str] = Field(default_factory=list, max_length=256)
    imsi_prefixes: list[str] = Field(default_factory=list, max_length=256)


@router.get("/tenants/{tenant_id}/sim-allocation",
            summary="The ICCID and IMSI ranges a tenant may provision")
def get_allocation(tenant_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    rt.tenants.get_tenant(tenant_id)
    return _services(rt).inventory.allocations.get(tenant_id).to_json()


@router.put("/tenants/{tenant_id}/sim-allocation",
            summary="Set a tenant's ICCID and IMSI ranges (operator-admin)")
def put_allocation(tenant_id: str, body: AllocationIn, rt: CurrentRuntime,
                   who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    rt.tenants.get_tenant(tenant_id)
    return _services(rt).inventory.allocations.set(
        tenant_id, iccid_prefixes=body.iccid_prefixes, imsi_prefixes=body.imsi_prefixes,
        actor=who.actor,
    ).to_json()


class AddressAllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    networks: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=256,
        description="CIDR blocks (IPv4 or IPv6) for the tenant's static addresses and APN pools")


@router.get("/tenants/{tenant_id}/address-allocation",
            summary="The IP networks a tenant's static addresses and APN pools lie in")
def get_address_allocation(tenant_id: str, rt: CurrentRuntime,
                           who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    rt.tenants.get_tenant(tenant_id)
    return _services(rt).inventory.allocations.addresses(tenant_id).to_json()


@router.put("/tenants/{tenant_id}/address-allocation",
            summary="Set a tenant's IP networks (operator-admin)")
def put_address_allocation(tenant_id: str, body: AddressAllocationIn, rt: CurrentRuntime,
                           who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    rt.tenants.get_tenant(tenant_id)
    return _services(rt).inventory.allocations.set_addresses(
        tenant_id, networks=body.networks, actor=who.actor).to_json()


@router.get("/tenants/{tenant_id}/attach-policy", summary="A tenant's attach policy")
def get_policy(tenant_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    return _services(rt).inventory.policy(tenant_id).to_json()


@router.put("/tenants/{tenant_id}/attach-policy", summary="Set a tenant's attach policy")
def put_policy(tenant_id: str, body: PolicyIn, rt: CurrentRuntime,
               who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    who.check_tenant(tenant_id)
    policy = AttachPolicy(
        tenant_id=tenant_id, binding_mode=body.binding_mode, swap_action=body.swap_action,
        unknown_device=body.unknown_device, roaming=Roaming.parse(body.roaming),
        webhook_url=body.webhook_url,
    )
    return _services(rt).inventory.set_policy(policy, actor=who.actor).to_json()


# -- addresses -------------------------------------------------------------------------


@router.get("/addresses/{address}", summary="Which SIM holds an IP address (operator-admin)")
def lookup_address(address: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    imsi = _services(rt).addresses.lookup(address)
    if imsi is None:
        raise NotFound(f"no SIM holds {address}", address=address)
    return {"address": address, "imsi": imsi}


# -- blocklist -------------------------------------------------------------------------


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["imei", "tac"]
    value: str
    value_to: str | None = None
    reason: str = Field("blocked", max_length=200)
    tenant_id: str | None = Field(None, description="Omit for a global (CEIR) entry")


@router.get("/blocklist", summary="Blocklist entries (a tenant sees its own and global ones)")
def list_blocklist(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                   after_id: int = Query(0, ge=0, le=INT64_MAX, json_schema_extra=INT64),
                   limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    scope = who.scope(tenant_id)
    entries = _services(rt).blocklist.entries(scope, limit=limit, after_id=after_id)
    return {"entries": [e.to_json() for e in entries]}


def _block_tenant(who: Any, tenant_id: str | None) -> str | None:
    who.require_admin()
    if who.is_operator:
        return tenant_id
    return str(who.scope(tenant_id))


@router.post("/blocklist", status_code=status.HTTP_201_CREATED, summary="Block an IMEI or TACs")
def add_block(body: BlockIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _block_tenant(who, body.tenant_id)
    blocklist = _services(rt).blocklist
    if body.type == "imei":
        blocklist.add_imei(body.value, actor=who.actor, reason=body.reason, tenant_id=tenant,
                           source="api")
    else:
        blocklist.add_tac_range(body.value, body.value_to, actor=who.actor, reason=body.reason,
                                tenant_id=tenant, source="api")
    return {"added": 1}


@router.post("/blocklist/import", summary="Import a blocklist CSV (all-or-nothing)")
def import_block(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                 body: str = Body(..., media_type="text/csv")) -> dict[str, Any]:
    tenant = _block_tenant(who, tenant_id)
    added = _services(rt).blocklist.import_csv(body, actor=who.actor, tenant_id=tenant,
                                               source="api-import")
    return {"added": added}


@router.delete("/blocklist/{entry_id}", summary="Remove a blocklist entry")
def remove_block(entry_id: Annotated[int, Path(ge=1, le=INT64_MAX, json_schema_extra=INT64)],
                 rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    blocklist = _services(rt).blocklist
    who.require_admin()
    entry = blocklist.get(entry_id)
    if entry.tenant_id is None:
        who.require_operator()
    else:
        who.check_tenant(entry.tenant_id, missing_block(entry_id))
    blocklist.remove(entry_id, actor=who.actor)
    return {"removed": entry_id}


# -- AuC and home network keys ------------------------------------------------------------


class EpsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imsi: str
    serving_plmn: str
    count: int = Field(1, ge=1, le=5)


@router.post("/auc/eps-vectors", summary="EPS-AKA vectors for an MME/HSS (operator-admin)")
def eps_vectors(body: EpsIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    vectors = _services(rt).auth.eps_vectors(
        Imsi(body.imsi), Plmn.parse(body.serving_plmn), body.count, actor=who.actor
    )
    return {"vectors": [
        {"rand": v.rand.hex(), "xres": v.xres.hex(), "autn": v.autn.hex(), "kasme": v.kasme.hex()}
        for v in vectors
    ]}


class HnKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: int = Field(ge=1, le=255)
    profile: Literal["A", "B"]


@router.get("/home-network-keys", summary="SUCI home network public keys (operator-admin)")
def list_hn_keys(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return {"keys": [k.to_json() for k in _services(rt).hn_keys.list()]}


@router.post("/home-network-keys", status_code=status.HTTP_201_CREATED,
             summary="Generate a SUCI home network key pair (operator-admin)")
def create_hn_key(body: HnKeyIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    return _services(rt).hn_keys.generate(body.key_id, body.profile, actor=who.actor).to_json()
