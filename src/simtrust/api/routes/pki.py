"""PKI: tenant CAs (bring your own CA), certificate profiles, certificates, revocation, CRL, OCSP.

A tenant key manages its own tenant's CAs and certificates; an operator key any
tenant's. Registration modes: ``hosted`` (key generated here, sealed by the master
key), ``pkcs11`` (key generated in a PKCS#11 token, PIN sealed), ``imported``
(the tenant's CA certificate and key, sealed from then on),
``delegated`` (the enterprise's own EST server, ``delegate_kind`` ``est``, or CMP
server, ``cmp``, issues; a CMP MAC secret or client key is sealed and never
returned). Revocation by serial or for every certificate of a SIM.
``POST /v1/pki/ocsp`` answers RFC 6960 requests (also served by the bootstrap
listener at ``/ocsp``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from simtrust.api.deps import CurrentPrincipal, CurrentRuntime, Principal
from simtrust.api.problems import problem_responses
from simtrust.bootstrap import REVOCATION_REASONS, CaRecord, CertProfile, protection_from_pem
from simtrust.errors import InvalidInput, NotFound
from simtrust.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/v1/pki", tags=["pki"])

_ERRORS = problem_responses({
    400: "Invalid input",
    401: "No or unknown API key",
    403: "Not allowed for this key",
    404: "No such CA, certificate or SIM",
    409: "Label already in use",
})
_REASON = "|".join(REVOCATION_REASONS)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization: str = Field(default="", max_length=64)
    key_types: list[Literal["p256", "ed25519"]] = Field(default=["p256", "ed25519"],
                                                        min_length=1)
    lifetime_s: int = Field(default=7 * 86_400, ge=60, le=825 * 86_400)
    san_did: bool = True
    san_imei: bool = True
    san_iccid: bool = True
    max_per_hour: int = Field(default=20, ge=1, le=100_000)

    def profile(self) -> CertProfile:
        return CertProfile.from_json(self.model_dump())


class CaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = Field(None, description="Defaults to the key's tenant")
    label: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                       description="The tenant's label for the CA (unique per tenant); "
                       "its EST label is <tenant>.<label>")
    mode: Literal["hosted", "imported", "delegated", "pkcs11"] = "hosted"
    common_name: str | None = Field(None, max_length=64, description="hosted: CA subject CN")
    cert_pem: str | None = Field(None, description="imported/delegated: the CA certificate")
    key_pem: str | None = Field(None, description="imported: the CA's P-256 key (PKCS#8)",
                                repr=False)
    est_url: str | None = Field(None, description="delegated est: https://.../.well-known/est")
    delegate_kind: Literal["est", "cmp"] = Field(
        "est", description="delegated: the enterprise's EST (RFC 7030) or CMP (RFC 9483) server")
    cmp_url: str | None = Field(None, max_length=512,
                                description="delegated cmp: http(s)://host/path (RFC 6712)")
    cmp_protection: Literal["pbm", "pbmac1", "signature"] = Field(
        "pbm", description="delegated cmp: MAC (PasswordBasedMac, PBMAC1) or signature")
    cmp_secret: str | None = Field(None, max_length=1024, repr=False,
                                   description="pbm/pbmac1: shared secret (sealed, never "
                                   "returned)")
    cmp_reference: str = Field("", max_length=128,
                               description="pbm/pbmac1: the secret's reference (senderKID)")
    cmp_client_cert_pem: str | None = Field(None, description="signature: client certificate")
    cmp_client_key_pem: str | None = Field(None, repr=False,
                                           description="signature: its EC/Ed25519 key (sealed)")
    cmp_recipient: str | None = Field(None, max_length=512,
                                      description="cmp: recipient name (RFC 4514); default "
                                      "the CA's subject")
    pkcs11_module: str | None = Field(None, description="pkcs11: the token's module path")
    token_label: str | None = Field(None, description="pkcs11: the token label")
    pin: str | None = Field(None, description="pkcs11: user PIN (sealed, never returned)")
    key_label: str | None = Field(None, description="pkcs11: label of the key made there")
    profile: ProfileIn | None = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="unspecified", pattern=f"^({_REASON})$")


def _tenant(who: Principal, requested: str | None) -> str:
    tenant = requested if requested is not None else who.tenant_id
    if tenant is None:
        raise InvalidInput("name the tenant_id", field="tenant_id")
    who.check_tenant(tenant)
    return tenant


def _find(rt: Runtime, who: Principal, label: str, tenant_id: str | None) -> CaRecord:
    """The CA a path names: a label of the caller's tenant (a tenant key), of
    ``tenant_id`` (the operator), or, for the operator without ``tenant_id``, an
    EST label. Labels are per tenant, so a tenant key's lookup never reads another
    tenant's CAs; what it cannot see answers as missing (the store's own error)."""
    missing = NotFound(f"unknown CA {label!r}", reason="unknown-ca")
    tenant = who.scope(tenant_id)
    try:
        ca = rt.bootstrap.cas.find(tenant, label) if tenant is not None else \
            rt.bootstrap.cas.get(label)
    except NotFound:
        raise missing from None
    if ca.tenant_id is None:
        raise missing
    who.check_tenant(ca.tenant_id, missing)
    return ca


@router.post("/cas", status_code=status.HTTP_201_CREATED, responses=_ERRORS,
             summary="Register a tenant's issuing CA (hosted, imported or delegated)")
def register_ca(body: CaIn, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    tenant = _tenant(who, body.tenant_id)
    rt.tenants.get_tenant(tenant)
    cas = rt.bootstrap.cas
    profile = (body.profile or ProfileIn()).profile()
    if body.mode == "hosted":
        record = cas.create_hosted(tenant, body.label, common_name=body.common_name or
                                   f"{tenant} device CA", profile=profile, actor=who.actor)
    elif body.mode == "imported":
        if not body.cert_pem or not body.key_pem:
            raise InvalidInput("imported CAs need cert_pem and key_pem", field="key_pem")
        record = cas.import_hosted(tenant, body.label, cert_pem=body.cert_pem.encode(),
                                   key_pem=body.key_pem.encode(), profile=profile,
                                   actor=who.actor)
    elif body.mode == "pkcs11":
        if not (body.pkcs11_module and body.token_label and body.pin and body.key_label):
            raise InvalidInput("pkcs11 CAs need pkcs11_module, token_label, pin and key_label",
                               field="pkcs11_module")
        record = cas.create_pkcs11(tenant, body.label, module=body.pkcs11_module,
                                   token_label=body.token_label, pin=body.pin,
                                   key_label=body.key_label,
                                   common_name=body.common_name or f"{tenant} device CA",
                                   profile=profile, actor=who.actor)
    elif body.delegate_kind == "cmp":
        if not body.cert_pem or not body.cmp_url:
            raise InvalidInput("CMP-delegated CAs need cert_pem and cmp_url", field="cmp_url")
        protection = protection_from_pem(
            body.cmp_protection, secret=body.cmp_secret, reference=body.cmp_reference,
            client_cert_pem=None if body.cmp_client_cert_pem is None else
            body.cmp_client_cert_pem.encode(),
            client_key_pem=None if body.cmp_client_key_pem is None else
            body.cmp_client_key_pem.encode())
        record = cas.register_delegated(tenant, body.label, kind="cmp", cmp_url=body.cmp_url,
                                        cmp=protection, cmp_recipient=body.cmp_recipient,
                                        ca_pem=body.cert_pem.encode(), profile=profile,
                                        actor=who.actor)
    else:
        if not body.cert_pem or not body.est_url:
            raise InvalidInput("delegated CAs need cert_pem and est_url", field="est_url")
        record = cas.register_delegated(tenant, body.label, est_url=body.est_url,
                                        ca_pem=body.cert_pem.encode(), profile=profile,
                                        actor=who.actor)
    return record.to_json()


@router.get("/cas", responses=_ERRORS, summary="List tenant CAs")
def list_cas(rt: CurrentRuntime, who: CurrentPrincipal,
             tenant_id: str | None = None) -> list[dict[str, Any]]:
    return [ca.to_json() for ca in rt.bootstrap.cas.cas(who.scope(tenant_id))]


_TENANT_Q = Query(None, description="operator: the tenant whose label this is "
                  "(without it the path names an EST label, ``<tenant>.<label>``)")


@router.get("/cas/{label}", responses=_ERRORS, summary="One tenant CA")
def get_ca(label: str, rt: CurrentRuntime, who: CurrentPrincipal,
           tenant_id: str | None = _TENANT_Q) -> dict[str, Any]:
    return _find(rt, who, label, tenant_id).to_json()


@router.put("/cas/{label}/profile", responses=_ERRORS, summary="Set the certificate profile")
def set_profile(label: str, body: ProfileIn, rt: CurrentRuntime,
                who: CurrentPrincipal, tenant_id: str | None = _TENANT_Q) -> dict[str, Any]:
    who.require_admin()
    ca = _find(rt, who, label, tenant_id)
    return rt.bootstrap.cas.set_profile(ca.est_label, body.profile(),
                                        actor=who.actor).to_json()


@router.get("/cas/{label}/crl", responses={200: {"content": {"application/pkix-crl": {}}},
                                            **_ERRORS}, summary="The CA's current CRL (DER)")
def get_crl(label: str, rt: CurrentRuntime) -> Response:
    """Public, as CRLs are (RFC 5280 §5): the path names the CA's EST label."""
    ca = rt.bootstrap.cas.get(label)
    if ca.tenant_id is None:
        raise NotFound(f"unknown CA {label!r}")
    return Response(rt.bootstrap.cas.crl(label), media_type="application/pkix-crl")


@router.get("/certificates", responses=_ERRORS, summary="Issued certificates")
def list_certificates(rt: CurrentRuntime, who: CurrentPrincipal, tenant_id: str | None = None,
                      iccid: str | None = None,
                      limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    certs = rt.bootstrap.cas.certificates(tenant_id=who.scope(tenant_id), iccid=iccid,
                                          limit=limit)
    return [c.to_json() for c in certs]


@router.get("/certificates/{serial}", responses=_ERRORS, summary="One certificate's status")
def get_certificate(serial: str, rt: CurrentRuntime, who: CurrentPrincipal) -> dict[str, Any]:
    cert = rt.bootstrap.cas.certificate(serial)
    who.check_tenant(cert.tenant_id, NotFound(f"no certificate with serial {serial}"))
    return cert.to_json()


@router.post("/certificates/{serial}/revoke", responses=_ERRORS, summary="Revoke a certificate")
def revoke_certificate(serial: str, body: RevokeIn, rt: CurrentRuntime,
                       who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    cert = rt.bootstrap.cas.certificate(serial)
    who.check_tenant(cert.tenant_id)
    return rt.bootstrap.cas.revoke(serial, reason=body.reason, actor=who.actor).to_json()


@router.post("/sims/{iccid}/revoke", responses=_ERRORS,
             summary="Revoke every certificate of a SIM")
def revoke_sim(iccid: str, body: RevokeIn, rt: CurrentRuntime,
               who: CurrentPrincipal) -> dict[str, Any]:
    who.require_admin()
    certs = rt.bootstrap.cas.certificates(iccid=iccid, limit=1)
    if not certs:
        raise NotFound(f"no certificates for SIM {iccid}")
    who.check_tenant(certs[0].tenant_id)
    serials = rt.bootstrap.cas.revoke_sim(iccid, reason=body.reason, actor=who.actor,
                                          why="api")
    return {"iccid": iccid, "revoked": serials}


@router.post("/ocsp", responses={200: {"content": {"application/ocsp-response": {}}}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/ocsp-request": {"schema": {"type": "string",
                                                         "format": "binary"}}}}},
             summary="OCSP responder (RFC 6960 Appendix A.1, POST)")
async def ocsp_post(request: Request, rt: CurrentRuntime) -> Response:
    body = await request.body()
    answer = await run_in_threadpool(rt.bootstrap.cas.ocsp_response, body)
    return Response(answer, media_type="application/ocsp-response")
