"""Firmware-update campaigns (OMA LwM2M Core V1_1_1 §E.6, pull by Package URI or the
package pushed to /5/0/0 block-wise, RFC 7959): staged by
device group with a failure threshold that halts the rollout; configuration pushed to a
group. Campaigns run on the management server's loop; their status is polled.

Packages larger than the API's body limit are uploaded first: ``POST /v1/fota/packages``
streams the raw body (``application/octet-stream``) to disk under its own limit
(``SIMTRUST_FIRMWARE_MAX_BYTES``), stores it by SHA-256 and answers its digest, which a
campaign names as ``package_digest`` (``devices/_packages.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Id64
from simtrust.api.problems import problem_responses
from simtrust.api.routes.devices import PathText, lwm2m_path, value_in
from simtrust.devices import CF_SENML_CBOR, Campaign, StoredPackage, parse_package_digest
from simtrust.errors import InvalidInput, NotFound

__all__ = ["router"]

router = APIRouter(prefix="/v1/fota", tags=["fota"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key",
    404: "No such campaign, group, device or package",
    409: "The LwM2M servers are not running",
    413: "Package over the firmware size limit",
    422: "Request body or query does not validate",
})


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = Field(None, description="Defaults to the key's tenant")
    package_uri: str = Field("", max_length=255,
                             description="coap(s):// or http(s):// URI the devices pull")
    package_base64: str | None = Field(
        None, description="Or the package itself (base64), pushed to /5/0/0 block-wise; "
        "bounded by the request body limit")
    package_digest: str | None = Field(
        None, max_length=71, description="Or an uploaded package (sha256:<hex> from "
        "POST /v1/fota/packages), pushed to /5/0/0 block-wise")
    version: str = Field(min_length=1, max_length=64, description="Expected /3/0/3 after")
    groups: list[Id64] = Field(min_length=1, max_length=64,
                              description="Device groups, one stage each, in order")
    failure_threshold: float = Field(0.2, ge=0.0, le=1.0)


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = None
    group_id: Id64
    path: str = PathText
    values: dict[str, Any] = Field(min_length=1, max_length=256)


def _tenant(who: Any, requested: str | None) -> str:
    tenant = requested if requested is not None else who.tenant_id
    if tenant is None:
        raise InvalidInput("name the tenant_id", field="tenant_id")
    who.check_tenant(tenant)
    return str(tenant)


def _visible(rt: Any, who: Any, campaign_id: str) -> Campaign:
    missing = NotFound("unknown campaign", reason="unknown-campaign")
    campaign: Campaign | None = rt.devices.campaigns.campaigns.get(campaign_id)
    if campaign is None:
        raise missing
    who.check_tenant(campaign.tenant_id, missing)
    return campaign


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, responses=_ERRORS,
             summary="Create and start a staged firmware campaign")
def create_campaign(body: CampaignIn, rt: CurrentRuntime,
                    who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, body.tenant_id)
    dev = rt.devices

    package: bytes | StoredPackage | None = None
    if sum(x is not None for x in (body.package_base64, body.package_digest)) \
            + bool(body.package_uri) > 1:
        raise InvalidInput("give one of package_uri, package_base64, package_digest",
                           field="package_base64")
    if body.package_digest is not None:
        package = rt.firmware.open(tenant, body.package_digest)  # read by block when sent
    if body.package_base64 is not None:
        try:
            package = base64.b64decode(body.package_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("package_base64 is not base64", field="package_base64") from None

    async def start() -> Campaign:
        campaign = dev.campaigns.create(tenant, body.package_uri, body.version,
                                        groups=body.groups,
                                        failure_threshold=body.failure_threshold,
                                        package=package)
        task = asyncio.get_running_loop().create_task(dev.campaigns.run(campaign.campaign_id))
        dev.keep(task)
        return campaign

    return dev.call(start()).to_json()


@router.get("/campaigns", responses=_ERRORS, summary="Campaigns")
def list_campaigns(rt: CurrentRuntime, who: CurrentPrincipal,
                   tenant_id: str | None = None) -> list[dict[str, Any]]:
    scope = who.scope(tenant_id)
    return [c.to_json() for c in rt.devices.campaigns.campaigns.values()
            if scope is None or c.tenant_id == scope]


@router.get("/campaigns/{campaign_id}", responses=_ERRORS, summary="One campaign")
def get_campaign(campaign_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return _visible(rt, who, campaign_id).to_json()


@router.post("/config", responses=_ERRORS, summary="Write a configuration to a device group")
def push_config(body: ConfigIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, body.tenant_id)
    base = lwm2m_path(body.path)
    values = {lwm2m_path(k): value_in(v) for k, v in body.values.items()}
    if any(p[:len(base)] != base for p in values):
        raise InvalidInput("every written path lies below the request path", field="values")
    results = rt.devices.call(rt.devices.campaigns.configure_group(
        tenant, body.group_id, base, values, replace=False))
    return {"group_id": body.group_id, "results": results, "format": CF_SENML_CBOR}


_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/packages", status_code=status.HTTP_201_CREATED, responses=_ERRORS,
             openapi_extra=_UPLOAD_BODY,
             summary="Upload a firmware package (raw body, streamed; stored by SHA-256)")
async def upload_package(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                         tenant_id: str | None = None,
                         sha256: str | None = None) -> dict[str, Any]:
    """The body is the package itself; ``sha256`` (hex or ``sha256:<hex>``), when given,
    must be its digest. Answered once the package is on disk (fsynced)."""
    who.require_admin()
    tenant = _tenant(who, tenant_id)
    expected = parse_package_digest(sha256) if sha256 is not None else None
    upload = await run_in_threadpool(rt.firmware.begin, tenant)
    try:
        async for chunk in request.stream():
            upload.write(chunk)
    except ClientDisconnect:
        upload.abort()
        raise InvalidInput("the upload ended early", field="body") from None
    except BaseException:
        upload.abort()
        raise
    return (await run_in_threadpool(upload.commit, expected)).to_json()


@router.get("/packages", responses=_ERRORS, summary="A tenant's uploaded packages")
def list_packages(rt: CurrentRuntime, who: CurrentPrincipal,
                  tenant_id: str | None = None) -> dict[str, Any]:
    tenant = _tenant(who, who.scope(tenant_id))
    return {"packages": [p.to_json() for p in rt.firmware.packages(tenant)]}


@router.delete("/packages/{digest}", responses=_ERRORS, summary="Delete an uploaded package")
def delete_package(digest: str, rt: CurrentRuntime, who: CurrentPrincipal,
                   tenant_id: str | None = None) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, tenant_id)
    rt.firmware.delete(tenant, digest)
    return {"deleted": f"sha256:{parse_package_digest(digest)}"}
