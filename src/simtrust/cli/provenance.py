"""``simtrust provenance DATUM_ID``: a datum's provenance graph, its score and why.

Prints every ancestor with its annotations (each verified here against its
annotator's signature), the inclusion proof of its anchored batch and its
score; ``--svg FILE`` also draws the graph (docs/streams.md "Confidence").
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.streams import ProvenanceGraph, provenance_svg

__all__ = ["NAME", "app"]

NAME = "provenance"

# One command with an argument, mounted as a group: its arguments and options may
# come in any order, and no subcommand is expected.
app = typer.Typer(name=NAME, help="The provenance graph and confidence score of a datum.",
                  context_settings={"allow_interspersed_args": True})


@app.callback(invoke_without_command=True)
def provenance(
    datum_id: Annotated[str, typer.Argument(help="Datum id (a message id, or derived-...).")],
    svg: Annotated[Path | None, typer.Option("--svg", help="Also write the graph as SVG.")
                   ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show DATUM_ID's graph: annotations, proofs and scores."""
    rt = open_runtime()
    try:
        graph = rt.streams.provenance(datum_id)
    finally:
        rt.close()
    ProvenanceGraph.check(graph)
    if svg is not None:
        svg.write_text(provenance_svg(graph), encoding="utf-8")
    if json_out:
        emit_json(graph)
        return
    console.print(f"datum {graph['datum']}: score {graph['score']} (weights {graph['policy']})")
    for key, node in sorted(graph["nodes"].items()):
        latest = {a["kind"]: (a["satisfied"], a["evidence"]) for a in node["annotations"]}
        console.print(f"  {key}  score {node['score']}"
                      + ("  anchored" if node.get("proof") else ""))
        for kind, (ok, evidence) in sorted(latest.items()):
            console.print(f"    {'✓' if ok else '✗'} {kind}: {evidence}")
