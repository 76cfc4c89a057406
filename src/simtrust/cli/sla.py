"""``simtrust sla``: evaluate a slice SLA contract against signed KPI reports, offline.

``evaluate`` prints violations and credits per measurement period as one JSON
document (issue 15 item 7); the contract format (TS 28.541 ServiceProfile
targets, credit schedule, monitoring agents) is in ``docs/settlement.md``.
Unreadable input is one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json
from simtrust.settlement import evaluate_sla, load_sla_contract

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
