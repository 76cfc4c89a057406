"""``simtrust audit``: the tamper-evident audit trail (verify, query, anchor, prove, check-proof).

Each record's hash covers the previous one (a hash chain, ``simtrust.audit``);
anchored batches are Merkle trees (RFC 9162 §2.1) whose roots go on the ledger
(``docs/ledger.md``, "Anchors and proofs"). ``check-proof`` needs no store, so
a proof can be checked anywhere.

``receipt`` prints the signed receipt of an access decision of the capability
enforcement point (``--proof``: with its record and ledger inclusion proof);
``check-receipt`` verifies one offline (exit 0 verified, 1 refused, 2
unreadable), see ``simtrust.audit.receipts``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simtrust.audit.anchoring import anchor_pending, prove_event, verify_event_proof
from simtrust.audit.receipts import (
    issue_receipt,
    prove_receipt,
    verify_receipt,
    verify_receipt_proof,
)
from simtrust.cli._common import console, emit_json, err_console, open_runtime, progress_bar
from simtrust.errors import CryptoError, IntegrityError, InvalidInput, NotFound

__all__ = ["NAME", "app"]

NAME = "audit"

app = typer.Typer(name=NAME, help="The tamper-evident audit trail.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


@app.command("verify")
def audit_verify(json_out: JsonOpt = False) -> None:
    """Check the hash chain; name every altered, removed, inserted or reordered record."""
    rt = open_runtime()
    try:
        total = rt.audit.count()
        with progress_bar("verifying audit chain", total, enabled=not json_out) as advance:
            last = 0

            def step(n: int) -> None:
                nonlocal last
                advance(n - last)
                last = n

            breaks = rt.audit.verify(progress=step)
    finally:
        rt.close()
    if json_out:
        emit_json({
            "intact": not breaks,
            "records": total,
            "breaks": [
                {"seq": b.seq, "event_id": b.event_id, "problem": b.problem, "detail": b.detail}
                for b in breaks
            ],
        })
    elif breaks:
        for b in breaks:
            err_console.print(f"[red]{b.problem}[/red] at record {b.seq}: {b.detail}")
    else:
        console.print(f"audit chain intact: {total} records")
    if breaks:
        raise typer.Exit(1)


@app.command("query")
def audit_query(
    subject: Annotated[str | None, typer.Option(help="Only records about this subject.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only records of this tenant.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List audit records, oldest first."""
    rt = open_runtime()
    try:
        events = rt.audit.query(subject=subject, tenant_id=tenant, action=action, limit=limit)
    finally:
        rt.close()
    if json_out:
        emit_json([e.to_json() for e in events])
        return
    table = Table()
    for column in ("seq", "at", "actor", "action", "subject", "outcome", "reason"):
        table.add_column(column)
    for e in events:
        table.add_row(str(e.seq), e.at.isoformat(timespec="seconds"), e.actor, e.action,
                      e.subject, e.outcome, e.reason)
    console.print(table)


@app.command("anchor")
def audit_anchor(json_out: JsonOpt = False) -> None:
    """Anchor every audit record not anchored yet on the ledger (one Merkle root)."""

    rt = open_runtime()
    try:
        receipt = anchor_pending(rt.audit, rt.ledger)
    finally:
        rt.close()
    result = receipt.to_json() if receipt else {"anchored": 0}
    if json_out:
        emit_json(result)
    elif receipt is None:
        console.print("nothing to anchor: every audit record is anchored")
    else:
        console.print(f"anchored records {result['first']}..{result['last']} "
                      f"in ledger message {result['message_id']}")


@app.command("prove")
def audit_prove(event_id: Annotated[str, typer.Argument(help="Audit event id.")],
                json_out: Annotated[bool, typer.Option(
                    "--json", help="One compact JSON line for scripts (default: indented).")]
                = False) -> None:
    """Print the inclusion proof (JSON) of an audit event against its finalized ledger anchor."""

    rt = open_runtime()
    try:
        proof = prove_event(rt.audit, rt.ledger, event_id)
    finally:
        rt.close()
    if json_out:
        emit_json(proof)
    else:
        typer.echo(json.dumps(proof, indent=2, sort_keys=True))


@app.command("check-proof")
def audit_check_proof(
    file: Annotated[Path, typer.Argument(help="A proof printed by `simtrust audit prove`.")],
    issuer: Annotated[
        str | None, typer.Option(help="Hex Ed25519 key the anchor must be issued by.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a proof offline: anchor signature, anchored range, Merkle path. No store needed."""


    try:
        proof = json.loads(file.read_text(encoding="utf-8"))
        trusted = bytes.fromhex(issuer) if issuer else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"cannot read proof {file}: {exc}") from exc
    if not isinstance(proof, dict):
        raise InvalidInput("a proof is a JSON object")
    verified = verify_event_proof(proof, trusted_issuer=trusted)
    result = {"verified": True, "event_id": proof["event"]["event_id"],
              "anchor": proof["anchor"]["message_id"], "root": verified.root.hex()}
    if json_out:
        emit_json(result)
    else:
        console.print(f"proof verified: event {result['event_id']} is in anchor {result['anchor']}")


@app.command("receipt")
def audit_receipt(
    event_id: Annotated[str, typer.Argument(help="The decision's receipt id (audit event id).")],
    proof: Annotated[bool, typer.Option(
        "--proof", help="Add the audit record and its ledger inclusion proof.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print the node-signed receipt of one access decision (permit or deny)."""
    rt = open_runtime()
    try:
        event = rt.audit.get(event_id)
        if event is None:
            raise NotFound(f"no access decision {event_id!r}")
        if proof:
            result = prove_receipt(rt.audit, rt.ledger, event_id)
        else:
            receipt = issue_receipt(event, rt.ledger.signer)
            result = {"receipt": receipt, "claims": verify_receipt(receipt)}
    finally:
        rt.close()
    if json_out:
        emit_json(result)
    else:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))


@app.command("check-receipt")
def audit_check_receipt(
    file: Annotated[Path, typer.Argument(
        help="A compact receipt, or the JSON printed by `simtrust audit receipt --proof`.")],
    node: Annotated[
        str | None, typer.Option(help="Hex Ed25519 node key the receipt must be signed by.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a receipt (and its proof) offline; exit 0 verified, 1 refused, 2 unreadable."""
    try:
        text = file.read_text(encoding="utf-8").strip()
        trusted = bytes.fromhex(node) if node else None
        document = json.loads(text) if text.startswith("{") else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"cannot read receipt {file}: {exc}") from exc
    result: dict[str, Any]
    try:
        if document is None:
            result = {"verified": True, "receipt": verify_receipt(text, trusted_node=trusted)}
        else:
            checked = verify_receipt_proof(document, trusted_node=trusted)
            result = {"verified": True, "receipt": checked["receipt"], "anchor": checked["anchor"]}
    except (InvalidInput, CryptoError, IntegrityError) as exc:
        if json_out:
            emit_json({"verified": False, "error": exc.detail})
        else:
            err_console.print(f"receipt refused: {exc.detail}")
        raise typer.Exit(1) from exc
    if json_out:
        emit_json(result)
    else:
        claims = result["receipt"]
        console.print(f"receipt verified: {claims['decision']} {claims['action']} on "
                      f"{claims['resource']} (decision {claims['event_id']})")
