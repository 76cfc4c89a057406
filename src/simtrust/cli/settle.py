"""``simtrust settle``: roaming reconciliation and statements, offline from files.

``reconcile`` needs no data directory: it reads the agreement and both sides'
usage files and prints one JSON document (issue 15 item 7). Unreadable input
is one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.settlement import load_agreement, reconcile_files

__all__ = ["NAME", "app"]

NAME = "settle"

app = typer.Typer(
    name=NAME,
    help="Roaming settlement: reconcile usage files under an agreement, statements, netting.",
    no_args_is_help=True,
)


@app.command()
def reconcile(
    agreement: Annotated[
        Path, typer.Option("--agreement", help="Roaming agreement JSON (docs/settlement.md).")
    ],
    home: Annotated[Path, typer.Option("--home", help="The home network's usage CSV.")],
    visited: Annotated[Path, typer.Option("--visited", help="The visited network's usage CSV.")],
    records: Annotated[
        Path | None,
        typer.Option("--records", help="Write charging_id,imsi,side,class per input record here."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Classify every record of both sides and rate the statement (integer minor units)."""
    terms = load_agreement(agreement)
    result = reconcile_files(terms, home, visited, records_out=records).to_json()
    if json_out:
        emit_json(result)
        return
    statement = result["statement"]
    console.print(f"agreement {result['agreement']}")
    for name, count in result["counts"].items():
        console.print(f"  {name:<17} {count:>12}")
    console.print(
        f"total {statement['total_minor_units']} {statement['currency']} (minor units), "
        f"disputed {statement['disputed_minor_units']}"
    )
