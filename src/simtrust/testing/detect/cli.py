"""``python -m simtrust.testing.detect``: synthesise attacks and run the evaluation.

Test gear beside ``simtrust detect`` (which analyses captures): ``attack``
writes a synthetic attack, optionally merged into a benign capture, as pcap;
``evaluate`` scores the detectors on benign captures with injected attacks
(docs/detection.md). They were ``simtrust detect attack|evaluate`` until the
generators left the product packages (docs/decisions/architecture-test-gear.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import dpkt
import typer

from simtrust.errors import InvalidInput, SimtrustError
from simtrust.testing.detect import attacks
from simtrust.testing.detect.evaluation import STRESS_VARIANTS, VARIANTS, evaluate
from simtrust.testing.detect.plots import write_plots

__all__ = ["app"]

app = typer.Typer(
    name="simtrust.testing.detect",
    help="Detection test gear: synthesise attacks, evaluate the detectors.",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"simtrust.testing.detect: error: {message}", err=True)
    raise typer.Exit(2)


def _shared_root() -> Path:
    env = os.environ.get("SIMTRUST_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4].parent / "shared"


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
    json_out: Annotated[bool, typer.Option(
        "--json", help="One compact JSON line for scripts (default: indented).")] = False,
) -> None:
    """Write a synthetic attack (optionally merged into a benign capture) as pcap."""
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
    text = json.dumps(summary, sort_keys=True, indent=None if json_out else 2)
    sys.stdout.write(text + "\n")
