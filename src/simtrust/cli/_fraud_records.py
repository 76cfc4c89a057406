"""``simtrust fraud usage-import`` and ``tac-import``: usage records and the GSMA TAC database.

``usage-import RECORDS [--format auto|jsonl|csv]`` reads the operator's
voice and SMS usage records (docs/fraud.md "Usage records";
:func:`simtrust.detect.parse_usage_records`), maps each SIM (IMSI or ICCID)
through the inventory and hands the events to the serving process's fraud
detectors through the shared event stream, the one path every other
process's events take (docs/decisions/fraud-shared-event-stream.md).
Records of SIMs the inventory does not hold are counted and skipped.

``tac-import EXPORT.csv [--source S]`` replaces the imported GSMA TAC
database (:func:`simtrust.detect.parse_tac_csv`); from then on the fraud
detectors check every IMEI's TAC against it exactly. ``tac-status`` says
what is imported. Bad input: one line on stderr, exit 2, nothing imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simtrust.cli._common import emit_json, open_runtime, read_text
from simtrust.detect import parse_tac_csv, parse_usage_records, usage_events
from simtrust.errors import InvalidInput

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="file") from None


def usage_import(
    records: Annotated[Path, typer.Argument(help="Usage records: JSON lines or CSV.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl or csv.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Import voice and SMS usage records for the fraud detectors (phone-like use)."""
    try:
        parsed = parse_usage_records(_read(records), fmt)
    except InvalidInput as exc:
        raise InvalidInput(f"{records}: {exc.detail}") from None
    rt = open_runtime()
    try:
        events, unknown = usage_events(parsed, rt.resolve_sim)
        rt.sim_events.append_many(events)
    finally:
        rt.close()
    out = {"records": len(parsed), "queued": len(events), "unknown_sims": unknown}
    if json_out:
        emit_json(out)
        return
    typer.echo(f"{len(parsed)} usage records: {len(events)} queued for the fraud detectors, "
               f"{unknown} of SIMs not in the inventory")


def tac_import(
    export: Annotated[Path, typer.Argument(help="The GSMA TAC database export (CSV).")],
    source: Annotated[str, typer.Option(help="What the export is (kept with it).")]
    = "GSMA TAC database",
    json_out: JsonOpt = False,
) -> None:
    """Replace the imported GSMA TAC database; TACs are then checked exactly."""
    try:
        tacs = parse_tac_csv(_read(export))
    except InvalidInput as exc:
        raise InvalidInput(f"{export}: {exc.detail}") from None
    rt = open_runtime()
    try:
        summary = rt.tac_database.save(tacs, source, rt.clock())
    finally:
        rt.close()
    if json_out:
        emit_json(summary)
        return
    typer.echo(f"TAC database: {summary['count']} TACs imported ({summary['source']})")


def tac_status(json_out: JsonOpt = False) -> None:
    """What TAC database is imported (the shipped reporting-body table always applies)."""
    rt = open_runtime()
    try:
        summary = rt.tac_database.summary()
    finally:
        rt.close()
    if json_out:
        emit_json({"imported": summary})
        return
    typer.echo("no TAC database imported: reporting bodies only" if summary is None else
               f"TAC database: {summary['count']} TACs from {summary['source']} "
               f"(imported {summary['imported_at']})")


def register(app: typer.Typer) -> None:
    """Add the commands to ``simtrust fraud``."""
    app.command("usage-import")(usage_import)
    app.command("tac-import")(tac_import)
    app.command("tac-status")(tac_status)
