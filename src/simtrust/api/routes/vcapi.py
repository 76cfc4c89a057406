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

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime
from simtrust.identity import identity_service, verification_report

__all__ = ["router"]

router = APIRouter(tags=["vc-api"])


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)


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
    issued = identity_service(rt).issue(body.credential, body.options)
    rt.audit.append(
        actor=who.actor,
        action="credential.issue",
        subject=str(issued.get("id", "credential")),
        outcome="success",
        details={"issuer": issued["issuer"], "type": issued.get("type")},
    )
    return {"verifiableCredential": issued}


@router.post("/credentials/verify", summary="Verify a credential (Data Integrity or vc+jwt)")
def verify_credential(
    body: VerifyCredentialRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> JSONResponse:
    service = identity_service(rt)
    return _result(
        verification_report(lambda: service.verify_credential(body.verifiableCredential))
    )


@router.post("/presentations/verify", summary="Verify a presentation with challenge and domain")
def verify_presentation(
    body: VerifyPresentationRequest, rt: CurrentRuntime, who: CurrentPrincipal
) -> JSONResponse:
    service = identity_service(rt)
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
    service = identity_service(rt)
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


@router.get("/credentials/status/{list_id:path}", summary="A published status list credential")
def status_list(list_id: str, rt: CurrentRuntime) -> dict[str, Any]:
    return identity_service(rt).published_status_list(list_id)


@router.get("/identifiers/{did}", summary="Resolve a DID (did:key, did:simtrust) with metadata")
def resolve_did(
    did: str,
    rt: CurrentRuntime,
    versionId: str | None = None,  # noqa: N803 - DID Resolution parameter name
    versionTime: datetime | None = None,  # noqa: N803 - DID Resolution parameter name
) -> dict[str, Any]:
    resolution = identity_service(rt).resolve(did, version_id=versionId, version_time=versionTime)
    return resolution.to_json()
