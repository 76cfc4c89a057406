"""``simtrust fraud consortium rotate|accept|show``: the consortium's key membership protocol.

With ``coordinator`` in the consortium file (``SIMTRUST_FRAUD_CONSORTIUM``,
docs/fraud.md "Consortium membership and key rotation"): ``rotate`` (the
coordinator only) puts a signed rotation on the ledger that seals a fresh
epoch key to each member's keyAgreement key, ``--add DID`` / ``--remove DID``
changing the membership; ``accept`` catches this member up with the ledger
and prints whether it applied a rotation (``MESSAGE_ID``) or why it refused
it (exit 1); ``show`` prints coordinator, sequence, epochs and members. No
command prints a key. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from simtrust.cli._common import emit_json, open_runtime
from simtrust.errors import InvalidInput, NotFound, Rejected

__all__ = ["app"]

app = typer.Typer(name="consortium", no_args_is_help=True,
                  help="Consortium membership: rotate the key (coordinator), accept, show.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _print_state(state: dict[str, Any]) -> None:
    typer.echo(f"coordinator {state.get('coordinator')} (sequence {state.get('sequence', 0)})")
    typer.echo(f"current epoch {state.get('current') or '-'}; me {state.get('me')}")
    for epoch in state.get("epochs", []):
        if epoch["epoch"] == state.get("current"):
            until = "current"
        else:
            until = f"until {epoch['expires']}" if epoch["expires"] else "kept"
        typer.echo(f"  epoch {epoch['epoch']}: {until}")
    for member in state.get("members", []):
        typer.echo(f"  member {member}")


@app.command("rotate")
def rotate(
    add: Annotated[list[str] | None, typer.Option(help="Admit this DID.")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="Remove this DID.")] = None,
    epoch: Annotated[str | None, typer.Option(help="Name of the new epoch.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Coordinator: start a new key epoch for the (changed) membership."""
    for did in (*(add or ()), *(remove or ())):
        if not did.startswith("did:"):
            raise InvalidInput(f"{did!r} is not a DID")
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        message_id, made = intel.rotate(rt.ledger.issue_data, rt.identity.issuer(),
                                        now=rt.clock(), add=add or (), remove=remove or (),
                                        epoch=epoch)
        intel.catch_up(rt.ledger)
        found = intel.outcome(message_id)
        state = intel.consortium()
    finally:
        rt.close()
    if found is not None and found[0] == "refused":
        raise Rejected(found[1], f"this member refused its own rotation: {found[1]}")
    out = {"message_id": message_id.hex(), "epoch": made,
           "outcome": found[0] if found else "pending", "consortium": state}
    if json_out:
        emit_json(out)
        return
    typer.echo(f"rotation {message_id.hex()}: epoch {made} {out['outcome']}")
    _print_state(state)


@app.command("accept")
def accept(
    message_id: Annotated[str | None, typer.Argument(help="A rotation's ledger message id.")]
    = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply the rotations on the ledger; show one's outcome (exit 1 if refused)."""
    wanted = None
    if message_id is not None:
        try:
            wanted = bytes.fromhex(message_id)
        except ValueError:
            raise InvalidInput("a message id is hex") from None
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        applied = intel.catch_up(rt.ledger)
        found = intel.outcome(wanted) if wanted is not None else None
        state = intel.consortium()
    finally:
        rt.close()
    if wanted is not None and found is None:
        raise NotFound(f"this member has applied or refused no message {message_id}")
    out: dict[str, Any] = {"caught_up": applied, "consortium": state}
    if found is not None:
        out.update(message_id=message_id, outcome=found[0],
                   reason=found[1] if found[0] == "refused" else None)
    if json_out:
        emit_json(out)
    elif found is not None:
        typer.echo(f"rotation {message_id}: {found[0]}"
                   + (f" ({found[1]})" if found[0] == "refused" else ""))
    else:
        _print_state(state)
    if found is not None and found[0] == "refused":
        raise typer.Exit(1)


@app.command("show")
def show(json_out: JsonOpt = False) -> None:
    """This member's coordinator, sequence, epochs and members (no key)."""
    rt = open_runtime()
    try:
        intel = rt.fraud_intel
        intel.catch_up(rt.ledger)
        state = intel.consortium()
    finally:
        rt.close()
    if json_out:
        emit_json(state)
    else:
        _print_state(state)
