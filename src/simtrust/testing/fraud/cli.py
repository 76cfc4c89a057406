"""``python -m simtrust.testing.fraud``: generate labelled scenarios, evaluate the detectors.

``generate --seed N --sims N --days D --out EVENTS.jsonl [--labels LABELS.json]``
writes the merged event stream that ``simtrust fraud analyse`` reads (and the
labels beside it); ``evaluate --seed N --sims N --days D [--json]`` runs the
detectors over a generated run and prints recall, false alarms per 1,000
SIM-days and time to detect (docs/fraud.md); ``plot --out DIR`` draws the
figures of docs/fraud.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from simtrust.testing.fraud.evaluation import evaluate
from simtrust.testing.fraud.plots import write_plots
from simtrust.testing.fraud.scenarios import generate, merged

__all__ = ["app"]

app = typer.Typer(
    name="simtrust.testing.fraud",
    help="Fraud test gear: labelled roaming/cloning scenarios and their evaluation.",
    no_args_is_help=True,
)

Seed = Annotated[int, typer.Option(help="Seed of the generator.")]
Sims = Annotated[int, typer.Option(help="Number of SIMs (scenarios).")]
Days = Annotated[float, typer.Option(help="Days simulated per SIM.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust.testing.fraud: error: {message}", err=True)
    raise typer.Exit(2)


def _check(sims: int, days: float) -> None:
    if not 1 <= sims <= 10_000_000:
        _fail("--sims must be between 1 and 10,000,000")
    if not 2.0 <= days <= 365.0:
        _fail("--days must be between 2 and 365")


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="Where to write the JSON-lines event stream.")],
    seed: Seed = 1, sims: Sims = 100, days: Days = 7.0,
    labels: Annotated[Path | None, typer.Option(help="Where to write the labels (JSON).")] = None,
) -> None:
    """Write a generated, merged event stream (and its labels)."""
    _check(sims, days)
    scenarios = list(generate(seed, sims, days))
    try:
        with out.open("w", encoding="utf-8") as fh:
            for ev in merged(scenarios):
                fh.write(json.dumps(ev.to_json()) + "\n")
        if labels is not None:
            labels.write_text(json.dumps([
                {"imsi": s.imsi, "label": s.label, "kind": s.kind,
                 "onset": None if s.onset == float("inf") else s.onset}
                for s in scenarios], indent=1), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {exc.filename}: {exc.strerror}")


@app.command("evaluate")
def evaluate_cmd(
    seed: Seed = 1, sims: Sims = 1000, days: Days = 7.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score the detectors on a generated run."""
    _check(sims, days)
    doc = evaluate(seed, sims, days).to_json()
    if json_out:
        typer.echo(json.dumps(doc, sort_keys=True))
        return
    typer.echo(f"{doc['sims']} SIMs, {doc['events']} events, seed {seed}")
    typer.echo(f"recall: {doc['recall']}  by kind: {doc['recall_by_kind']}")
    typer.echo(f"false alarms: {doc['false_alarms']} "
               f"({doc['false_alarms_per_1000_sim_days']} per 1,000 SIM-days)")
    typer.echo(f"median time to detect (s): {doc['time_to_detect_median_s']}")


@app.command("plot")
def plot_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the PNG files.")],
    seed: Seed = 101, sims: Sims = 3000, days: Days = 7.0,
) -> None:
    """Draw recall per scenario kind and time to detect (PNG, for docs/fraud.md)."""
    _check(sims, days)
    try:
        paths = write_plots(out, seed, sims, days)
    except OSError as exc:
        _fail(f"cannot write {exc.filename}: {exc.strerror}")
    for path in paths:
        typer.echo(str(path))
