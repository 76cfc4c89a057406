"""OpenID4VCI 1.0 credential issuer and OpenID4VP 1.0 verifier endpoints.

Issuer: ``GET /.well-known/openid-credential-issuer`` (metadata, OpenID4VCI
§12.2.2), ``POST /oid4vci/offers`` (operator-admin: a pre-authorized offer,
§4.1), ``GET /oid4vci/offers/{id}`` (``credential_offer_uri``, §4.1.3),
``POST /oid4vci/nonce`` (§7), ``POST /oid4vci/credential`` (§8, Bearer access
token from the pre-authorized code or the authorization code grant at
``POST /oauth2/token``, or a DPoP-bound one with ``Authorization: DPoP`` and
a ``DPoP`` proof, RFC 9449 §7; an offer with ``"grant": "authorization_code"`` carries that
grant, whose flow is in routes/oauth2.py and web/_authorize.py).
Verifier: ``POST /oid4vp/requests`` (a relying party's DCQL query or
presentation definition), ``GET /oid4vp/requests/{id}/object`` (the signed
request object, RFC 9101 ``application/oauth-authz-req+jwt``),
``POST /oid4vp/responses/{id}`` (``direct_post``, OpenID4VP §8.2, or
``direct_post.jwt`` with an encrypted ``response``, §8.3) and
``GET /oid4vp/requests/{id}`` (the outcome for the relying party).
``GET /kyc/statements`` (operator-admin): the period's paid verifications
per issuing operator and relying party, from the receipts, with their
obligations; ``GET /kyc/settlement``: those obligations netted by the
settlement engine into the transfers that pay them (net positions per party).
Protocol errors answer the specifications' ``{"error", "error_description"}``
JSON, not problem details, because wallets parse that shape.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api._ratelimit import RATE_LIMITED, client_address, oid4vci_limiter
from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.errors import InvalidInput
from simtrust.identity import DPOP_ALGS, ProtocolError, verification_statement
from simtrust.runtime import Runtime
from simtrust.settlement import net_statements

__all__ = ["router"]

router = APIRouter(tags=["openid4vc"])

#: OID4VCI errors are the spec's own JSON (§8.3.1.2, §9.3: ``error``,
#: ``error_description``), as OAuth 2.0 token errors are, not problem details.
_ERROR_JSON: dict[str, Any] = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}

_NO_STORE = {"Cache-Control": "no-store"}
_MAX_FORM = 1024 * 1024


def protocol_error(exc: ProtocolError, nonce: str | None = None) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.http_status == 401 and exc.error in ("invalid_dpop_proof", "use_dpop_nonce"):
        # RFC 9449 §7.1: the DPoP challenge, with a nonce to use (§9).
        headers["WWW-Authenticate"] = f'DPoP error="{exc.error}", algs="{" ".join(DPOP_ALGS)}"'
    elif exc.http_status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce
    return JSONResponse(
        {"error": exc.error, "error_description": exc.detail},
        status_code=exc.http_status,
        headers=headers,
    )


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential_configuration_id: str = Field(max_length=100)
    claims: dict[str, Any]
    tx_code: bool = False
    deferred: bool = False
    tenantId: str | None = Field(  # noqa: N815 - API member style
        default=None, max_length=64,
        description="The tenant the credential is issued for (a tenant key sees its own)")
    #: ``authorization_code``: the offer carries that grant (OpenID4VCI §3.4) and a user of
    #: ``tenantId`` authorizes it by signing in at the authorization endpoint.
    grant: Literal["pre-authorized_code", "authorization_code"] = "pre-authorized_code"


class PresentationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dcql_query: dict[str, Any] | None = None
    presentation_definition: dict[str, Any] | None = None
    relyingParty: str | None = Field(default=None, max_length=300)  # noqa: N815
    #: ``direct_post.jwt``: the wallet encrypts its response to a key made for this request
    #: (OpenID4VP 1.0 §8.3).
    responseMode: Literal["direct_post", "direct_post.jwt"] = "direct_post"  # noqa: N815


@router.get(
    "/.well-known/openid-credential-issuer",
    summary="OpenID4VCI credential issuer metadata (§12.2)",
)
def issuer_metadata(rt: CurrentRuntime) -> dict[str, Any]:
    return rt.identity.oid4vci.metadata()


@router.post(
    "/oid4vci/offers",
    status_code=status.HTTP_201_CREATED,
    summary="Create a pre-authorized credential offer (operator-admin)",
)
def create_offer(body: OfferRequest, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    if body.tenantId is not None:
        rt.tenants.get_tenant(body.tenantId)  # NotFound for a tenant that does not exist
    service = rt.identity
    result = service.oid4vci.create_offer(
        body.credential_configuration_id, body.claims, now=service.now(), tx_code=body.tx_code,
        deferred=body.deferred, tenant_id=body.tenantId,
        authorization_code=body.grant == "authorization_code",
    )  # fmt: skip
    rt.audit.append(
        actor=who.actor, action="oid4vci.offer", subject=result["offerId"], outcome="success",
        tenant_id=body.tenantId, details={"configuration": body.credential_configuration_id},
    )  # fmt: skip
    return result


@router.post(
    "/oid4vci/offers/{offer_id}/approve",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Approve a deferred offer: the wallet's next deferred request gets it (operator)",
)
def approve_offer(offer_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
    who.require_operator()
    service = rt.identity
    service.oid4vci.approve(offer_id, now=service.now())
    rt.audit.append(actor=who.actor, action="oid4vci.approve", subject=offer_id,
                    outcome="success", details={})  # fmt: skip
    return Response(status_code=204)


@router.post(
    "/oid4vci/deferred_credential",
    summary="Deferred credential endpoint (§9): the credential once approved, else 202",
    responses={202: {"description": "issuance pending"},
               400: {"description": "§9.3 error", **_ERROR_JSON},
               401: {"description": "invalid_token", **_ERROR_JSON}},
)
async def deferred_credential(request: Request, rt: CurrentRuntime) -> JSONResponse:
    token = ""
    nonce = rt.identity.oid4vci_tokens.dpop.nonce(now=rt.identity.now())
    try:
        token = _access_token(request, rt, "/oid4vci/deferred_credential")
        raw = await request.body()
        try:
            body = json.loads(raw[:_MAX_FORM])
        except (ValueError, RecursionError) as exc:
            raise ProtocolError("invalid_credential_request", "the body is not JSON") from exc
        service = rt.identity
        response = service.oid4vci.deferred_credential(token, body, now=service.now())
    except ProtocolError as exc:
        return protocol_error(exc, nonce)
    pending = "transaction_id" in response
    if not pending:
        _audit_issued(rt, token, "deferred")
    return JSONResponse(response, status_code=202 if pending else 200,
                        headers={**_NO_STORE, "DPoP-Nonce": nonce})  # fmt: skip


def _access_token(request: Request, rt: Runtime, path: str) -> str:
    """The presented access token, checked against its DPoP binding (RFC 9449 §7)."""
    proofs = request.headers.getlist("dpop")
    if len(proofs) > 1:
        raise ProtocolError("invalid_dpop_proof", "one DPoP header", http_status=401)
    service = rt.identity
    return service.oid4vci_tokens.presented(
        request.headers.get("authorization", ""), proofs[0] if proofs else None,
        method=request.method, url=f"{rt.settings.public_url}{path}", now=service.now(),
    )  # fmt: skip


def _audit_issued(rt: Runtime, token: str, configuration: str) -> None:
    """Audit an issued credential under its id and the tenant its offer was made for."""
    credential_id, tenant = rt.identity.oid4vci.issued_for(token)
    rt.audit.append(
        actor="oid4vci:wallet", action="oid4vci.credential",
        subject=credential_id or configuration, outcome="success", tenant_id=tenant,
        details={"configuration": configuration},
    )  # fmt: skip


@router.get("/oid4vci/offers/{offer_id}", summary="A credential offer by reference (§4.1.3)")
def credential_offer(offer_id: str, rt: CurrentRuntime) -> JSONResponse:
    service = rt.identity
    return JSONResponse(service.oid4vci.offer(offer_id, now=service.now()), headers=_NO_STORE)


@router.post(
    "/oid4vci/nonce",
    summary="A fresh c_nonce for key proofs (§7)",
    responses={429: RATE_LIMITED},
)
def nonce(request: Request, rt: CurrentRuntime) -> JSONResponse:
    # Unauthenticated and each answer is a stored row: charged per address (RFC 6585 §4).
    oid4vci_limiter(request, rt).take(client_address(request))
    service = rt.identity
    return JSONResponse(service.oid4vci.nonce(now=service.now()), headers=_NO_STORE)


@router.post(
    "/oid4vci/credential",
    summary="Issue the offered credential to the key the wallet proves (§8)",
    responses={400: {"description": "§8.3.1.2 error", **_ERROR_JSON},
               401: {"description": "invalid_token", **_ERROR_JSON}},
)
async def credential(request: Request, rt: CurrentRuntime) -> JSONResponse:
    token = ""
    nonce = rt.identity.oid4vci_tokens.dpop.nonce(now=rt.identity.now())
    try:
        token = _access_token(request, rt, "/oid4vci/credential")
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            raise ProtocolError("invalid_credential_request", "the request is too large")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError("invalid_credential_request", "the body is not JSON") from exc
        service = rt.identity
        response = service.oid4vci.credential(token, body, now=service.now())
    except ProtocolError as exc:
        return protocol_error(exc, nonce)
    pending = "transaction_id" in response
    # §8.2: the configuration id, or the credential identifier the token response named.
    configuration = str(
        body.get("credential_configuration_id") or body.get("credential_identifier")
    )
    if pending:
        rt.audit.append(
            actor="oid4vci:wallet", action="oid4vci.deferred", subject=configuration,
            outcome="success", details={},
        )  # fmt: skip
    else:
        _audit_issued(rt, token, configuration)
    return JSONResponse(response, status_code=202 if pending else 200,
                        headers={**_NO_STORE, "DPoP-Nonce": nonce})  # fmt: skip


@router.post(
    "/oid4vp/requests",
    status_code=status.HTTP_201_CREATED,
    summary="Ask a wallet for a presentation (DCQL or presentation definition)",
)
def create_request(
    body: PresentationRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> dict[str, Any]:
    relying_party = _relying_party(who, body.relyingParty)
    service = rt.identity
    result = service.oid4vp.create_request(
        relying_party, now=service.now(), dcql_query=body.dcql_query,
        presentation_definition=body.presentation_definition, response_mode=body.responseMode,
    )  # fmt: skip
    rt.audit.append(
        actor=who.actor, action="oid4vp.request", subject=result["id"], outcome="success",
        details={"relyingParty": relying_party},
    )  # fmt: skip
    return result


def _relying_party(who: Any, named: str | None) -> str:
    """Tenant callers verify as their tenant; the operator names the relying party it serves."""
    if who.is_operator:
        return named or who.actor
    own = f"tenant:{who.tenant_id}"
    if named is not None and named != own:
        raise InvalidInput(f"a tenant key verifies as {own}")
    return own


@router.get(
    "/oid4vp/requests/{request_id}/object",
    summary="The signed request object (request_uri, RFC 9101)",
    response_class=Response,
)
def request_object(request_id: str, rt: CurrentRuntime) -> Response:
    service = rt.identity
    jwt = service.oid4vp.request_object(request_id, now=service.now())
    return Response(jwt, media_type="application/oauth-authz-req+jwt", headers=_NO_STORE)


@router.post(
    "/oid4vp/responses/{request_id}",
    summary="The wallet's direct_post authorization response (OpenID4VP §8.2)",
    responses={400: {"description": "OpenID4VP §8.5 error", **_ERROR_JSON}},
)
async def direct_post(request_id: str, request: Request, rt: CurrentRuntime) -> JSONResponse:
    try:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise ProtocolError("invalid_request", "direct_post is form-urlencoded")
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            raise ProtocolError("invalid_request", "the response is too large")
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError("invalid_request", "the form does not decode") from exc
        if any(len(v) > 1 for v in form.values()):
            raise ProtocolError("invalid_request", "a parameter is repeated")
        service = rt.identity
        result = service.oid4vp.respond(
            request_id, {k: v[0] for k, v in form.items()}, now=service.now()
        )
    except ProtocolError as exc:
        rt.audit.append(
            actor="oid4vp:wallet", action="oid4vp.response", subject=request_id,
            outcome="failure", details={"error": exc.detail[:200]},
        )  # fmt: skip
        return protocol_error(exc)
    rt.audit.append(
        actor="oid4vp:wallet", action="oid4vp.response", subject=request_id, outcome="success",
        details={},
    )  # fmt: skip
    return JSONResponse(result, headers=_NO_STORE)


@router.get("/oid4vp/requests/{request_id}", summary="Outcome of a presentation request")
def request_result(request_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    owner = None if who.is_operator else f"tenant:{who.tenant_id}"
    return rt.identity.oid4vp.result(request_id, owner)


@router.get(
    "/kyc/statements",
    summary="Paid verifications per issuing operator and relying party in a period (operator)",
)
def kyc_statement(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    start: datetime,
    end: datetime,
    price: int = Query(ge=0, le=10**9, description="minor units per verification"),
    currency: str = Query(default="EUR", pattern="^[A-Z]{3}$"),
) -> dict[str, Any]:
    who.require_operator()
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end carry a time zone (RFC 3339)")
    receipts = rt.identity.receipts.between(start, end)
    return verification_statement(
        receipts, start=start, end=end, price_minor_units=price, currency=currency
    )


@router.get(
    "/kyc/settlement",
    summary="The period's verification obligations netted into settlement transfers (operator)",
)
def kyc_settlement(
    rt: CurrentRuntime,
    who: CurrentPrincipal,
    start: datetime,
    end: datetime,
    price: int = Query(ge=0, le=10**9, description="minor units per verification"),
    currency: str = Query(default="EUR", pattern="^[A-Z]{3}$"),
) -> dict[str, Any]:
    statement = kyc_statement(rt, who, start, end, price, currency)
    return {"statement": statement, "netting": net_statements(statement["obligations"])}
