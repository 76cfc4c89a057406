"""Streams over HTTP: channels, signed frames, anchoring, provenance, scores and meters.

Frames travel as base64 of the exact bytes the author signed (docs/streams.md
"Frame"); the server checks signature and chain, stores an accepted frame
durably before it answers 201, and answers a frame that does not extend the
channel with a problem naming the verdict (400 malformed or forged, 409 replay
or fork). A tenant key sees its own tenant's channels, data and meters only;
anything else answers like something missing. Writes need an admin key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from simtrust.api.deps import (
    INT64,
    INT64_MAX,
    CurrentPrincipal,
    CurrentRuntime,
    Id64,
    Principal,
)
from simtrust.errors import InvalidInput, NotFound
from simtrust.streams import ANNOTATION_KINDS, MAX_FRAME

__all__ = ["router"]

router = APIRouter(tags=["streams"])

_FRAME_B64 = (MAX_FRAME + 2) // 3 * 4
_HEX64 = "^[0-9a-fA-F]{64}$"


class ChannelBody(BaseModel):
    announce: str = Field(..., max_length=_FRAME_B64,
                          description="Base64 of the author's signed announce frame")
    label: str = Field("", max_length=200)
    private: bool = Field(False, description="Payloads are encrypted for subscribers (keyloads)")
    tenant_id: str | None = Field(None, max_length=64,
                                  description="Owner tenant (operator keys only)")


class FrameBody(BaseModel):
    frame: str = Field(..., max_length=_FRAME_B64, description="Base64 of one signed frame")


class PolicyBody(BaseModel):
    weights: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        ..., description=f"Weight per kind of {ANNOTATION_KINDS}")
    tenant_id: str | None = Field(None, max_length=64)


class DerivedBody(BaseModel):
    inputs: list[str] = Field(..., min_length=1, max_length=10_000)
    label: str = Field(..., min_length=1, max_length=200)


class MeterBody(BaseModel):
    channel: str = Field(..., pattern=_HEX64, description="The meter's channel id (hex)")
    credential: dict[str, Any] = Field(
        ..., description="DeviceCertificate VC: subject id the SIM's DID, meter, iccid, imei")
    tenant_id: str | None = Field(None, max_length=64)


def _bytes(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not base64") from exc


def _owner(who: Principal, requested: str | None) -> str:
    who.require_admin()
    tenant = who.scope(requested)
    if tenant is None:
        raise InvalidInput("tenant_id is required with an operator key", field="tenant_id")
    return tenant


def _channel(rt: Any, who: Principal, channel_id: str) -> str:
    missing = NotFound(f"no channel {channel_id}")
    if len(channel_id) != 64 or any(c not in "0123456789abcdefABCDEF" for c in channel_id):
        raise InvalidInput("a channel id is 64 hex digits", field="channel_id")
    try:
        tenant = rt.streams.tenant_of(channel_id)
    except NotFound:
        raise missing from None
    who.check_tenant(tenant, missing)
    return channel_id.lower()


@router.post("/v1/streams/channels", status_code=201, summary="Register a channel from its "
             "author's signed announce")
def open_channel(body: ChannelBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _owner(who, body.tenant_id)
    rt.tenants.get_tenant(tenant)
    return rt.streams.open_channel(tenant, _bytes(body.announce, "announce"), label=body.label,
                                   private=body.private, actor=who.actor)


@router.get("/v1/streams/channels", summary="List channels (a tenant sees its own)")
def list_channels(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    return {"channels": rt.streams.channels(who.scope(tenant_id), limit)}


@router.get("/v1/streams/channels/{channel_id}", summary="One channel, with rejected counts")
def get_channel(channel_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return rt.streams.channel(_channel(rt, who, channel_id))


@router.post("/v1/streams/channels/{channel_id}/messages", status_code=201,
             summary="Publish one signed frame: verified, stored durably, annotated, scored")
def publish(channel_id: str, body: FrameBody, request: Request, rt: CurrentRuntime,
            who: CurrentPrincipal) -> dict[str, Any]:
    channel = _channel(rt, who, channel_id)
    who.require_admin()
    source = request.client.host if request.client is not None else None
    return rt.streams.publish(channel, _bytes(body.frame, "frame"), source=source,
                              actor=who.actor)


@router.get("/v1/streams/channels/{channel_id}/messages",
            summary="Stored frames in arrival order, as signed (verify them with a reader)")
def read_messages(channel_id: str, rt: CurrentRuntime, who: CurrentPrincipal,
                  after: int = Query(-1, ge=-1, le=INT64_MAX, json_schema_extra=INT64),
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    channel = _channel(rt, who, channel_id)
    return {"messages": rt.streams.messages(channel, after=after, limit=limit)}


@router.post("/v1/streams/channels/{channel_id}/anchor",
             summary="Anchor the frames not anchored yet as one Merkle root on the ledger")
def anchor(channel_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    channel = _channel(rt, who, channel_id)
    who.require_admin()
    return rt.streams.anchor(channel, actor=who.actor)


@router.get("/v1/streams/messages/{message_id}",
            summary="One stored frame with its inclusion proof once anchored")
def get_message(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    found = rt.streams.message(message_id)
    who.check_tenant(found["tenant_id"], NotFound(f"no message {message_id}"))
    return found


@router.get("/v1/streams/messages/{message_id}/ledger-proof",
            summary="Prove a meter reading from the ledger: signature, anchored root, SIM key")
def ledger_proof(message_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    found = rt.streams.message(message_id)
    who.check_tenant(found["tenant_id"], NotFound(f"no message {message_id}"))
    result: dict[str, Any] = rt.prove_reading(message_id)
    return result


@router.get("/v1/streams/policy", summary="The tenant's confidence weights")
def get_policy(rt: CurrentRuntime, who: CurrentPrincipal,
               tenant_id: str | None = None) -> dict[str, Any]:
    tenant = who.scope(tenant_id)
    return {"tenant_id": tenant, "weights": dict(rt.streams.policy(tenant).weights)}


@router.put("/v1/streams/policy", summary="Set the tenant's confidence weights")
def put_policy(body: PolicyBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    tenant = _owner(who, body.tenant_id)
    policy = rt.streams.set_policy(tenant, body.weights, actor=who.actor)
    return {"tenant_id": tenant, "weights": dict(policy.weights)}


@router.get("/v1/provenance/{datum_id}",
            summary="A datum's provenance graph: annotations, proofs, frames and scores")
def provenance(datum_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    missing = NotFound(f"no datum {datum_id}")
    try:
        tenant = rt.streams.datum_tenant(datum_id)
    except NotFound:
        raise missing from None
    who.check_tenant(tenant, missing)
    return rt.streams.provenance(datum_id)


@router.post("/v1/provenance/derived", status_code=201,
             summary="Record a datum derived from others (scored by its weakest input)")
def derive(body: DerivedBody, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    tenant = who.tenant_id if not who.is_operator else None
    if who.is_operator:
        tenant = rt.streams.datum_tenant(body.inputs[0])
    return rt.streams.derive(tenant, body.inputs, label=body.label, actor=who.actor)


@router.post("/v1/meters", status_code=201,
             summary="Register a meter by its device certificate (rooted in its SIM's DID)")
def register_meter(body: MeterBody, rt: CurrentRuntime, who: CurrentPrincipal
                   ) -> dict[str, Any]:
    tenant = _owner(who, body.tenant_id)
    channel = _channel(rt, who, body.channel)
    return rt.streams.register_meter(tenant, channel, body.credential, actor=who.actor)


@router.get("/v1/meters", summary="List meters (a tenant sees its own)")
def list_meters(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    return {"meters": rt.streams.meters(who.scope(tenant_id), limit)}


def _meter(rt: Any, who: Principal, meter: str) -> dict[str, Any]:
    missing = NotFound(f"no meter {meter}")
    try:
        found: dict[str, Any] = rt.streams.meter(meter)
    except NotFound:
        raise missing from None
    who.check_tenant(found["tenant_id"], missing)
    return found


@router.get("/v1/meters/{meter}", summary="One meter: binding, last register, open alerts")
def get_meter(meter: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    return _meter(rt, who, meter)


@router.post("/v1/meters/{meter}/verify",
             summary="Verify the meter's device certificate now (revoked: its readings stop)")
def verify_meter(meter: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    _meter(rt, who, meter)
    who.require_admin()
    result: dict[str, Any] = rt.streams.verify_meter(meter, actor=who.actor)
    return result


@router.get("/v1/meters/{meter}/alerts", summary="Every alert of a meter (open and closed)")
def meter_alerts(meter: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    _meter(rt, who, meter)
    return {"alerts": rt.streams.alerts(meter=meter)}


@router.post("/v1/streams/alerts/{alert_id}/close",
             summary="Close an alert after investigation (later data can be clean again)")
def close_alert(alert_id: Id64, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    missing = NotFound(f"no alert {alert_id}")
    try:
        tenant = rt.streams.alert_tenant(alert_id)
    except NotFound:
        raise missing from None
    who.check_tenant(tenant, missing)
    who.require_admin()
    return rt.streams.close_alert(alert_id, actor=who.actor)
