"""``simtrust detect``: offline analysis of captures (pcap metering, detectors, policies).

Attack synthesis and the evaluation harness are test gear: they run as
``python -m simtrust.testing.detect attack|evaluate`` (see
``docs/decisions/architecture-test-gear.md``).

``simtrust detect pcap FILE... --subscribers MAP.csv [--train FILE]... --jsonl`` is
a contract (issue 6 §6): one JSON object per alert per line with ``imsi``,
``kind``, ``at`` (ISO 8601 UTC of the first evidence) and ``evidence``; ``--json``
prints the same alerts as one document ``{alerts, packets, records}``. Exit 0 when
it ran, 2 with one line on stderr when an input is unreadable. ``--train`` is
repeated once per training capture.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from simtrust.cli._common import emit_json
from simtrust.detect import Baseline, Detector
from simtrust.errors import InvalidInput, SimtrustError
from simtrust.flows import learn_baselines, load_subscribers, policy_alerts, read_pcap, replay

__all__ = ["NAME", "app"]

NAME = "detect"

app = typer.Typer(
    name=NAME,
    help="Device-behaviour detection: analyse captures.",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust detect: error: {message}", err=True)
    raise typer.Exit(2)


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: unreadable {what} ({exc})") from exc


@app.command("pcap")
def pcap(
    files: Annotated[list[Path], typer.Argument(help="Captures to analyse (pcap, pcapng).")],
    subscribers_csv: Annotated[Path, typer.Option(
        "--subscribers", help="CSV ip,imsi,device_group[,tenant] naming each address.")],
    train: Annotated[list[Path] | None, typer.Option(
        "--train", help="Benign capture to learn baselines from (repeatable).")] = None,
    baselines_file: Annotated[Path | None, typer.Option(
        "--baselines", help="Baselines saved by an earlier --save-baselines.")] = None,
    policies_file: Annotated[Path | None, typer.Option(
        "--policies", help="JSON list of tenant policies (simtrust.policy form).")] = None,
    save_baselines: Annotated[Path | None, typer.Option(
        "--save-baselines", help="Write the baselines used here (learnt and loaded).")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: {alerts, packets, records}.")] = False,
    jsonl: Annotated[bool, typer.Option(
        "--jsonl", help="Print one JSON object per alert per line (JSON Lines).")] = False,
) -> None:
    """Meter captures and run the detectors (and tenant policies) over them.

    Without --train or --baselines, cohort defaults apply (floors that normal IoT
    traffic stays far below); the detectors needing a learnt baseline stay quiet.
    Policy violations are reported as alerts of the rule's kind.
    """
    if json_out and jsonl:
        _fail("give --json or --jsonl, not both")
    try:
        subscribers = load_subscribers(str(subscribers_csv))
        baselines: list[Baseline] = []
        if baselines_file is not None:
            doc = _json_file(baselines_file, "baselines")
            if not isinstance(doc, list):
                raise InvalidInput(f"{baselines_file}: expected a JSON list of baselines")
            baselines += [Baseline.from_json(b) for b in doc]
        if train:
            baselines += learn_baselines([read_pcap([str(f)]) for f in train], subscribers)
        policy_docs: list[dict[str, Any]] = []
        if policies_file is not None:
            loaded = _json_file(policies_file, "policies")
            policy_docs = loaded if isinstance(loaded, list) else [loaded]
        capture = read_pcap([str(f) for f in files])
        violations = policy_alerts(capture, subscribers, policy_docs) if policy_docs else []
    except SimtrustError as exc:
        _fail(exc.detail)
    if save_baselines is not None:
        save_baselines.write_text(
            json.dumps([b.to_json() for b in baselines], indent=1), encoding="utf-8"
        )
    detected = replay(Detector(subscribers, baselines), capture)
    alerts = [a for _, a in sorted(detected + violations, key=lambda x: x[0])]
    if json_out:
        emit_json({"alerts": [a.to_json() for a in alerts], "packets": capture.packets,
                   "records": len(capture.records)})
        return
    for alert in alerts:
        doc = alert.to_json()
        if jsonl:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        else:
            typer.echo(f"{doc['at']} {doc['kind']:<11} {doc['imsi']} {alert.summary}")
    if not jsonl:
        typer.echo(
            f"{capture.packets} packets, {len(capture.records)} flow records, {len(alerts)} alerts",
            err=True,
        )
    sys.stdout.flush()
