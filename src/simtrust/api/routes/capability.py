"""Capability credentials and the policy enforcement point in front of datasets.

``POST /capabilities`` (operator-admin) grants a root capability on a
dataset behind simtrust (a VC signed by the platform issuer, with a
revocation entry in its Bitstring Status List; revoke it with
``POST /credentials/status``). ``POST /capabilities/check`` is the
enforcement point's decision API: a capability token (bearer chain or
holder-signed presentation, see ``simtrust.identity.CapabilityEnforcer``),
an action and a resource → ``{"decision": "permit"|"deny", "reason", ...}``,
200 when permitted and 403 when not; every decision is audited (durably,
before the answer) and receipted: the answer carries ``Simtrust-Receipt``
(a compact receipt signed by the node key, ``simtrust.audit.receipts``) and
``Simtrust-Receipt-Id`` (the audit record's id), permitted or denied.
``GET /capabilities/receipts/{id}`` issues the receipt again,
``GET /capabilities/receipts/{id}/proof`` adds the record and its inclusion
proof in a ledger anchor (409 until the record is anchored), and
``POST /capabilities/receipts/verify`` checks a receipt, or a full proof.

Reverse-proxy mode: ``/datasets/{name}/{path}`` forwards to the upstream
configured for ``name`` (``SIMTRUST_CAPABILITY_DATASETS=name=https://…``)
when the request carries ``Authorization: Capability <token>`` granting the
action (``read`` for GET/HEAD, ``write`` otherwise) on the resource
``{public base URL}/datasets/{name}/{path}``; the upstream never sees the
token, only ``X-Simtrust-Capability-Holder`` (the holder's DID). Denied
requests answer 403 problem details; every decision is audited and receipted
as above (the receipt headers ride on the proxied answer or the 403).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Principal
from simtrust.audit import AuditEvent
from simtrust.audit.anchoring import AUDIT_DOMAIN
from simtrust.audit.receipts import (
    issue_receipt,
    prove_receipt,
    record_decision,
    verify_receipt,
    verify_receipt_proof,
)
from simtrust.errors import (
    AuthenticationRequired,
    Conflict,
    CryptoError,
    IntegrityError,
    InvalidInput,
    NotFound,
    Rejected,
)
from simtrust.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["capabilities"])

_RECEIPT_HEADERS = {
    "Simtrust-Receipt": {"description": "compact signed receipt of this decision",
                         "schema": {"type": "string"}},
    "Simtrust-Receipt-Id": {"description": "the decision's audit record id",
                            "schema": {"type": "string"}},
}  # fmt: skip
_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grantee: str = Field(min_length=5, max_length=500)
    resource: str = Field(min_length=1, max_length=1000)
    actions: list[str] = Field(min_length=1, max_length=32)
    validUntil: datetime | None = None  # noqa: N815 - VCDM member name
    delegationDepth: int = Field(default=0, ge=0, le=8)  # noqa: N815
    ratePerMinute: int | None = Field(default=None, gt=0, le=1_000_000)  # noqa: N815


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capability: str = Field(max_length=262_144)
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=1000)


@router.post(
    "/capabilities",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a capability on a dataset (operator-admin)",
)
def grant(body: GrantRequest, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    credential = rt.identity.grant_capability(
        grantee=body.grantee, resource=body.resource, actions=body.actions,
        valid_until=body.validUntil, delegation_depth=body.delegationDepth,
        rate_per_minute=body.ratePerMinute,
    )  # fmt: skip
    rt.audit.append(
        actor=who.actor, action="capability.grant", subject=credential["id"], outcome="success",
        details={"grantee": body.grantee, "resource": body.resource, "actions": body.actions},
    )  # fmt: skip
    return {"verifiableCredential": credential}


@router.post(
    "/capabilities/check",
    summary="Enforcement point: may this capability do ACTION on RESOURCE now?",
    responses={200: {"description": "permitted; receipted", "headers": _RECEIPT_HEADERS},
               403: {"description": "denied; the body says why; receipted too",
                     "headers": _RECEIPT_HEADERS}},
)
def check(body: CheckRequest, rt: CurrentRuntime, who: CurrentPrincipal) -> JSONResponse:
    service = rt.identity
    decision = service.capabilities.check(
        body.capability, action=body.action, resource=body.resource, now=service.now()
    )
    answer = decision.to_json()
    event, receipt = record_decision(
        rt.audit, rt.ledger.signer, requester=who.actor, resource=body.resource,
        action=body.action, decision=answer,
    )  # fmt: skip
    return JSONResponse(
        {**answer, "receipt": receipt, "receiptId": event.event_id},
        status_code=200 if decision.permit else 403, headers=_receipt_headers(event.event_id,
                                                                              receipt),
    )  # fmt: skip


def _receipt_headers(event_id: str, receipt: str) -> dict[str, str]:
    return {"Simtrust-Receipt": receipt, "Simtrust-Receipt-Id": event_id}




def _own_decision(rt: Runtime, who: Principal, receipt_id: str) -> AuditEvent:
    """The decision's record, if the caller is an operator or the decision's requester."""
    event = rt.audit.get(receipt_id)
    if event is None or not (who.is_operator or who.actor == event.actor):
        raise NotFound(f"no access decision {receipt_id!r}")
    return event


class VerifyReceiptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt: str = Field(min_length=1, max_length=8192)
    event: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None


@router.get(
    "/capabilities/receipts/{receipt_id}",
    summary="The signed receipt of one access decision (issued again from its audit record)",
    responses={404: {"description": "no such access decision", **_PROBLEM}},
)
def get_receipt(receipt_id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    event = _own_decision(rt, who, receipt_id)
    receipt = issue_receipt(event, rt.ledger.signer)
    return {"receipt": receipt, "claims": verify_receipt(receipt)}


@router.get(
    "/capabilities/receipts/{receipt_id}/proof",
    summary="Receipt, audit record and inclusion proof against its ledger anchor",
    responses={404: {"description": "no such access decision", **_PROBLEM},
               409: {"description": "the decision is not anchored yet", **_PROBLEM}},
)  # fmt: skip
def get_receipt_proof(receipt_id: str, rt: CurrentRuntime,
                      who: CurrentPrincipal) -> dict[str, Any]:  # fmt: skip
    event = _own_decision(rt, who, receipt_id)
    if rt.ledger.anchor_covering(AUDIT_DOMAIN, event.seq) is None:
        raise Conflict(f"access decision {receipt_id!r} is not anchored yet")
    return prove_receipt(rt.audit, rt.ledger, receipt_id)


@router.post(
    "/capabilities/receipts/verify",
    summary="Verify a receipt (signature by this node), or a full proof from the ledger",
    responses={422: {"description": "the receipt or its proof does not verify; the detail "
                                    "names the failed check", **_PROBLEM}},
)  # fmt: skip
def verify_receipt_route(body: VerifyReceiptRequest, rt: CurrentRuntime,
                         who: CurrentPrincipal) -> dict[str, Any]:  # fmt: skip
    node = rt.ledger.signer.public_key
    try:
        if body.event is None and body.proof is None:
            return {"valid": True, "receipt": verify_receipt(body.receipt, trusted_node=node)}
        document = {"receipt": body.receipt, "event": body.event, "proof": body.proof}
        return verify_receipt_proof(document, trusted_node=node, ledger=rt.ledger)
    except (InvalidInput, CryptoError, IntegrityError) as exc:
        raise Rejected("receipt-invalid", exc.detail) from exc


_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "authorization", "content-length", "cookie",
})  # fmt: skip
_UPSTREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


async def dataset(name: str, path: str, request: Request, rt: CurrentRuntime) -> Response:
    upstream = rt.settings.datasets.get(name)
    if upstream is None:
        raise NotFound(f"no dataset {name!r}")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "capability" or not token.strip():
        raise AuthenticationRequired("send Authorization: Capability <token>")
    service = rt.identity
    resource = f"{service.public_url}/datasets/{name}/{path}".rstrip("/")
    action = "read" if request.method in ("GET", "HEAD") else "write"
    decision = service.capabilities.check(
        token.strip(), action=action, resource=resource, now=service.now()
    )
    event, receipt = record_decision(
        rt.audit, rt.ledger.signer, requester=f"capability:{decision.holder or 'unknown'}",
        resource=resource, action=action, decision=decision.to_json(),
        extra={"method": request.method},
    )  # fmt: skip
    receipted = _receipt_headers(event.event_id, receipt)
    if not decision.permit:
        return JSONResponse(
            {"type": "about:blank", "title": "Forbidden", "status": 403,
             "detail": f"capability refused: {decision.reason}"},
            status_code=403, media_type="application/problem+json", headers=receipted,
        )  # fmt: skip
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    headers["X-Simtrust-Capability-Holder"] = str(decision.holder)
    body = await request.body()
    async with httpx.AsyncClient(timeout=_UPSTREAM_TIMEOUT, follow_redirects=False) as client:
        try:
            answer = await client.request(
                request.method, f"{upstream}/{path}", params=request.query_params,
                headers=headers, content=body,
            )  # fmt: skip
        except httpx.HTTPError:
            return JSONResponse(
                {"type": "about:blank", "title": "Bad Gateway", "status": 502,
                 "detail": f"dataset {name!r} did not answer"},
                status_code=502, media_type="application/problem+json",
            )  # fmt: skip
    passed = {k: v for k, v in answer.headers.items()
              if k.lower() not in _HOP and k.lower() != "content-encoding"}  # fmt: skip
    return Response(answer.content, status_code=answer.status_code,
                    headers={**passed, **receipted})


# One route per method, each with its own operation id (one route with a list of
# methods would give every method the same operationId in the OpenAPI document).
for _method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
    router.add_api_route(
        "/datasets/{name}/{path:path}", dataset, methods=[_method],
        operation_id=f"dataset_proxy_{_method.lower()}",
        summary="Reverse proxy to an external dataset, behind the capability enforcement point",
        responses={403: {"description": "the capability does not grant this access "
                                        "(receipted: Simtrust-Receipt header)",
                         "headers": _RECEIPT_HEADERS, **_PROBLEM}},
    )
