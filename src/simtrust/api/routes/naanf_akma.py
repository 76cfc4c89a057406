"""Naanf_AKMA (TS 29.535 §5, OpenAPI ``TS29535_Naanf_AKMA.yaml``): the AAnF's SBI operations.

- ``POST /naanf-akma/v1/register-anchorkey`` (AkmaKeyInfo → 200 AkmaKeyInfo): the
  AUSF stores K_AKMA under the A-KID (TS 33.535 §6.1).
- ``POST /naanf-akma/v1/retrieve-applicationkey`` (AkmaAfKeyRequest → 200
  AkmaAfKeyData): an AF obtains K_AF and its expiry (TS 33.535 §6.3); ``afId`` is the
  AF's FQDN, combined with the Ua* protocol id of TS 33.222 §5.3.
- ``POST /naanf-akma/v1/remove-context`` (CtxRemove → 204).

Key material travels as hex strings. Callers authenticate with an operator-admin key
(the role an NF's OAuth2 token maps to here); errors are TS 29.571 ProblemDetails.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.api.routes.nudm import problem_details
from simtrust.bootstrap import AkmaAnchor, NafId
from simtrust.errors import InvalidInput, NotFound, SimtrustError

__all__ = ["router"]

router = APIRouter(prefix="/naanf-akma/v1", tags=["naanf-akma"])

_SUPI = re.compile(r"imsi-[0-9]{5,15}|nai-.+")
_HEX64 = re.compile(r"[A-Fa-f0-9]{64}")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "ProblemDetails (INVALID_MSG_FORMAT, MANDATORY_IE_INCORRECT)"},
    401: {"description": "ProblemDetails (no or unknown credentials)"},
    403: {"description": "ProblemDetails (not an operator key)"},
    404: {"description": "ProblemDetails (CONTEXT_NOT_FOUND)"},
}


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", cause="INVALID_MSG_FORMAT")
    return body


def _field(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        raise InvalidInput(f"{name} is missing or malformed", cause="MANDATORY_IE_INCORRECT",
                           invalid_param=name)
    return value


@router.post("/register-anchorkey", operation_id="RegisterAKMAKey",
             summary="Store AKMA related key material", responses={
                 200: {"description": "AkmaKeyInfo"}, **_ERRORS})
async def register_anchorkey(request: Request, rt: CurrentRuntime,
                             who: CurrentPrincipal) -> JSONResponse:
    try:
        who.require_operator()
        body = await _json(request)
        supi = _field(body, "supi", _SUPI)
        a_kid = _field(body, "aKId")
        k_akma = bytes.fromhex(_field(body, "kAkma", _HEX64))
        gpsi = body.get("gpsi") if isinstance(body.get("gpsi"), str) else None
        await run_in_threadpool(rt.bootstrap.aanf.register, AkmaAnchor(supi, a_kid, k_akma),
                                gpsi=gpsi, actor=who.actor)
    except SimtrustError as exc:
        return problem_details(exc, request.url.path)
    return JSONResponse({"supi": supi, "aKId": a_kid, "kAkma": k_akma.hex()})


@router.post("/retrieve-applicationkey", operation_id="GetAKMAAPPKeyMaterial",
             summary="Retrieve the AKMA application key (K_AF)", responses={
                 200: {"description": "AkmaAfKeyData"}, **_ERRORS})
async def retrieve_applicationkey(request: Request, rt: CurrentRuntime,
                                  who: CurrentPrincipal) -> JSONResponse:
    try:
        who.require_operator()
        body = await _json(request)
        a_kid = _field(body, "aKId")
        af_id = _field(body, "afId")
        try:
            naf = NafId(af_id)
        except InvalidInput:
            raise InvalidInput("afId must be the AF's FQDN", cause="MANDATORY_IE_INCORRECT",
                               invalid_param="afId") from None
        key = await run_in_threadpool(rt.bootstrap.aanf.application_key, a_kid, naf)
    except SimtrustError as exc:
        return problem_details(exc, request.url.path)
    expiry = key.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return JSONResponse({"kaf": key.key.hex(), "expiry": expiry, "supi": f"imsi-{key.imsi}"})


@router.post("/remove-context", operation_id="RemoveContext", status_code=204,
             summary="Remove the AKMA context of a UE", responses={
                 204: {"description": "Removed"}, **_ERRORS})
async def remove_context(request: Request, rt: CurrentRuntime,
                         who: CurrentPrincipal) -> Response:
    try:
        who.require_operator()
        body = await _json(request)
        supi = _field(body, "supi", _SUPI)
        removed = await run_in_threadpool(rt.bootstrap.aanf.remove, supi, actor=who.actor)
    except SimtrustError as exc:
        return problem_details(exc, request.url.path)
    if not removed:
        return problem_details(NotFound("no AKMA context for this SUPI",
                                        cause="CONTEXT_NOT_FOUND"), request.url.path)
    return Response(status_code=204)
