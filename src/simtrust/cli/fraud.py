"""``simtrust fraud``: run the fraud detectors offline over a SIM event stream.

``simtrust fraud analyse EVENTS.jsonl [--models MODELS.csv] [--blocklist FILE] [--json]``
reads one :class:`~simtrust.detect.SimEvent` JSON object per line (``at`` in
UNIX seconds, ``imsi``, ``kind`` and the optional ``plmn``, ``imei``, ``cell``,
``lat``/``lon``, ``session``, ``tenant``), in time order, and prints the
alerts: with ``--json`` one JSON object per alert per line, otherwise a
summary. ``--models`` is a CSV of ``imsi,tac`` rows (the TACs of the device
model registered for each SIM); ``--blocklist`` one IMEI or TAC per line. A
malformed line or file: one line on stderr, exit 2, nothing printed before it.
The scenario generator and evaluation are test gear:
``python -m simtrust.testing.fraud generate|evaluate``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from simtrust.cli._common import emit_json, read_text
from simtrust.detect import FraudDetector, SimEvent
from simtrust.errors import SimtrustError

__all__ = ["NAME", "app"]

NAME = "fraud"

app = typer.Typer(
    name=NAME,
    help="Fraud detection: impossible travel, cloned SIMs, equipment.",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust fraud: error: {message}", err=True)
    raise typer.Exit(2)


def _events(path: Path) -> list[SimEvent]:
    out: list[SimEvent] = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(SimEvent.from_json(json.loads(line)))
        except json.JSONDecodeError as exc:
            _fail(f"{path}:{n}: not JSON ({exc.msg})")
        except SimtrustError as exc:
            _fail(f"{path}:{n}: {exc.detail}")
    return out


def _models(path: Path) -> dict[str, frozenset[str]]:
    tacs: dict[str, set[str]] = {}
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path))), 1):
        if not row or row[0].strip().lower() == "imsi":
            continue
        if len(row) != 2 or not row[0].strip().isdigit() or len(row[1].strip()) != 8 \
                or not row[1].strip().isdigit():
            _fail(f"{path}:{n}: expected 'imsi,tac' with an 8-digit TAC")
        tacs.setdefault(row[0].strip(), set()).add(row[1].strip())
    shared: dict[frozenset[str], frozenset[str]] = {}
    return {imsi: shared.setdefault(frozenset(t), frozenset(t)) for imsi, t in tacs.items()}


@app.command("analyse")
def analyse(
    events: Annotated[Path, typer.Argument(help="JSON lines of SIM events, in time order.")],
    models: Annotated[Path | None, typer.Option(help="CSV imsi,tac of registered models.")] = None,
    blocklist: Annotated[Path | None, typer.Option(help="Blocklisted IMEIs/TACs, one a line.")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per alert.")] = False,
) -> None:
    """Run the impossible-travel, cloned-SIM and equipment detectors over EVENTS."""
    try:
        stream = _events(events)
        registered = _models(models) if models else {}
        blocked = [x.strip() for x in read_text(blocklist).splitlines() if x.strip()] \
            if blocklist else []
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except SimtrustError as exc:
        _fail(exc.detail)
    bad = [b for b in blocked if not b.isdigit() or len(b) not in (8, 14, 15)]
    if bad:
        _fail(f"blocklist entry {bad[0]!r} is not a TAC or an IMEI")
    detector = FraudDetector(models=registered, blocked=blocked)
    alerts = detector.observe_many(stream)
    if json_out:
        for alert in alerts:
            emit_json(alert.to_json())
        return
    counts = Counter(a.kind for a in alerts)
    typer.echo(f"{len(stream)} events, {len(detector)} SIMs, {len(alerts)} alerts"
               + "".join(f", {k}: {v}" for k, v in sorted(counts.items())))
    for alert in alerts:
        typer.echo(f"  {alert.to_json()['raised_at']} {alert.kind} {alert.summary}")
