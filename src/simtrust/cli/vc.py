"""``simtrust vc``: verify and issue verifiable credentials.

``simtrust vc verify FILE --json`` is a contract for scripts and test suites:
it prints ``{"verified": true|false, "errors": [...]}`` and exits 0 when
verified, 1 when not, 2 when the input cannot be read (one line on stderr).
FILE holds a credential or presentation (JSON, Data Integrity proofs) or a
``vc+jwt``; ``-`` reads standard input.

Also: ``offer`` (an OpenID4VCI pre-authorized offer), ``request`` and
``request-result`` (OpenID4VP), ``statement`` (paid verifications of a
period), ``capability-grant`` and ``capability-check`` (the enforcement
point: exit 0 permit, 1 deny; each decision audited and receipted, see
``simtrust audit receipt``). Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from simtrust.audit.receipts import record_decision
from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import ConfigError, SimtrustError
from simtrust.identity import (
    DidResolver,
    StatusChecker,
    capability_token,
    verification_report,
    verification_statement,
    verify_credential,
    verify_enveloped_vc_jwt,
    verify_presentation,
    verify_vc_jwt,
)

__all__ = ["NAME", "app"]

NAME = "vc"

app = typer.Typer(name=NAME, help="Verifiable credentials: verify and issue.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust vc: error: {message}", err=True)
    raise typer.Exit(2)


def _read(path: Path) -> object:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        text = raw.decode("utf-8").strip()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail(f"{path} is not UTF-8 text")
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as exc:
            _fail(f"{path} is not valid JSON: {exc}")
    if text.count(".") == 2 and " " not in text:
        return text
    _fail(f"{path} holds neither JSON nor a compact JWT")


@app.command("verify")
def verify(
    file: Annotated[
        Path, typer.Argument(help="Credential, presentation (JSON) or vc+jwt; - for stdin.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    challenge: Annotated[str | None, typer.Option(help="Expected presentation challenge.")] = None,
    domain: Annotated[str | None, typer.Option(help="Expected presentation domain.")] = None,
    holder_binding: Annotated[
        bool,
        typer.Option(
            "--holder-binding",
            help="Require the presentation's holder to have signed it and to be each subject.",
        ),
    ] = False,
) -> None:
    """Verify a credential or presentation; exit 0 verified, 1 not verified, 2 unreadable."""
    document = _read(file)
    resolver: DidResolver
    status: StatusChecker | None
    try:
        service = open_runtime().identity
        resolver, status, now = service.resolver, service.status_checker, service.now()
    except ConfigError:
        # No data directory: did:key proofs still verify; did:simtrust and status do not.
        resolver, status, now = DidResolver(), None, datetime.now(UTC)

    def run() -> object:
        if isinstance(document, str):
            return verify_vc_jwt(document, resolver=resolver, now=now, status=status)
        if isinstance(document, dict) and "proof" not in document and document.get("type") in (
            "EnvelopedVerifiableCredential", ["EnvelopedVerifiableCredential"]
        ):
            return verify_enveloped_vc_jwt(document, resolver=resolver, now=now, status=status)
        if isinstance(document, dict) and "VerifiablePresentation" in str(document.get("type")):
            return verify_presentation(
                document,
                resolver=resolver,
                now=now,
                challenge=challenge,
                domain=domain,
                status=status,
                require_holder_binding=holder_binding,
            )
        return verify_credential(document, resolver=resolver, now=now, status=status)

    report = verification_report(run)
    if json_out:
        emit_json({"verified": report["verified"], "errors": report["errors"]})
    elif report["verified"]:
        console.print("[green]verified[/green]")
    else:
        for error in report["errors"]:
            console.print(f"[red]not verified[/red]: {error['reason']}: {error['detail']}")
    raise typer.Exit(0 if report["verified"] else 1)


@app.command("issue")
def issue(
    file: Annotated[Path, typer.Argument(help="Unsigned credential (JSON); - for stdin.")],
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Add a status entry: revocation or suspension (repeatable)."),
    ] = None,
    cryptosuite: Annotated[
        str | None, typer.Option(help="eddsa-jcs-2022 (default) or eddsa-rdfc-2022.")
    ] = None,
    securing: Annotated[str, typer.Option(
        help="data-integrity (a proof) or vc+jwt (VC-JOSE, returned enveloped).")
    ] = "data-integrity",
    json_out: Annotated[bool, typer.Option(
        "--json", help="One compact JSON line for scripts (default: indented).")] = False,
) -> None:
    """Issue a credential signed by the platform issuer (did:simtrust on the ledger)."""
    document = _read(file)
    if not isinstance(document, dict):
        _fail("a credential to issue is a JSON object")
    options: dict[str, Any] = {"securingMechanism": securing}
    if cryptosuite is not None:
        options["cryptosuite"] = cryptosuite
    if status:
        options["credentialStatus"] = {"type": "BitstringStatusListEntry", "statusPurpose": status}
    try:
        issued = open_runtime().identity.issue(document, options)
    except SimtrustError as exc:
        _fail(exc.detail)
    if json_out:
        emit_json(issued)
    else:
        typer.echo(json.dumps(issued, indent=2, sort_keys=True))


@app.command("issue-sd-jwt")
def issue_sd_jwt_command(
    claims: Annotated[Path, typer.Argument(help="The claims (JSON object); - for stdin.")],
    vct: Annotated[str, typer.Option(help="The SD-JWT VC type (a URI).")],
    holder_jwk: Annotated[Path, typer.Option(help="The holder's public JWK (JSON file).")],
    disclose: Annotated[list[str] | None, typer.Option(
        help="A selectively disclosable claim (repeatable).")] = None,
    not_revocable: Annotated[bool, typer.Option(
        "--not-revocable", help="No status list entry.")] = False,
) -> None:
    """Issue an SD-JWT VC (dc+sd-jwt) bound to the holder's key; print it as JSON."""
    document, jwk = _read(claims), _read(holder_jwk)
    emit_json(_service_call(lambda s: s.issue_sd_jwt_vc(
        vct=vct, claims=document, disclosable=list(disclose or []), holder=jwk,
        revocable=not not_revocable)))  # fmt: skip


def _service_call(call: Any) -> Any:
    """``call(identity service)`` on a runtime closed before the answer is printed."""
    rt = open_runtime()
    try:
        return call(rt.identity)
    except SimtrustError as exc:
        _fail(exc.detail)
    finally:
        rt.close()


@app.command("offer")
def offer(
    configuration: Annotated[str, typer.Argument(help="SimtrustKyc or DeviceCredential.")],
    claims: Annotated[Path, typer.Option(help="The offered claims (JSON object); - for stdin.")],
    tx_code: Annotated[bool, typer.Option("--tx-code", help="Require a 6-digit PIN.")] = False,
    deferred: Annotated[bool, typer.Option(
        "--deferred", help="Issue only after the offer is approved (OpenID4VCI §9).")] = False,
    tenant: Annotated[str | None, typer.Option(
        help="The tenant the credential is issued for.")] = None,
    authorization_code: Annotated[bool, typer.Option(
        "--authorization-code",
        help="Offer the authorization code grant: a user of --tenant signs in to authorize.",
    )] = False,
) -> None:
    """Create an OpenID4VCI credential offer; print it (URL, PIN) as JSON."""
    document = _read(claims)
    if not isinstance(document, dict):
        _fail("the claims are a JSON object")
    emit_json(_service_call(lambda s: s.oid4vci.create_offer(
        configuration, document, now=s.now(), tx_code=tx_code, deferred=deferred,
        tenant_id=tenant, authorization_code=authorization_code)))  # fmt: skip


@app.command("request")
def request(
    dcql: Annotated[Path, typer.Option(help="DCQL query (JSON); - for stdin.")],
    relying_party: Annotated[str, typer.Option(help="Who asks (a DID or a name).")],
) -> None:
    """Create an OpenID4VP presentation request; print its openid4vp:// URL and id."""
    query = _read(dcql)
    emit_json(_service_call(lambda s: s.oid4vp.create_request(
        relying_party, now=s.now(), dcql_query=query)))  # fmt: skip


@app.command("request-result")
def request_result(request_id: Annotated[str, typer.Argument()]) -> None:
    """The outcome of an OpenID4VP request (disclosed claims once verified)."""
    emit_json(_service_call(lambda s: s.oid4vp.result(request_id, None)))


def _moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{name} is an RFC 3339 date-time, got {text!r}")
    if moment.tzinfo is None:
        _fail(f"{name} needs a time zone (e.g. Z)")
    return moment


@app.command("statement")
def statement(
    start: Annotated[str, typer.Option(help="Period start (RFC 3339).")],
    end: Annotated[str, typer.Option(help="Period end, exclusive (RFC 3339).")],
    price: Annotated[int, typer.Option(min=0, help="Minor units per verification.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "EUR",
) -> None:
    """Paid verifications of the period per issuing operator and relying party (JSON)."""
    begin, until = _moment(start, "--start"), _moment(end, "--end")
    emit_json(_service_call(lambda s: verification_statement(
        s.receipts.between(begin, until), start=begin, end=until, price_minor_units=price,
        currency=currency)))  # fmt: skip


@app.command("capability-grant")
def capability_grant(
    grantee: Annotated[str, typer.Argument(help="The grantee's DID.")],
    resource: Annotated[str, typer.Argument(help="Dataset URL or URN.")],
    action: Annotated[list[str], typer.Option("--action", help="Allowed action (repeatable).")],
    depth: Annotated[int, typer.Option(min=0, max=8, help="Further delegations allowed.")] = 0,
    rate: Annotated[int | None, typer.Option(min=1, help="Accesses per minute.")] = None,
    valid_until: Annotated[str | None, typer.Option(help="End of the window (RFC 3339).")] = None,
) -> None:
    """Grant a revocable capability signed by the platform issuer; print the credential."""
    until = None if valid_until is None else _moment(valid_until, "--valid-until")
    emit_json(_service_call(lambda s: s.grant_capability(
        grantee=grantee, resource=resource, actions=action, valid_until=until,
        delegation_depth=depth, rate_per_minute=rate)))  # fmt: skip


@app.command("capability-check")
def capability_check(
    chain: Annotated[Path, typer.Argument(help="Chain (JSON array, root first) or presentation.")],
    action: Annotated[str, typer.Option(help="The action asked for.")],
    resource: Annotated[str, typer.Option(help="The resource asked for.")],
) -> None:
    """Ask the enforcement point; print the decision; exit 0 permit, 1 deny, 2 unreadable."""
    document = _read(chain)
    if not isinstance(document, list | dict):
        _fail("a capability chain is a JSON array or a presentation object")
    rt = open_runtime()
    try:
        service = rt.identity
        decision = service.capabilities.check(
            capability_token(document), action=action, resource=resource, now=service.now())
        # Recorded (on disk) and receipted before the answer is printed, like the API.
        event, receipt = record_decision(rt.audit, rt.ledger.signer, requester="cli",
                                         resource=resource, action=action,
                                         decision=decision.to_json())  # fmt: skip
    except SimtrustError as exc:
        _fail(exc.detail)
    finally:
        rt.close()
    emit_json({**decision.to_json(), "receipt": receipt, "receiptId": event.event_id})
    raise typer.Exit(0 if decision.permit else 1)
