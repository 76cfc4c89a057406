"""``simtrust detect``: offline analysis of captures, attack synthesis and the evaluation.

``simtrust detect pcap FILE... --subscribers MAP.csv [--train FILE...] --json`` is
a contract (issue 6 §6): one JSON object per alert per line with ``imsi``,
``kind``, ``at`` (ISO 8601 UTC of the first evidence) and ``evidence``; exit 0
when it ran, 2 with one line on stderr when an input is unreadable. ``--train``
takes every file up to the next option.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from simtrust.detect import Baseline, Detector, read_pcap
from simtrust.detect._offline import learn_baselines, load_subscribers, policy_alerts, replay
from simtrust.errors import InvalidInput, SimtrustError

__all__ = ["NAME", "app"]

NAME = "detect"

app = typer.Typer(
    name=NAME,
    help="Device-behaviour detection: analyse captures, synthesise attacks, evaluate.",
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


def _shared_root() -> Path:
    env = os.environ.get("SIMTRUST_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared"


@app.command("evaluate")
def evaluate_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Folder of device-type capture folders "
            "(default: $SIMTRUST_SHARED/data/pcaps/iot-sentinel).",
        ),
    ] = None,
    types: Annotated[
        str | None, typer.Option("--types", help="Comma-separated device types (default: all).")
    ] = None,
    max_captures: Annotated[
        int | None, typer.Option("--max-captures", help="Use at most N captures per type.")
    ] = None,
    untrained: Annotated[
        bool, typer.Option("--untrained", help="Test against default floors, no training.")
    ] = False,
    stress: Annotated[
        bool, typer.Option("--stress", help="Run the below-documented-rate variants instead.")
    ] = False,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Write PNG plots of a baseline and an alert here."),
    ] = None,
) -> None:
    """Benign captures + injected Mirai/flood/beacon attacks: precision, recall, false alarms."""
    from simtrust.detect.evaluation import STRESS_VARIANTS, VARIANTS, evaluate

    root = data or _shared_root() / "data" / "pcaps" / "iot-sentinel"
    if not root.is_dir():
        _fail(f"{root}: no such capture folder")
    chosen = [t.strip() for t in types.split(",") if t.strip()] if types else None
    report = evaluate(
        root,
        device_types=chosen,
        variants=STRESS_VARIANTS if stress else VARIANTS,
        trained=not untrained,
        max_captures=max_captures,
    )
    doc = report.to_json()
    if plots is not None:
        from simtrust.detect.plots import write_plots

        doc["plots"] = [str(p) for p in write_plots(root, plots)]
    if json_out:
        sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        return
    b = doc["benign"]
    typer.echo(
        f"device types: {len(doc['device_types'])}, benign runs: {b['runs']}, "
        f"device-days: {b['device_days']}"
    )
    typer.echo(
        f"false alarms: {b['false_alarms']} "
        f"({b['false_alarms_per_100_device_days']} per 100 device-days; "
        f"95% upper bound {b['upper95_per_device_day']} per device-day)"
    )
    for name, c in doc["classes"].items():
        ttd = c["time_to_detect_s"]
        typer.echo(
            f"{name:<7} recall {c['recall']:.3f}  precision {c['precision']}  "
            f"runs {c['runs']}  time to detect median {ttd['median']} s, max {ttd['max']} s"
        )


@app.command("attack")
def attack_cmd(
    kind: Annotated[str, typer.Argument(help="scan, udp, syn, ack, gre, http, flood, beacon")],
    device: Annotated[str, typer.Option("--device", help="The infected device's address.")],
    out: Annotated[Path, typer.Option("--out", help="Output pcap file.")],
    start: Annotated[
        float | None, typer.Option(help="Start (epoch s; default: benign start).")
    ] = None,
    inject_into: Annotated[
        Path | None, typer.Option("--inject", help="Benign capture to merge the attack into.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Write a synthetic attack (optionally merged into a benign capture) as pcap."""
    import dpkt

    from simtrust.detect import attacks

    benign: list[tuple[float, bytes]] = []
    try:
        if inject_into is not None:
            try:
                with inject_into.open("rb") as fh:
                    reader = dpkt.pcap.Reader(fh)
                    if reader.datalink() != dpkt.pcap.DLT_EN10MB:
                        raise InvalidInput(f"{inject_into}: only Ethernet captures can be merged")
                    benign = [(float(ts), bytes(buf)) for ts, buf in reader]
            except (OSError, ValueError, dpkt.UnpackError) as exc:
                raise InvalidInput(f"{inject_into}: unreadable capture ({exc})") from exc
        t0 = start if start is not None else (benign[0][0] + 5.0 if benign else 1_700_000_000.0)
        traffic = attacks.generate(kind, device, t0, seed=seed)
    except SimtrustError as exc:
        _fail(exc.detail)
    frames = attacks.inject(benign, traffic)
    attacks.write_pcap(out, frames)
    summary: dict[str, Any] = {
        "kind": traffic.kind,
        "class": traffic.attack_class,
        "device": device,
        "start": traffic.start,
        "end": traffic.end,
        "frames": len(traffic.frames),
        "target": traffic.target,
        "out": str(out),
    }
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
