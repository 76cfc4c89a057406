"""W3C VC-API endpoints (VC API draft, §3.2 issuer, §3.3 verifier, §3.4 status) and DID resolution.

``POST /credentials/issue`` → 201 ``{"verifiableCredential": ...}``;
``POST /credentials/verify`` and ``POST /presentations/verify`` → a
verification result ``{"verified", "checks", "problemDetails", "errors",
"warnings"}``, status 200 when verified and 400 when not (the body says why);
``POST /credentials/status`` revokes or suspends; status list credentials are
published at ``GET /credentials/status/{id}`` and DIDs resolve at
``GET /identifiers/{did}`` (W3C DID Resolution §4 result shape).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api._ratelimit import limiter_for
from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Principal, get_principal
from simtrust.errors import AuthenticationRequired
from simtrust.identity import (
    STATUS_LIST_MEDIA_TYPE,
    DidNotFound,
    InvalidDid,
    verification_report,
)

__all__ = ["router"]

router = APIRouter(tags=["vc-api"])


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    tenantId: str | None = Field(  # noqa: N815 - VC-API member style
        default=None, max_length=64,
        description="simtrust extension: the tenant the credential is issued for; its keys"
        " then see the issuance (dashboard, audit trail)")


class VerifyCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verifiableCredential: dict[str, Any] | str  # noqa: N815 - VC-API member name
    options: dict[str, Any] = Field(default_factory=dict)


class PresentationOptions(BaseModel):
    """VC-API verify options; ``holderBinding`` asks for holder binding (VCDM 2.0 §4.13)."""

    model_config = ConfigDict(extra="allow")
    challenge: str | None = None
    domain: str | None = None
    checks: list[str] = Field(default_factory=list)
    holderBinding: bool = False  # noqa: N815 - VC-API style member name


class VerifyPresentationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verifiablePresentation: dict[str, Any]  # noqa: N815 - VC-API member name
    options: PresentationOptions = Field(default_factory=PresentationOptions)


class StatusChange(BaseModel):
    """One status change: ``status`` true/false, or a ``0x..`` value for multi-bit lists."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern="^BitstringStatusListEntry$")
    statusPurpose: str = Field(pattern="^(revocation|suspension|message)$")  # noqa: N815
    status: bool | Annotated[str, Field(pattern="^0x[0-9a-fA-F]{1,2}$")]

    def value(self) -> bool | int:
        return self.status if isinstance(self.status, bool) else int(self.status, 16)


class UpdateStatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credentialId: str  # noqa: N815 - VC-API member name
    credentialStatus: list[StatusChange] = Field(min_length=1)  # noqa: N815


def verifier_caller(
    request: Request,
    rt: CurrentRuntime,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal | None:
    """An authenticated caller, or (public verifier on) an anonymous, rate-limited one."""
    if authorization is not None or x_api_key is not None:
        return get_principal(rt, authorization, x_api_key)
    if not rt.settings.vc_public_verify:
        raise AuthenticationRequired("an API key or access token is required")
    limiter = limiter_for(request.app.state, "vc_public_limiter",
                          rt.settings.vc_public_verify_per_minute, "public verifier")
    limiter.take(request.client.host if request.client else "unknown")
    return None


VerifierCaller = Annotated[Principal | None, Depends(verifier_caller)]


def _result(report: dict[str, Any]) -> JSONResponse:
    report["problemDetails"] = [
        {
            "type": f"https://simtrust.dev/problems/verification/{e['reason']}",
            "title": e["reason"],
            "detail": e["detail"],
            **({"rule": e["rule"]} if "rule" in e else {}),
        }
        for e in report["errors"]
    ]
    report.setdefault("checks", [])
    return JSONResponse(report, status_code=200 if report["verified"] else 400)


@router.post(
    "/credentials/issue",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a credential signed by the platform issuer (operator-admin)",
)
def issue_credential(
    body: IssueRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> dict[str, Any]:
    who.require_operator()
    if body.tenantId is not None:
        rt.tenants.get_tenant(body.tenantId)  # NotFound for a tenant that does not exist
    issued = rt.identity.issue(body.credential, body.options)
    # An enveloped vc+jwt is recorded by what it secures, not by its data: URL.
    described = issued if "issuer" in issued else {
        **body.credential, "issuer": body.credential.get("issuer", rt.identity.issuer().controller),
        "securingMechanism": "vc+jwt"}  # fmt: skip
    rt.audit.append(
        actor=who.actor,
        action="credential.issue",
        subject=str(described.get("id", "credential")),
        outcome="success",
        tenant_id=body.tenantId,
        details={"issuer": described["issuer"], "type": described.get("type")},
    )
    return {"verifiableCredential": issued}


class SdJwtIssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vct: str = Field(max_length=300, description="The SD-JWT VC type (SD-JWT VC §3.2.2.1.1)")
    claims: dict[str, Any]
    disclosable: list[str] = Field(default_factory=list, max_length=100)
    holderJwk: dict[str, Any] = Field(  # noqa: N815 - API member style
        description="The holder's public JWK (Ed25519 or P-256), put in cnf.jwk")
    revocable: bool = True
    statusBits: int = Field(  # noqa: N815 - API member style
        1, ge=1, le=2,
        description="1: a one-bit revocation list; 2: the two-bit Token Status List of"
                    " VALID, INVALID, SUSPENDED")


@router.post(
    "/credentials/sd-jwt",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an SD-JWT VC (dc+sd-jwt) bound to a holder key (operator-admin)",
)
def issue_sd_jwt_vc(
    body: SdJwtIssueRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> dict[str, Any]:
    who.require_operator()
    issued = rt.identity.issue_sd_jwt_vc(
        vct=body.vct, claims=body.claims, disclosable=body.disclosable, holder=body.holderJwk,
        revocable=body.revocable, status_bits=body.statusBits,
    )  # fmt: skip
    rt.audit.append(actor=who.actor, action="credential.issue", subject=body.vct,
                    outcome="success", details={"format": "dc+sd-jwt"})  # fmt: skip
    return issued


@router.post("/credentials/verify", summary="Verify a credential (Data Integrity or vc+jwt)")
def verify_credential(
    body: VerifyCredentialRequest, rt: CurrentRuntime, who: VerifierCaller
) -> JSONResponse:
    service = rt.identity
    return _result(
        verification_report(lambda: service.verify_credential(body.verifiableCredential))
    )


@router.post("/presentations/verify", summary="Verify a presentation with challenge and domain")
def verify_presentation(
    body: VerifyPresentationRequest, rt: CurrentRuntime, who: VerifierCaller
) -> JSONResponse:
    service = rt.identity
    options = body.options
    return _result(
        verification_report(
            lambda: service.verify_presentation(
                body.verifiablePresentation,
                challenge=options.challenge,
                domain=options.domain,
                require_holder_binding=options.holderBinding,
            )
        )
    )


@router.post(
    "/credentials/status", summary="Revoke, suspend or reinstate a credential (operator-admin)"
)
def update_status(
    body: UpdateStatusRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> dict[str, Any]:
    who.require_operator()
    service = rt.identity
    lists = []
    for change in body.credentialStatus:
        published = service.update_status(body.credentialId, change.statusPurpose, change.value())
        lists.append(published["id"])
        rt.audit.append(
            actor=who.actor,
            action=f"credential.status.{change.statusPurpose}",
            subject=body.credentialId,
            outcome="success",
            details={"set": change.status, "statusList": published["id"]},
        )
    return {"credentialId": body.credentialId, "statusLists": lists}


@router.get(
    "/credentials/status/{list_id:path}",
    summary="A published status list: the Bitstring Status List credential, or with"
            " Accept: application/statuslist+jwt the IETF Status List Token",
    responses={200: {"content": {STATUS_LIST_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def status_list(list_id: str, request: Request, rt: CurrentRuntime) -> Any:
    # draft-ietf-oauth-status-list §8.1: the token by content negotiation at the same URI.
    if STATUS_LIST_MEDIA_TYPE in request.headers.get("accept", ""):
        token = rt.identity.status_lists.token(list_id)
        return Response(token, media_type=STATUS_LIST_MEDIA_TYPE,
                        headers={"Cache-Control": "max-age=300"})  # fmt: skip
    return rt.identity.published_status_list(list_id)


@router.get(
    "/.well-known/did.json",
    summary="The platform issuer's did:web document (did:web:HOST of the public base URL)",
)
def did_web_document(rt: CurrentRuntime) -> JSONResponse:
    document = rt.identity.web_document()
    return JSONResponse(document, media_type="application/did+json")


_RESOLUTION_MEDIA = 'application/ld+json;profile="https://w3id.org/did-resolution"'
_RESOLUTION_ERRORS = {
    "invalid-did": (400, "invalidDid"),
    "did-not-found": (404, "notFound"),
}


@router.get(
    "/1.0/identifiers/{did}",
    summary="DIF Universal Resolver driver: resolve a DID (did:simtrust, did:key, did:web)",
    responses={
        400: {"description": "invalidDid", "content": {_RESOLUTION_MEDIA: {}}},
        404: {"description": "notFound", "content": {_RESOLUTION_MEDIA: {}}},
        410: {"description": "the DID is deactivated", "content": {_RESOLUTION_MEDIA: {}}},
        501: {"description": "methodNotSupported", "content": {_RESOLUTION_MEDIA: {}}},
    },
)
def universal_resolver(did: str, rt: CurrentRuntime, request: Request) -> JSONResponse:
    """A DID Resolution result in the Universal Resolver driver interface.

    Errors are resolution results too (``didResolutionMetadata.error``), with
    the HTTP status the DID Resolution HTTP(S) binding gives them. The DID is
    read from the raw path: a did:web's own ``%3A`` (an encoded port colon)
    must not be decoded; a client that percent-encodes the whole DID sends
    ``%253A``, which is decoded once.
    """

    raw = request.scope.get("raw_path", b"").decode("latin-1")
    _, marker, tail = raw.partition("/1.0/identifiers/")
    if marker and tail:
        did = unquote(tail) if "%25" in tail else tail

    try:
        resolution = rt.identity.resolve(did)
    except (DidNotFound, InvalidDid) as exc:
        status_code, error = _RESOLUTION_ERRORS.get(exc.code, (404, "notFound"))
        if exc.context.get("error") == "methodNotSupported":
            status_code, error = 501, "methodNotSupported"
        body = {
            "@context": "https://w3id.org/did-resolution/v1",
            "didDocument": None,
            "didDocumentMetadata": {},
            "didResolutionMetadata": {"error": error, "errorMessage": exc.detail},
        }
        return JSONResponse(body, status_code=status_code, media_type=_RESOLUTION_MEDIA)
    result = resolution.to_json()
    gone = bool(resolution.document_metadata.get("deactivated"))
    return JSONResponse(result, status_code=410 if gone else 200, media_type=_RESOLUTION_MEDIA)


@router.get("/identifiers/{did}", summary="Resolve a DID (did:key, did:simtrust) with metadata")
def resolve_did(
    did: str,
    rt: CurrentRuntime,
    versionId: str | None = None,  # noqa: N803 - DID Resolution parameter name
    versionTime: datetime | None = None,  # noqa: N803 - DID Resolution parameter name
) -> dict[str, Any]:
    resolution = rt.identity.resolve(did, version_id=versionId, version_time=versionTime)
    return resolution.to_json()
