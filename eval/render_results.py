"""Write the evaluation tables of docs/detection.md from the stored result files.

Usage: python eval/render_results.py  (after `simtrust detect evaluate --json >
eval/detect-results.json`, `--stress --json > eval/detect-stress.json` and
`--untrained --json > eval/detect-untrained.json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "detection.md"
BEGIN = "<!-- results:begin (written by eval/render_results.py) -->"
END = "<!-- results:end -->"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "eval" / name).read_text(encoding="utf-8"))
    return doc


def _classes(d: dict[str, Any]) -> str:
    rows = [
        "| class | attacked runs | recall | precision | time to detect median (s) | p90 (s) "
        "| max (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in ("scan", "ddos", "beacon"):
        c = d["classes"][k]
        t = c["time_to_detect_s"]
        prec = "–" if c["precision"] is None else f"{c['precision']:.3f}"
        rows.append(
            f"| {k} | {c['runs']} | {c['recall']:.3f} | {prec} | {t['median']} "
            f"| {t['p90']} | {t['max']} |"
        )
    return "\n".join(rows)


def _variants(d: dict[str, Any]) -> str:
    rows = [
        "| variant | class | runs | recall | median time to detect (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, v in d["variants"].items():
        rows.append(
            f"| {name} | {v['class']} | {v['runs']} | {v['recall']:.3f} "
            f"| {v['median_time_to_detect_s']} |"
        )
    return "\n".join(rows)


def render() -> str:
    main, stress, untrained = (
        _load("detect-results.json"),
        _load("detect-stress.json"),
        _load("detect-untrained.json"),
    )
    b = main["benign"]
    vol = main["classes"]["ddos"]["other_alerts_during_attack"].get("volume", 0)
    ub = untrained["benign"]
    fa = f"**{b['false_alarms']}** → {b['false_alarms_per_100_device_days']} per 100 device-days"
    bound = f"{b['upper95_per_device_day']} per device-day (Poisson, {b['false_alarms']} events)"
    return f"""### Results (all 16 device types, two folds, trained baselines)

| | |
| --- | --- |
| benign test runs | {b["runs"]} captures |
| benign device time | {b["device_days"]} device-days ({b["device_days"] * 24:.1f} device-hours) |
| false alarms (any kind) | {fa} |
| 95 % upper bound | {bound} |

{_classes(main)}

{_variants(main)}

During floods the `volume` detector also fired ({vol} times; corroborating, not
counted as false alarms).

**What these numbers do and do not show.** Recall ≥ 0.95 with precision 1.0 holds
for every attack class at the documented rates. The false-alarm target (≤ 1 per 100
device-days) is *not demonstrable* on this corpus: the benign captures add up to
only {b["device_days"]} device-days (device setups lasting seconds to minutes), so
{b["false_alarms"]} false alarms bound the rate at {b["upper95_per_device_day"]} per
device-day (95 %); showing ≤ 0.01 per device-day would take ≥ 300 device-days of
benign traffic. The margins are the better guide: on the benign corpus the largest
scan score in a minute is 1 (threshold ≥ 16), the largest per-destination rate ~110
packets and 25 flows per 10 s (thresholds ≥ 1,500 and ≥ 150). Time to detect is
dominated by export: random-port floods and scans surface at the 15 s idle timeout
(scans sooner, when RST/SYN-ACK replies close flows), single-flow floods at the end
of the flood plus idle timeout (at most the 60 s active timeout for longer floods),
beacons after the 7th contact.

### Without training (`--untrained`: default floors, as `detect pcap` without `--train`)

{ub["runs"]} benign runs with **{ub["false_alarms"]}** alerts.

{_classes(untrained)}

The `volume` detector stays quiet during the floods here (its untrained floor is
60 MB/min).

### Detection limits (`--stress`: below the documented rates)

{_variants(stress)}

Benign false alarms in this run: {stress["benign"]["false_alarms"]}. Slow scans stay
visible down to one probe every five seconds (8 telnet targets a minute reach the
threshold); random-port floods and DNS water torture down to tens of packets per
second (their flows fan out); a single-flow flood or an HTTP flood below ~150
packets/s to one destination is **not** detected — it sits within a factor of 15 of
what benign devices send their own services, and the floor is not lowered to chase
it. Beacons need a jitter below ~20 % of the period (coefficient of variation ≤ 0.2):
with ±50 % uniform jitter (CV ≈ 0.29) most runs are missed, and a 300 s beacon needs
seven contacts (≈ 30 min).
"""


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    DOC.write_text(text[:start] + "\n" + render() + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
