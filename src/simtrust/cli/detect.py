"""``simtrust detect``: offline analysis of captures (pcap metering, detectors, policies).

Attack synthesis and the evaluation harness are test gear: they run as
``python -m simtrust.testing.detect attack|evaluate`` (see
``docs/decisions/architecture-test-gear.md``).

``simtrust detect pcap FILE... --subscribers MAP.csv [--train FILE...] --json`` is
a contract (issue 6 §6): one JSON object per alert per line with ``imsi``,
``kind``, ``at`` (ISO 8601 UTC of the first evidence) and ``evidence``; exit 0
when it ran, 2 with one line on stderr when an input is unreadable. ``--train``
takes every file up to the next option.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInput(message)


def _pcap_parser() -> _Parser:
    p = _Parser(prog="simtrust detect pcap", add_help=False)
    p.add_argument("files", nargs="*")
    p.add_argument("--subscribers", required=True)
    p.add_argument("--train", nargs="+", action="extend", default=[])
    p.add_argument("--baselines")
    p.add_argument("--policies")
    p.add_argument("--save-baselines")
    p.add_argument("--json", action="store_true", dest="json_out")
    return p


@app.command(
    "pcap",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def pcap(ctx: typer.Context) -> None:
    """Meter captures and run the detectors: FILE... --subscribers MAP.csv [--train FILE...]
    [--baselines B.json] [--save-baselines B.json] [--policies P.json] [--json].

    MAP.csv has the header ip,imsi,device_group (optional tenant). Without
    --train or --baselines, cohort defaults apply (floors that normal IoT
    traffic stays far below); the detectors needing a learnt baseline stay quiet.
    --policies takes a JSON list of tenant policies (simtrust.policy form); their
    violations are reported as alerts of the rule's kind.
    """
    try:
        args = _pcap_parser().parse_args(ctx.args)
        if not args.files:
            raise InvalidInput("at least one capture FILE is required")
        subscribers = load_subscribers(args.subscribers)
        baselines: list[Baseline] = []
        if args.baselines:
            try:
                doc = json.loads(Path(args.baselines).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"{args.baselines}: unreadable baselines ({exc})") from exc
            if not isinstance(doc, list):
                raise InvalidInput(f"{args.baselines}: expected a JSON list of baselines")
            baselines += [Baseline.from_json(b) for b in doc]
        if args.train:
            baselines += learn_baselines([read_pcap([f]) for f in args.train], subscribers)
        policy_docs: list[dict[str, Any]] = []
        if args.policies:
            try:
                loaded = json.loads(Path(args.policies).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"{args.policies}: unreadable policies ({exc})") from exc
            policy_docs = loaded if isinstance(loaded, list) else [loaded]
        capture = read_pcap(args.files)
        violations = policy_alerts(capture, subscribers, policy_docs) if policy_docs else []
    except SimtrustError as exc:
        _fail(exc.detail)
    if args.save_baselines:
        Path(args.save_baselines).write_text(
            json.dumps([b.to_json() for b in baselines], indent=1), encoding="utf-8"
        )
    detected = replay(Detector(subscribers, baselines), capture)
    alerts = [a for _, a in sorted(detected + violations, key=lambda x: x[0])]
    for alert in alerts:
        doc = alert.to_json()
        if args.json_out:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        else:
            typer.echo(f"{doc['at']} {doc['kind']:<11} {doc['imsi']} {alert.summary}")
    if not args.json_out:
        typer.echo(
            f"{capture.packets} packets, {len(capture.records)} flow records, {len(alerts)} alerts",
            err=True,
        )
    sys.stdout.flush()
