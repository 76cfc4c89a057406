"""LwM2M device management: registrations, Read/Write/Execute on registered devices
(OMA LwM2M Core V1_1_1 §6.3), Read-Composite and Write-Composite (LwM2M 1.2, SenML only),
per-device bootstrap PSKs and the servers' counters.

Operations reach the device over the running management server (``simtrust serve``
with ``SIMTRUST_LWM2M_BIND``); a tenant key sees only its tenant's devices, another
tenant's device answers like a missing one.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Principal
from simtrust.api.problems import problem_responses
from simtrust.devices import (
    CF_SENML_CBOR,
    CF_SENML_JSON,
    CF_TEXT,
    CF_TLV,
    ObjLink,
    Path,
    Registration,
    Value,
    format_path,
    parse_path,
    read_composite,
    write_composite,
)
from simtrust.domain import Iccid, Imsi
from simtrust.errors import InvalidInput, NotFound
from simtrust.subscriber import missing_sim

__all__ = ["router"]

router = APIRouter(prefix="/v1/lwm2m", tags=["lwm2m"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key",
    404: "No such registered device or SIM",
    409: "The LwM2M servers are not running",
    502: "The device answered with an error or not at all",
})
FORMATS = {"senml-json": CF_SENML_JSON, "senml-cbor": CF_SENML_CBOR, "tlv": CF_TLV,
           "text": CF_TEXT}
Format = Literal["senml-json", "senml-cbor", "tlv", "text"]
PathText = Field(pattern=r"^(/[0-9]{1,5}){1,4}$", description="LwM2M path, e.g. /3/0/1")


def value_json(value: Value) -> Any:
    """JSON form of a resource value: opaque as ``{"opaque": base64}``, links as
    ``{"objlnk": "3:0"}``."""
    if isinstance(value, bytes):
        return {"opaque": base64.b64encode(value).decode("ascii")}
    if isinstance(value, ObjLink):
        return {"objlnk": str(value)}
    return value


def value_in(raw: Any) -> Value:
    if isinstance(raw, bool | int | float | str):
        return raw
    if isinstance(raw, dict) and set(raw) == {"opaque"} and isinstance(raw["opaque"], str):
        try:
            return base64.b64decode(raw["opaque"], validate=True)
        except ValueError as exc:
            raise InvalidInput("opaque values are base64", field="values") from exc
    raise InvalidInput("a value is a number, string, boolean or {\"opaque\": base64}",
                       field="values")


def lwm2m_path(text: str) -> Path:
    try:
        return parse_path(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="path") from exc


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = PathText
    format: Format = "senml-cbor"


class WriteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = PathText
    values: dict[str, Any] = Field(min_length=1, max_length=256,
                                   description="LwM2M path → value below ``path``")
    format: Format = "senml-cbor"
    replace: bool = Field(True, description="PUT (replace) or POST (partial update)")


SenmlFormat = Literal["senml-json", "senml-cbor"]


class CompositeReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(min_length=1, max_length=64,
                             description="LwM2M paths of any objects, e.g. /3/0/3, /4/0")
    format: SenmlFormat = "senml-cbor"


class CompositeWriteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any] = Field(min_length=1, max_length=64,
                                   description="resource path → value, any objects")
    format: SenmlFormat = "senml-cbor"


class ExecuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = PathText
    args: str = Field("", max_length=255)


class PskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imsi: str = Field(pattern=r"^[0-9]{6,15}$")


def _registration(rt: Any, who: Principal, iccid: str) -> Registration:
    """The SIM's registration; another tenant's SIM answers like an unknown one (the
    inventory's own error) before the servers are asked."""
    key = Iccid(iccid)
    try:
        sim = rt.subscriber.inventory.get_sim(key)
    except NotFound as exc:
        raise exc from None
    who.check_tenant(sim.tenant_id, missing_sim(key))
    imsi = sim.imsi.value
    reg: Registration = rt.devices.run_sync(lambda: rt.devices.manager.get_by_imsi(imsi))
    return reg


@router.get("/devices", responses=_ERRORS, summary="Registered devices")
def list_devices(rt: CurrentRuntime, who: CurrentPrincipal,
                 tenant_id: str | None = None) -> list[dict[str, Any]]:
    scope = who.scope(tenant_id)
    regs = rt.devices.run_sync(lambda: rt.devices.manager.registrations(scope))
    return [r.to_json() for r in regs]


@router.get("/stats", responses=_ERRORS, summary="Counters of the LwM2M servers")
def stats(rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    dev = rt.devices
    return {"registered": len(dev.manager), "dm": dev.manager.endpoint.counters.as_dict(),
            "bootstrap": dev.bootstrap.endpoint.counters.as_dict(),
            "refused": dict(dev.manager.refused), "bootstrap_refused": dict(dev.bootstrap.refused),
            "queued": dev.manager.queued()}


@router.get("/devices/{iccid}", responses=_ERRORS, summary="The registration of a SIM's device")
def get_device(iccid: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return _registration(rt, who, iccid).to_json()


@router.post("/devices/{iccid}/read", responses=_ERRORS, summary="Read (Core §6.3.1)")
def read(iccid: str, body: ReadIn, rt: CurrentRuntime,
         who: CurrentPrincipal) -> dict[str, Any]:
    endpoint = _registration(rt, who, iccid).endpoint
    values = rt.devices.call(rt.devices.manager.read(endpoint, lwm2m_path(body.path),
                                                     fmt=FORMATS[body.format]))
    return {"endpoint": endpoint,
            "values": {format_path(p): value_json(v) for p, v in sorted(values.items())}}


@router.post("/devices/{iccid}/write", responses=_ERRORS, summary="Write (Core §6.3.3)")
def write(iccid: str, body: WriteIn, rt: CurrentRuntime,
          who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    endpoint = _registration(rt, who, iccid).endpoint
    base = lwm2m_path(body.path)
    values = {lwm2m_path(k): value_in(v) for k, v in body.values.items()}
    if any(p[:len(base)] != base for p in values):
        raise InvalidInput("every written path lies below the request path", field="values")
    rt.devices.call(rt.devices.manager.write(endpoint, base, values, fmt=FORMATS[body.format],
                                             replace=body.replace))
    return {"endpoint": endpoint, "written": sorted(format_path(p) for p in values)}


@router.post("/devices/{iccid}/read-composite", responses=_ERRORS,
             summary="Read-Composite: several paths of any objects in one FETCH (LwM2M 1.2)")
def read_many(iccid: str, body: CompositeReadIn, rt: CurrentRuntime,
              who: CurrentPrincipal) -> dict[str, Any]:
    endpoint = _registration(rt, who, iccid).endpoint
    paths = [lwm2m_path(p) for p in body.paths]
    values = rt.devices.call(read_composite(rt.devices.manager, endpoint, paths,
                                            fmt=FORMATS[body.format]))
    return {"endpoint": endpoint,
            "values": {format_path(p): value_json(v) for p, v in sorted(values.items())}}


@router.post("/devices/{iccid}/write-composite", responses=_ERRORS,
             summary="Write-Composite: resources of several objects in one iPATCH (LwM2M 1.2)")
def write_many(iccid: str, body: CompositeWriteIn, rt: CurrentRuntime,
               who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    endpoint = _registration(rt, who, iccid).endpoint
    values = {lwm2m_path(k): value_in(v) for k, v in body.values.items()}
    rt.devices.call(write_composite(rt.devices.manager, endpoint, values,
                                    fmt=FORMATS[body.format]))
    return {"endpoint": endpoint, "written": sorted(format_path(p) for p in values)}


@router.post("/devices/{iccid}/execute", responses=_ERRORS, summary="Execute (Core §6.3.5)")
def execute(iccid: str, body: ExecuteIn, rt: CurrentRuntime,
            who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    endpoint = _registration(rt, who, iccid).endpoint
    path = lwm2m_path(body.path)
    if len(path) != 3:
        raise InvalidInput("execute names a resource /O/I/R", field="path")
    rt.devices.call(rt.devices.manager.execute(endpoint, path, body.args))
    return {"endpoint": endpoint, "executed": body.path}


@router.post("/bootstrap-psks", status_code=status.HTTP_201_CREATED, responses=_ERRORS,
             summary="A per-device bootstrap PSK for a SIM without GBA (shown once)")
def bootstrap_psk(body: PskIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    missing = NotFound("unknown SIM", reason="unknown-sim")
    sim = rt.subscriber.inventory.find_sim(Imsi(body.imsi))
    if sim is None:
        raise missing
    who.check_tenant(sim.tenant_id, missing)
    identity, key = rt.devices.issue_bootstrap_psk(sim.imsi.value, sim.tenant_id)
    return {"imsi": sim.imsi.value, "identity": identity, "key_hex": key.hex(),
            "bootstrap_uri": f"coaps://{rt.settings.lwm2m_public_host}:{rt.devices.bs_port}"}
