"""``simtrust sla``: evaluate a slice SLA contract against signed KPI reports, offline.

``evaluate`` prints violations and credits per measurement period as one JSON
document (issue 15 item 7); ``credit-note`` writes the period's credits as an
unsigned ``SlaCreditNote`` that both parties sign (``simtrust settle sign``) and
``simtrust settle net`` nets beside the roaming statements. The contract format
(TS 28.541 ServiceProfile targets, credit schedule, monitoring agents) is in
``docs/settlement.md``. Unreadable input is one line on stderr and exit code 2,
and nothing is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.errors import InvalidInput
from simtrust.settlement import build_credit_note, evaluate_sla, load_sla_contract

__all__ = ["NAME", "app"]

NAME = "sla"

app = typer.Typer(
    name=NAME,
    help="Slice SLA contracts: violations and credits per period from signed KPI reports.",
    no_args_is_help=True,
)


@app.command()
def evaluate(
    contract: Annotated[Path, typer.Option("--contract", help="SLA contract JSON.")],
    measurements: Annotated[
        Path, typer.Option("--measurements", help="KPI reports: time,kpi,value,agent,signature.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Violations per period and the credits the contract's schedule grants."""
    result = evaluate_sla(load_sla_contract(contract), measurements)
    if json_out:
        emit_json(result)
        return
    for period in result["periods"]:
        violations = ", ".join(period["violations"]) or "none"
        console.print(
            f"{period['start']}  violations: {violations}  credit {period['credit_minor_units']}"
        )
    console.print(f"total credit {result['total_credit_minor_units']} {result['currency']}")


@app.command("credit-note")
def credit_note(
    contract: Annotated[Path, typer.Option("--contract", help="SLA contract JSON.")],
    measurements: Annotated[
        Path, typer.Option("--measurements", help="KPI reports: time,kpi,value,agent,signature.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the unsigned credit note.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write the credits as a credit note (provider pays customer) for both parties to sign."""
    terms = load_sla_contract(contract)
    document = build_credit_note(terms, evaluate_sla(terms, measurements))
    folder = out.parent if str(out.parent) else Path(".")
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
        with os.fdopen(handle, "w") as sink:
            json.dump(document, sink, indent=2, sort_keys=True)
            sink.write("\n")
        os.replace(temp, out)
    except OSError as exc:
        raise InvalidInput(f"{out}: cannot write ({exc.strerror})") from None
    if json_out:
        emit_json(document)
    else:
        console.print(f"{out}: credit {document['credit_minor_units']} {document['currency']}"
                      f" from {document['payer']} to {document['payee']}")
