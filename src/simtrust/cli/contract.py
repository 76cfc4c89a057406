"""``simtrust contract``: contracts on the ledger of the data directory (issue 15 item 1).

A contract is a state chain of ``contract`` payloads finalized on the ledger
(``docs/settlement.md``, "Contracts on the ledger"). ``create`` starts one
under a named transition code, ``transition`` consumes its current state with
the parties' signatures (key files from ``simtrust settle keygen``), ``show``,
``history`` and ``list`` read what the node's engine holds. Unreadable input
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.cli.settle import JsonOpt, _read_json, _signer
from simtrust.errors import InvalidInput
from simtrust.settlement import (
    CONTRACT_CODES,
    code_hash,
    create_payload,
    submit_contract,
    transition_payload,
)

__all__ = ["NAME", "app"]

NAME = "contract"

app = typer.Typer(
    name=NAME,
    help="Contracts on the ledger: create, transition with the parties' signatures, query.",
    no_args_is_help=True,
)

IdArg = Annotated[str, typer.Argument(help="The contract's id.")]


def _object(path: Path, what: str) -> dict[str, Any]:
    value = _read_json(path, what)
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} {path}: must be a JSON object")
    return value


def _print(document: Any, json_out: bool) -> None:
    if json_out:
        emit_json(document)
        return
    rows = document if isinstance(document, list) else [document]
    for row in rows:
        console.print("  ".join(f"{k}={v}" for k, v in row.items() if k != "state"))
        if isinstance(row, dict) and "state" in row:
            console.print_json(data=row["state"])


@app.command("codes")
def codes(json_out: JsonOpt = False) -> None:
    """Transition codes this node runs: name and code hash."""
    _print([{"name": n, "code": code_hash(f)} for n, f in sorted(CONTRACT_CODES.items())],
           json_out)


@app.command("create")
def create(
    contract: IdArg,
    code: Annotated[str, typer.Option("--code", help="Transition code name (see `codes`).")],
    state: Annotated[Path, typer.Option("--state", help="Initial state (JSON object).")],
    json_out: JsonOpt = False,
) -> None:
    """Create a contract with its first state; prints the outcome once finalized."""
    if code not in CONTRACT_CODES:
        raise InvalidInput(f"unknown code {code!r}; known: {', '.join(sorted(CONTRACT_CODES))}")
    first = _object(state, "state")
    payload = create_payload(contract, code_hash(CONTRACT_CODES[code]), first)
    rt = open_runtime()
    try:
        outcome = submit_contract(rt.ledger, rt.contracts, _body(payload))
    finally:
        rt.close()
    _print(outcome, json_out)


@app.command("transition")
def transition(
    contract: IdArg,
    data: Annotated[Path, typer.Option("--input", help="The transition's input (JSON object).")],
    key: Annotated[list[Path], typer.Option("--key", help="A signing party's key file; repeat.")],
    json_out: JsonOpt = False,
) -> None:
    """Consume the contract's current state with the given parties' signatures."""
    body = _object(data, "input")
    signers = [_signer(path) for path in key]
    rt = open_runtime()
    try:
        current = rt.contracts.state(contract)
        payload = transition_payload(contract, current["state_hash"], body, signers)
        outcome = submit_contract(rt.ledger, rt.contracts, _body(payload))
    finally:
        rt.close()
    _print(outcome, json_out)


def _body(payload: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(payload)
    return value


@app.command("show")
def show(contract: IdArg, json_out: JsonOpt = False) -> None:
    """The contract's current state, sequence and state hash."""
    rt = open_runtime()
    try:
        _print(rt.contracts.state(contract), json_out)
    finally:
        rt.close()


@app.command("history")
def history(contract: IdArg, json_out: JsonOpt = False) -> None:
    """Every finalized message of the contract, applied or rejected with its reason."""
    rt = open_runtime()
    try:
        _print(rt.contracts.history(contract), json_out)
    finally:
        rt.close()


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Every contract the ledger holds."""
    rt = open_runtime()
    try:
        _print(rt.contracts.contracts(), json_out)
    finally:
        rt.close()
