"""``simtrust pki``: tenant CAs (bring your own CA), profiles, certificates, revocation, CRLs.

Operates on the local data directory, like the other commands. ``--json`` prints one
JSON document for scripts; bad input prints one line on stderr and exits 2. CA labels
are per tenant: commands that name a CA take its label with ``--tenant``, or its EST
label (``<tenant>.<label>``) alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.table import Table

from simtrust.bootstrap import REVOCATION_REASONS, CaRecord, CertProfile, protection_from_pem
from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import InvalidInput
from simtrust.runtime import Runtime

__all__ = ["NAME", "app"]

NAME = "pki"
ACTOR = "cli"

app = typer.Typer(name=NAME, no_args_is_help=True,
                  help="Tenant CAs, certificate profiles, issued certificates, revocation, CRLs.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant that owns the CA.")]
OwnerOpt = Annotated[str | None, typer.Option(
    "--tenant", "-t", help="Tenant whose label this is (else LABEL is an EST label).")]


def _ca(rt: Runtime, label: str, tenant: str | None) -> CaRecord:
    cas = rt.bootstrap.cas
    return cas.find(tenant, label) if tenant is not None else cas.get(label)


def _profile(org: str, key_types: str, lifetime: int, max_per_hour: int) -> CertProfile:
    return CertProfile(organization=org,
                       key_types=tuple(k.strip() for k in key_types.split(",") if k.strip()),
                       lifetime_s=lifetime, max_per_hour=max_per_hour)


OrgOpt = Annotated[str, typer.Option("--org", help="Subject O of issued certificates.")]
KeyTypesOpt = Annotated[str, typer.Option("--key-types", help="p256 and/or ed25519.")]
LifetimeOpt = Annotated[int, typer.Option("--lifetime", help="Certificate lifetime, seconds.")]
RateOpt = Annotated[int, typer.Option("--max-per-hour", help="Issuance limit per SIM.")]


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file")
    return path.read_bytes()


def _write_ca(tenant: str | None, build: Callable[[Runtime], CaRecord], json_out: bool,
              line: Callable[[CaRecord], str]) -> None:
    """Run one CA-changing call on a fresh runtime (``tenant`` must exist when given),
    then print the CA as JSON or as ``line``."""
    rt = open_runtime()
    try:
        if tenant is not None:
            rt.tenants.get_tenant(tenant)
        ca = build(rt)
    finally:
        rt.close()
    if json_out:
        emit_json(ca.to_json())
    else:
        console.print(line(ca))


@app.command("ca-create")
def ca_create(label: str, tenant: TenantOpt,
              cn: Annotated[str, typer.Option("--cn", help="CA subject common name.")] = "",
              org: OrgOpt = "", key_types: KeyTypesOpt = "p256,ed25519",
              lifetime: LifetimeOpt = 7 * 86_400, max_per_hour: RateOpt = 20,
              json_out: JsonOpt = False) -> None:
    """Create a hosted CA for a tenant (P-256 key generated here, sealed by the master key)."""
    _write_ca(tenant, lambda rt: rt.bootstrap.cas.create_hosted(
        tenant, label, common_name=cn or f"{tenant} device CA",
        profile=_profile(org, key_types, lifetime, max_per_hour), actor=ACTOR), json_out,
        lambda ca: f"CA {ca.label} (EST label {ca.est_label}, {ca.ca_id}) for {tenant}: "
                   f"{ca.certificate.subject.rfc4514_string()}")


@app.command("ca-import")
def ca_import(label: str, tenant: TenantOpt,
              cert: Annotated[Path, typer.Option("--cert", help="CA certificate PEM.")],
              key: Annotated[Path, typer.Option("--key", help="CA P-256 key PEM (PKCS#8).")],
              org: OrgOpt = "", key_types: KeyTypesOpt = "p256,ed25519",
              lifetime: LifetimeOpt = 7 * 86_400, max_per_hour: RateOpt = 20,
              json_out: JsonOpt = False) -> None:
    """Register the tenant's own CA certificate and key (sealed at rest from now on)."""
    cert_pem, key_pem = _read(cert), _read(key)
    _write_ca(tenant, lambda rt: rt.bootstrap.cas.import_hosted(
        tenant, label, cert_pem=cert_pem, key_pem=key_pem,
        profile=_profile(org, key_types, lifetime, max_per_hour), actor=ACTOR), json_out,
        lambda ca: f"CA {ca.label} imported for {tenant}")


@app.command("ca-pkcs11")
def ca_pkcs11(label: str, tenant: TenantOpt,
              module: Annotated[str, typer.Option("--module", help="PKCS#11 module (.so).")],
              token: Annotated[str, typer.Option("--token", help="Token label.")],
              key_label: Annotated[str, typer.Option("--key-label", help="New key's label.")],
              pin: Annotated[str, typer.Option("--pin", prompt=True, hide_input=True,
                                               help="User PIN (sealed at rest).")],
              cn: Annotated[str, typer.Option("--cn", help="CA subject common name.")] = "",
              org: OrgOpt = "", key_types: KeyTypesOpt = "p256,ed25519",
              lifetime: LifetimeOpt = 7 * 86_400, max_per_hour: RateOpt = 20,
              json_out: JsonOpt = False) -> None:
    """Create a CA whose P-256 key is generated in a PKCS#11 token (an HSM, SoftHSM2)."""
    _write_ca(tenant, lambda rt: rt.bootstrap.cas.create_pkcs11(
        tenant, label, module=module, token_label=token, pin=pin, key_label=key_label,
        common_name=cn or f"{tenant} device CA",
        profile=_profile(org, key_types, lifetime, max_per_hour), actor=ACTOR), json_out,
        lambda ca: f"CA {ca.label} for {tenant}, key in token {token}")


@app.command("ca-delegate")
def ca_delegate(
    label: str, tenant: TenantOpt,
    cert: Annotated[Path, typer.Option("--cert", help="Its issuing CA (PEM).")],
    est_url: Annotated[str | None, typer.Option(
        "--est-url", help="est: https://host/.well-known/est (or .../est/LABEL).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="est or cmp.")] = "est",
    cmp_url: Annotated[str | None, typer.Option(
        "--cmp-url", help="cmp: http(s)://host/path of the CMP server.")] = None,
    protection: Annotated[str, typer.Option(
        "--protection", help="cmp: pbm, pbmac1 (shared secret) or signature.")] = "pbm",
    secret_file: Annotated[Path | None, typer.Option(
        "--secret-file", help="cmp MAC: file holding the shared secret (else prompted).")] = None,
    reference: Annotated[str, typer.Option(
        "--reference", help="cmp MAC: the secret's reference (senderKID).")] = "",
    client_cert: Annotated[Path | None, typer.Option(
        "--client-cert", help="cmp signature: client certificate PEM.")] = None,
    client_key: Annotated[Path | None, typer.Option(
        "--client-key", help="cmp signature: its EC/Ed25519 key PEM (sealed).")] = None,
    recipient: Annotated[str | None, typer.Option(
        "--recipient", help="cmp: recipient name (RFC 4514), default the CA subject.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a delegated CA: CSRs go to the enterprise's EST or CMP server."""
    ca_pem = _read(cert)
    if kind == "est":
        if not est_url:
            raise InvalidInput("an EST delegate needs --est-url")
        _write_ca(tenant, lambda rt: rt.bootstrap.cas.register_delegated(
            tenant, label, est_url=est_url, ca_pem=ca_pem, actor=ACTOR), json_out,
            lambda ca: f"CA {ca.label} delegated to {est_url}")
        return
    if kind != "cmp":
        raise InvalidInput("--kind is est or cmp")
    if not cmp_url:
        raise InvalidInput("a CMP delegate needs --cmp-url")
    secret = None
    if protection in ("pbm", "pbmac1"):
        secret = (_read(secret_file).decode().rstrip("\r\n") if secret_file is not None
                  else typer.prompt("CMP shared secret", hide_input=True))
    cmp = protection_from_pem(
        protection, secret=secret, reference=reference,
        client_cert_pem=None if client_cert is None else _read(client_cert),
        client_key_pem=None if client_key is None else _read(client_key))
    _write_ca(tenant, lambda rt: rt.bootstrap.cas.register_delegated(
        tenant, label, kind="cmp", cmp_url=cmp_url, cmp=cmp, cmp_recipient=recipient,
        ca_pem=ca_pem, actor=ACTOR), json_out,
        lambda ca: f"CA {ca.label} delegated to CMP server {cmp_url} ({protection})")


@app.command("profile")
def profile(label: str, tenant: OwnerOpt = None, org: OrgOpt = "",
            key_types: KeyTypesOpt = "p256,ed25519",
            lifetime: LifetimeOpt = 7 * 86_400, max_per_hour: RateOpt = 20,
            json_out: JsonOpt = False) -> None:
    """Set the certificate profile of a tenant CA."""
    _write_ca(None, lambda rt: rt.bootstrap.cas.set_profile(
        _ca(rt, label, tenant).est_label, _profile(org, key_types, lifetime, max_per_hour),
        actor=ACTOR), json_out, lambda ca: f"profile of {label}: {ca.profile.to_json()}")


@app.command("ca-list")
def ca_list(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
            json_out: JsonOpt = False) -> None:
    """List tenant CAs."""
    rt = open_runtime()
    try:
        cas = rt.bootstrap.cas.cas(tenant)
    finally:
        rt.close()
    if json_out:
        emit_json([ca.to_json() for ca in cas])
        return
    table = Table("label", "tenant", "EST label", "mode", "subject", "lifetime s",
                  "key types")
    for ca in cas:
        table.add_row(ca.label, ca.tenant_id or "", ca.est_label, ca.mode,
                      ca.certificate.subject.rfc4514_string(), str(ca.profile.lifetime_s),
                      ",".join(ca.profile.key_types))
    console.print(table)


@app.command("cacert")
def cacert(label: str, tenant: OwnerOpt = None) -> None:
    """Print a CA certificate (PEM); ``operator-tier1`` is the trust anchor of the listener."""
    rt = open_runtime()
    try:
        ca = rt.bootstrap.cas.operator_ca() if label == "operator-tier1" and tenant is None \
            else _ca(rt, label, tenant)
    finally:
        rt.close()
    typer.echo(ca.certificate.public_bytes(serialization.Encoding.PEM).decode(), nl=False)


@app.command("certs")
def certs(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
          iccid: Annotated[str | None, typer.Option("--iccid")] = None,
          limit: Annotated[int, typer.Option("--limit")] = 100, json_out: JsonOpt = False) -> None:
    """List issued certificates (newest first)."""
    rt = open_runtime()
    try:
        issued = rt.bootstrap.cas.certificates(tenant_id=tenant, iccid=iccid, limit=limit)
    finally:
        rt.close()
    if json_out:
        emit_json([c.to_json() for c in issued])
        return
    table = Table("serial", "tenant", "iccid", "not after", "status", "reason")
    for c in issued:
        table.add_row(c.serial, c.tenant_id, c.iccid, c.not_after, c.status,
                      c.revocation_reason or "")
    console.print(table)


ReasonOpt = Annotated[str, typer.Option("--reason", help="|".join(REVOCATION_REASONS))]


@app.command("revoke")
def revoke(serial: str, reason: ReasonOpt = "unspecified", json_out: JsonOpt = False) -> None:
    """Revoke one certificate by serial (hex)."""
    rt = open_runtime()
    try:
        cert = rt.bootstrap.cas.revoke(serial, reason=reason, actor=ACTOR)
        rt.bootstrap.cas.forwarder.forward()
    finally:
        rt.close()
    if json_out:
        emit_json(cert.to_json())
    else:
        console.print(f"{cert.serial}: {cert.status} ({cert.revocation_reason})")


@app.command("revoke-sim")
def revoke_sim(iccid: str, reason: ReasonOpt = "unspecified", json_out: JsonOpt = False) -> None:
    """Revoke every valid certificate of a SIM."""
    rt = open_runtime()
    try:
        serials = rt.bootstrap.cas.revoke_sim(iccid, reason=reason, actor=ACTOR, why="cli")
        rt.bootstrap.cas.forwarder.forward()
    finally:
        rt.close()
    if json_out:
        emit_json({"iccid": iccid, "revoked": serials})
    else:
        console.print(f"revoked {len(serials)} certificate(s) of {iccid}")


@app.command("crl")
def crl(label: str, out: Annotated[Path, typer.Option("--out", "-o", help="DER CRL file.")],
        tenant: OwnerOpt = None,
        pem: Annotated[bool, typer.Option("--pem", help="Write PEM instead of DER.")] = False,
        ) -> None:
    """Write the CA's current CRL."""
    rt = open_runtime()
    try:
        der = rt.bootstrap.cas.crl(_ca(rt, label, tenant).est_label)
    finally:
        rt.close()
    if pem:
        der = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    out.write_bytes(der)
    console.print(f"CRL of {label} written to {out}")
