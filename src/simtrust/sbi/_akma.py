"""Naanf_AKMA on the SBI (TS 29.535 §5, OpenAPI ``TS29535_Naanf_AKMA.yaml``).

``POST /naanf-akma/v1/register-anchorkey`` (AkmaKeyInfo → 200 AkmaKeyInfo, from the
AUSF, TS 33.535 §6.1), ``POST /naanf-akma/v1/retrieve-applicationkey``
(AkmaAfKeyRequest → 200 AkmaAfKeyData with K_AF and its expiry, TS 33.535 §6.3;
``afId`` is the AF's FQDN with the Ua* protocol of TS 33.222 §5.3) and
``POST /naanf-akma/v1/remove-context`` (CtxRemove → 204). Key material is hex.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simtrust.bootstrap import Aanf, AkmaAnchor, NafId
from simtrust.errors import InvalidInput, NotFound

__all__ = ["AKMA_PREFIX", "akma_routes"]

AKMA_PREFIX = "/naanf-akma/v1"
_SUPI = re.compile(r"imsi-[0-9]{5,15}|nai-.+")
_HEX64 = re.compile(r"[A-Fa-f0-9]{64}")

Handler = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Handler], Callable[[Request], Awaitable[Response]]]
Body = Callable[[Request], Awaitable[dict[str, Any]]]


def _field(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        raise InvalidInput(f"{name} is missing or malformed", cause="MANDATORY_IE_INCORRECT",
                           invalid_param=name)
    return value


def akma_routes(aanf: Aanf, endpoint: Endpoint, read_body: Body) -> list[Route]:
    """The three Naanf_AKMA routes over ``aanf``, with the SBI's auth and error handling."""

    async def register(request: Request, actor: str) -> Response:
        body = await read_body(request)
        supi = _field(body, "supi", _SUPI)
        a_kid = _field(body, "aKId")
        k_akma = bytes.fromhex(_field(body, "kAkma", _HEX64))
        gpsi = body.get("gpsi") if isinstance(body.get("gpsi"), str) else None
        await run_in_threadpool(aanf.register, AkmaAnchor(supi, a_kid, k_akma), gpsi=gpsi,
                                actor=actor)
        return JSONResponse({"supi": supi, "aKId": a_kid, "kAkma": k_akma.hex()})

    async def retrieve(request: Request, actor: str) -> Response:
        body = await read_body(request)
        a_kid = _field(body, "aKId")
        try:
            af = NafId(_field(body, "afId"))
        except InvalidInput:
            raise InvalidInput("afId must be the AF's FQDN", cause="MANDATORY_IE_INCORRECT",
                               invalid_param="afId") from None
        key = await run_in_threadpool(aanf.application_key, a_kid, af)
        return JSONResponse({"kaf": key.key.hex(),
                             "expiry": key.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "supi": f"imsi-{key.imsi}"})

    async def remove(request: Request, actor: str) -> Response:
        body = await read_body(request)
        supi = _field(body, "supi", _SUPI)
        if not await run_in_threadpool(aanf.remove, supi, actor=actor):
            raise NotFound("no AKMA context for this SUPI", cause="CONTEXT_NOT_FOUND")
        return Response(status_code=204)

    return [
        Route(AKMA_PREFIX + "/register-anchorkey", endpoint(register), methods=["POST"]),
        Route(AKMA_PREFIX + "/retrieve-applicationkey", endpoint(retrieve), methods=["POST"]),
        Route(AKMA_PREFIX + "/remove-context", endpoint(remove), methods=["POST"]),
    ]
