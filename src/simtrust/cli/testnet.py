"""``simtrust testnet``: N local validators on loopback (``docs/network.md``, "Testnet")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simtrust.cli._common import console, emit_json
from simtrust.ledger import parse_hex_id
from simtrust.ledger.net import Testnet

__all__ = ["NAME", "app"]

NAME = "testnet"

app = typer.Typer(name=NAME, help="Local consortium test networks.", no_args_is_help=True)

DirOpt = Annotated[
    Path, typer.Option("--dir", help="Directory of the testnet (genesis, keys, data, logs).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


def _describe(directory: Path, probe: bool) -> dict[str, Any]:

    net = Testnet.load(directory)
    nodes = []
    for info in net.nodes:
        row: dict[str, Any] = {"id": info.id, "api": info.api, "p2p": info.p2p,
                               "running": net.running(info.id), "log": str(info.log_file),
                               "api_key_file": str(info.api_key_file)}
        if probe and row["running"]:
            client = net.client(info.id)
            try:
                status = client.status()
                row.update(round=status["round"], finalized=status["finalized"],
                           links=status["links"])
            except Exception:  # noqa: BLE001 - a node that does not answer is reported as such
                row["answering"] = False
            finally:
                client.close()
        nodes.append(row)
    return {"directory": str(directory), "network": net.network,
            "genesis": str(net.genesis_file), "nodes": nodes}


def _print(data: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(data)
        return
    table = Table(title=f"testnet {data['network']}")
    for column in ("id", "api", "p2p", "running", "round", "finalized"):
        table.add_column(column)
    for n in data["nodes"]:
        table.add_row(*(str(n.get(c, "")) for c in ("id", "api", "p2p", "running", "round",
                                                     "finalized")))
    console.print(table)
    console.print(f"genesis: {data['genesis']}")
    console.print(f"API keys: {data['directory']}/node-<id>/api-key;"
                  f" logs: {data['directory']}/node-<id>/node.log")


@app.command("up")
def up(
    count: Annotated[int, typer.Argument(help="Number of validators (1..16).", min=1, max=16)],
    directory: DirOpt = Path("testnet"),
    json_out: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 60.0,
    token_issuer: Annotated[
        list[str] | None,
        typer.Option("--token-issuer", help="Public key (hex) that may create settlement "
                     "tokens; repeat for several. Default: any funded key."),
    ] = None,
) -> None:
    """Create a genesis and keys for COUNT validators and start them on 127.0.0.1."""

    issuers = [parse_hex_id(k, "token issuer key") for k in token_issuer or []]
    net = Testnet.create(directory.resolve(), count, token_issuers=issuers)
    try:
        net.up(detach=True, timeout=timeout)
    except Exception:
        net.down()
        raise
    _print(_describe(directory.resolve(), probe=False), json_out)


@app.command("down")
def down(directory: DirOpt = Path("testnet"), json_out: JsonOpt = False) -> None:
    """Stop every validator of the testnet (its data stays for inspection)."""

    net = Testnet.load(directory.resolve())
    net.down()
    if json_out:
        emit_json({"directory": str(directory.resolve()), "stopped": len(net.nodes)})
    else:
        console.print(f"stopped {len(net.nodes)} validators")


@app.command("status")
def status(directory: DirOpt = Path("testnet"), json_out: JsonOpt = False) -> None:
    """Addresses of each validator, whether it runs, its round and finalized count."""
    _print(_describe(directory.resolve(), probe=True), json_out)
