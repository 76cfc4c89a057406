"""``simtrust did``: create, resolve, update and deactivate did:simtrust DIDs.

Keys live in software secure elements of the data directory (sealed under the
master keyring); operations go to the ledger as ``identity`` payloads and take
effect once finalized (docs/did-method.md). ``--json`` prints one JSON object.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import SimtrustError
from simtrust.identity import (
    IdentityService,
    SecureElementSigner,
    add_key_patch,
    deactivate_operation,
    decode_multikey,
    provision_sim_identity,
    remove_key_patch,
    update_operation,
)

__all__ = ["NAME", "app"]

NAME = "did"

app = typer.Typer(name=NAME, help="did:simtrust DIDs on the ledger.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust did: error: {message}", err=True)
    raise typer.Exit(2)


def _service() -> IdentityService:
    return open_runtime().identity


def _show(value: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(value)
    else:
        for key, item in value.items():
            console.print(f"{key}: {item}")


def _outcome(service: IdentityService, operation: dict[str, Any]) -> dict[str, Any]:
    outcome = service.submit_operation(operation)
    if outcome.outcome != "applied":
        _fail(f"the ledger refused the operation: {outcome.reason}")
    return {"did": outcome.did, "versionId": str(outcome.version), "outcome": outcome.outcome}


def _current_signer(
    service: IdentityService, did: str, element_id: str
) -> tuple[SecureElementSigner, dict[str, Any], str]:
    """The element key that is a capabilityInvocation key of ``did`` now."""
    resolution = service.resolve(did)
    document = resolution.document
    element = service.element(element_id)
    by_key = {element.public_key(label): label for label in element.labels()}
    methods = {m["id"]: m for m in document.get("verificationMethod", [])}
    for vm_id in document.get("capabilityInvocation", []):
        key = decode_multikey(methods[vm_id]["publicKeyMultibase"])[1]
        if key in by_key:
            return (
                element.signer(by_key[key], vm_id),
                document,
                str(resolution.document_metadata["versionId"]),
            )
    _fail(f"secure element {element_id} holds no capabilityInvocation key of {did}")


@app.command("create")
def create(
    element_id: Annotated[
        str | None, typer.Option("--element", help="Secure element id (default: new).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a DID whose key is generated inside a secure element."""
    try:
        service = _service()
        element = service.element(element_id or f"did-{secrets.token_hex(6)}")
        sim = provision_sim_identity(
            element,
            network=service.network,
            now=service.now(),
            label=f"did-key-{secrets.token_hex(3)}",
        )
        result = _outcome(service, sim.operation)
    except SimtrustError as exc:
        _fail(exc.detail)
    _show({**result, "element": element.element_id}, json_out)


@app.command("resolve")
def resolve(
    did: str,
    version_id: Annotated[str | None, typer.Option("--version-id")] = None,
    version_time: Annotated[
        datetime | None,
        typer.Option("--version-time", formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ"]),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Resolve a DID (current, ``--version-id`` or ``--version-time``) with its metadata."""
    try:
        if version_time is not None and version_time.tzinfo is None:
            version_time = version_time.replace(tzinfo=UTC)
        resolution = _service().resolve(did, version_id=version_id, version_time=version_time)
    except SimtrustError as exc:
        _fail(exc.detail)
    if json_out:
        emit_json(resolution.to_json())
    else:
        console.print_json(data=resolution.to_json())


@app.command("update")
def update(
    did: str,
    element_id: Annotated[
        str, typer.Option("--element", help="Secure element holding the controller key.")
    ],
    add_service: Annotated[
        list[str] | None, typer.Option("--add-service", help="FRAGMENT=TYPE=URL")
    ] = None,
    remove_service: Annotated[
        list[str] | None, typer.Option("--remove-service", help="FRAGMENT")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Replace the controller key with a new one.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add/remove services and rotate the key; signed inside the secure element."""
    try:
        service = _service()
        signer, document, version = _current_signer(service, did, element_id)
        patches: list[dict[str, Any]] = []
        for spec in add_service or []:
            parts = spec.split("=", 2)
            if len(parts) != 3:
                _fail("--add-service takes FRAGMENT=TYPE=URL")
            patches.append(
                {
                    "op": "add-service",
                    "service": {
                        "id": f"{did}#{parts[0]}",
                        "type": parts[1],
                        "serviceEndpoint": parts[2],
                    },
                }
            )
        patches += [{"op": "remove-service", "id": f"{did}#{f}"} for f in remove_service or []]
        if rotate:
            element = service.element(element_id)
            label = f"did-key-{secrets.token_hex(3)}"
            public = element.generate_key(label)
            fragment = label.removeprefix("did-")
            relationships = [
                r
                for r in (
                    "authentication",
                    "assertionMethod",
                    "capabilityInvocation",
                    "capabilityDelegation",
                )
                if signer.verification_method in document.get(r, [])
            ]
            patches += [
                add_key_patch(did, fragment, public, relationships),
                remove_key_patch(signer.verification_method),
            ]
        if not patches:
            _fail("nothing to update (use --add-service, --remove-service or --rotate)")
        result = _outcome(
            service,
            update_operation(
                signer, did=did, previous_version=version, patches=patches, now=service.now()
            ),
        )
    except SimtrustError as exc:
        _fail(exc.detail)
    _show(result, json_out)


@app.command("deactivate")
def deactivate(
    did: str,
    element_id: Annotated[
        str, typer.Option("--element", help="Secure element holding the controller key.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Deactivate a DID for good (its history stays resolvable)."""
    try:
        service = _service()
        signer, _, version = _current_signer(service, did, element_id)
        result = _outcome(
            service,
            deactivate_operation(signer, did=did, previous_version=version, now=service.now()),
        )
    except SimtrustError as exc:
        _fail(exc.detail)
    _show(result, json_out)
