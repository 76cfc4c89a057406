"""Nudm_UEAuthentication ``generate-auth-data`` (TS 29.503 §6.3, OpenAPI Annex A.4).

``POST /nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data``
takes an ``AuthenticationInfoRequest`` and answers an
``AuthenticationInfoResult`` (200), so a 5G core's AUSF can use simtrust as
its UDM/ARPF. Errors are ``application/problem+json`` ProblemDetails of
TS 29.571 §5.2.4.1 with the application error ``cause`` and, for bad
parameters, ``invalidParams``. Callers authenticate with an operator-admin key
(``Authorization: Bearer``), the role an AUSF's OAuth2 token maps to here.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.api.problems import PROBLEM_BASE
from simtrust.errors import InvalidInput, SimtrustError

__all__ = ["router"]

router = APIRouter(prefix="/nudm-ueau/v1", tags=["nudm-ueau"])

_DEFAULT_CAUSE = {400: "INVALID_MSG_FORMAT", 403: "AUTHENTICATION_REJECTED",
                  404: "USER_NOT_FOUND", 409: "CONTEXT_NOT_FOUND", 501: "NOT_IMPLEMENTED"}


class ResynchronizationInfo(BaseModel):
    rand: str = Field(pattern=r"^[A-Fa-f0-9]{32}$")
    auts: str = Field(pattern=r"^[A-Fa-f0-9]{28}$")


class AuthenticationInfoRequest(BaseModel):
    """TS 29.503 AuthenticationInfoRequest (documentation; the route validates itself)."""

    model_config = ConfigDict(extra="allow")
    supportedFeatures: str | None = None  # noqa: N815 - 3GPP member names
    servingNetworkName: str = Field(examples=["5G:mnc001.mcc001.3gppnetwork.org"])  # noqa: N815
    resynchronizationInfo: ResynchronizationInfo | None = None  # noqa: N815
    ausfInstanceId: str = Field(examples=["6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"])  # noqa: N815


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined (their ``#/$defs/..``
    references would otherwise point into the root of the OpenAPI document)."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def problem_details(exc: SimtrustError, instance: str) -> JSONResponse:
    """A TS 29.571 ProblemDetails for a simtrust error (cause from the error's context)."""
    status = exc.status
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.code,
        "title": exc.title,
        "status": status,
        "detail": exc.detail,
        "instance": instance,
        "cause": str(exc.context.get("cause") or _DEFAULT_CAUSE.get(status, "SYSTEM_FAILURE")),
    }
    param = exc.context.get("invalid_param")
    if isinstance(param, str):
        body["invalidParams"] = [{"param": param, "reason": exc.detail}]
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@router.post(
    "/{supiOrSuci}/security-information/generate-auth-data",
    summary="Generate authentication data for the UE (GenerateAuthData)",
    operation_id="GenerateAuthData",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _inline_defs(AuthenticationInfoRequest.model_json_schema())
                }
            },
        }
    },
    responses={
        200: {"description": "AuthenticationInfoResult"},
        400: {"description": "ProblemDetails (MANDATORY_IE_MISSING, ...)"},
        403: {"description": "ProblemDetails (AUTHENTICATION_REJECTED, "
                             "SERVING_NETWORK_NOT_AUTHORIZED, ...)"},
        404: {"description": "ProblemDetails (USER_NOT_FOUND)"},
        501: {"description": "ProblemDetails (UNSUPPORTED_PROTECTION_SCHEME)"},
    },
)
async def generate_auth_data(
    supiOrSuci: str,  # noqa: N803 - the path variable TS 29.503 names
    request: Request,
    rt: CurrentRuntime,
    who: CurrentPrincipal,
) -> JSONResponse:
    instance = request.url.path
    try:
        who.require_operator()
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON AuthenticationInfoRequest object",
                               cause="INVALID_MSG_FORMAT")
        udm = rt.subscriber.udm
        result = await run_in_threadpool(
            udm.generate_auth_data, supiOrSuci, body, actor=who.actor
        )
    except SimtrustError as exc:
        return problem_details(exc, instance)
    return JSONResponse(result, status_code=200)
