"""``simtrust vc``: verify and issue verifiable credentials.

``simtrust vc verify FILE --json`` is a contract for scripts and test suites:
it prints ``{"verified": true|false, "errors": [...]}`` and exits 0 when
verified, 1 when not, 2 when the input cannot be read (one line on stderr).
FILE holds a credential or presentation (JSON, Data Integrity proofs) or a
``vc+jwt``; ``-`` reads standard input.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import ConfigError, SimtrustError
from simtrust.identity import (
    DidResolver,
    StatusChecker,
    verification_report,
    verify_credential,
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
        str, typer.Option(help="eddsa-jcs-2022 or eddsa-rdfc-2022.")
    ] = "eddsa-jcs-2022",
    json_out: Annotated[bool, typer.Option(
        "--json", help="One compact JSON line for scripts (default: indented).")] = False,
) -> None:
    """Issue a credential signed by the platform issuer (did:simtrust on the ledger)."""
    document = _read(file)
    if not isinstance(document, dict):
        _fail("a credential to issue is a JSON object")
    options: dict[str, Any] = {"cryptosuite": cryptosuite}
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
