"""``simtrust node``: run one consortium validator (``docs/network.md``, "Running a node")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["NAME", "app"]

NAME = "node"

app = typer.Typer(name=NAME, help="A consortium validator node.", no_args_is_help=True)


@app.command("run")
def run(
    genesis: Annotated[Path, typer.Option("--genesis", help="Genesis file (JSON).")],
    key: Annotated[Path, typer.Option("--key", help="This validator's node key file.")],
    home: Annotated[Path, typer.Option("--home", help="Data directory of this node.")],
    api: Annotated[str, typer.Option("--api", help="HTTP API address HOST:PORT.")] = (
        "127.0.0.1:8700"
    ),
    peers: Annotated[
        list[str] | None,
        typer.Option("--peers", help="Override a peer's P2P address: ID=HOST:PORT (repeat)."),
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="Bind P2P here instead of the genesis address.")
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", help="Write a new operator API key here if absent."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log link events.")] = False,
) -> None:
    """Run a validator until SIGTERM/SIGINT: ledger, consensus, P2P links, HTTP API."""
    from simtrust.ledger.net import run_node

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_node(genesis, key, home, api=api, api_key_file=api_key_file, peers=peers or [],
             listen=listen)
