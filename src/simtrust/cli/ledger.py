"""``simtrust ledger``: submit, get, balance, transfer and status on the data directory's node.

Messages are signed by the node key unless ``--key-file`` names a file holding
a 32-byte Ed25519 seed in hex; parents are chosen by tip selection
(``docs/ledger.md``, "Command line"). ``--json`` prints one JSON object.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import InvalidInput
from simtrust.ledger import (
    Ed25519Signer,
    LedgerNode,
    balance_json,
    encode_tagged_data,
    message_json,
    parse_hex_id,
    parse_public_key,
    payload_code,
)

__all__ = ["NAME", "app"]

NAME = "ledger"

app = typer.Typer(name=NAME, help="The ledger node: messages, value, state.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="File with a hex Ed25519 seed (default: the node key)."),
]


@contextmanager
def _session() -> Iterator[LedgerNode]:
    rt = open_runtime()
    try:
        yield rt.ledger
    finally:
        rt.close()


def _signer(node: LedgerNode, key_file: Path | None) -> Ed25519Signer:
    if key_file is None:
        return node.signer
    try:
        seed = bytes.fromhex(key_file.read_text(encoding="utf-8").strip())
    except ValueError as exc:
        raise InvalidInput("the key file must hold a hex Ed25519 seed") from exc
    return Ed25519Signer(seed)


def _show(value: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(value)
        return
    for key, item in value.items():
        console.print(f"[bold]{key}[/bold]: {item}")


@app.command("submit")
def submit(
    data: Annotated[str | None, typer.Option("--data", help="Text of a tagged-data message.")]
    = None,
    tag: Annotated[str, typer.Option("--tag", help="Tag of the tagged-data message.")] = "",
    payload_type: Annotated[
        str | None, typer.Option("--payload-type", help="Payload type name for --payload-hex.")
    ] = None,
    payload_hex: Annotated[str | None, typer.Option("--payload-hex", help="Payload bytes.")]
    = None,
    message_hex: Annotated[
        str | None, typer.Option("--message", help="A complete signed message in hex.")
    ] = None,
    key_file: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Submit a message: tagged data, any payload, or an already signed message."""
    with _session() as node:
        if message_hex is not None:
            try:
                raw = bytes.fromhex(message_hex)
            except ValueError as exc:
                raise InvalidInput("--message must be hex") from exc
            result = node.submit(raw)
        elif payload_hex is not None:
            if payload_type is None:
                raise InvalidInput("--payload-hex needs --payload-type")
            try:
                payload = bytes.fromhex(payload_hex)
            except ValueError as exc:
                raise InvalidInput("--payload-hex must be hex") from exc
            result = node.issue(payload_code(payload_type), payload,
                                signer=_signer(node, key_file))
        elif data is not None:
            payload = encode_tagged_data(tag.encode(), data.encode())
            result = node.issue(0, payload, signer=_signer(node, key_file))
        else:
            raise InvalidInput("give --data, --payload-hex or --message")
        _show(result.to_json(), json_out)


@app.command("get")
def get(message_id: str, json_out: JsonOpt = False) -> None:
    """Show one message, decoded, with its state."""
    with _session() as node:
        mid = parse_hex_id(message_id)
        _show(message_json(node.get_message(mid), node.status(mid)), json_out)


@app.command("balance")
def balance(
    owner: Annotated[str | None, typer.Argument(help="Public key in hex (default: node key).")]
    = None,
    key_file: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Exact balance of a public key: base units and native tokens."""
    with _session() as node:
        key = parse_public_key(owner) if owner else _signer(node, key_file).public_key
        _show(balance_json(node.balance(key)), json_out)


@app.command("transfer")
def transfer(
    to: Annotated[str, typer.Option("--to", help="Recipient public key in hex.")],
    amount: Annotated[int, typer.Option("--amount", help="Base units (or tokens with --token).")],
    token: Annotated[str | None, typer.Option("--token", help="Native token id in hex.")] = None,
    key_file: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Send value from the node key (or --key-file) to a public key."""
    with _session() as node:
        signer = _signer(node, key_file)
        token_id = parse_hex_id(token, "token id") if token else None
        mid = node.transfer(signer, parse_public_key(to), amount, token=token_id)
        _show({"message_id": mid.hex(), **node.status(mid)}, json_out)


@app.command("status")
def status(
    message_id: Annotated[str | None, typer.Argument(help="Message id (default: node summary).")]
    = None,
    json_out: JsonOpt = False,
) -> None:
    """State of a message (pending, solid, finalized, conflicting), or of the node."""
    with _session() as node:
        if message_id is None:
            _show(node.info(), json_out)
        else:
            _show(node.status(parse_hex_id(message_id)), json_out)
