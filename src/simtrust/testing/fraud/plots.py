"""PNG plots of the fraud detectors' evaluation for docs/fraud.md (matplotlib, Agg).

Drawn from one generated run (:mod:`simtrust.testing.fraud.scenarios`) scored
as :mod:`simtrust.testing.fraud.evaluation` does: recall per scenario kind
against the 0.95 target, and the share of frauds detected within a given time
of their onset, per label.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from simtrust.detect import FraudDetector
from simtrust.testing.fraud.scenarios import generate, merged

__all__ = ["write_plots"]

_MATCH = {"clone": "sim-clone", "travel": "impossible-travel"}


def write_plots(out_dir: Path, seed: int = 101, sims: int = 3000,
                days: float = 7.0) -> list[Path]:
    """Write ``fraud-recall.png`` and ``fraud-time-to-detect.png``; return their paths."""
    scenarios = list(generate(seed, sims, days))
    alerts = FraudDetector().observe_many(merged(scenarios))
    first: dict[tuple[str, str], float] = {}
    for a in alerts:
        key = (a.imsi, a.kind)
        first[key] = min(first.get(key, a.raised_at), a.raised_at)
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    delays: dict[str, list[float]] = defaultdict(list)
    for s in scenarios:
        if s.label == "benign":
            continue
        at = first.get((s.imsi, _MATCH[s.label]))
        tally = found[s.label if s.kind.endswith(s.label) else f"{s.label}/{s.kind}"]
        tally[1] += 1
        if at is not None and at >= s.onset:
            tally[0] += 1
            delays[s.label].append((at - s.onset) / 3600.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "fraud-recall.png", out_dir / "fraud-time-to-detect.png"]

    names = sorted(found)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(names, [found[n][0] / found[n][1] for n in names], color="#4c72b0")
    ax.axhline(0.95, color="#c44e52", linestyle="--", label="target 0.95")
    for i, n in enumerate(names):
        ax.text(i, 0.02, f"{found[n][0]}/{found[n][1]}", ha="center", color="white", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("recall")
    ax.set_title(f"Recall per scenario kind (seed {seed}, {sims} SIMs × {days:g} days)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label, values in sorted(delays.items()):
        values.sort()
        total = sum(found[n][1] for n in names if n.split("/")[0] == label)
        ax.step(values, [(i + 1) / total for i in range(len(values))], where="post",
                label=f"{label} ({len(values)}/{total})")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("hours from onset to the first alert")
    ax.set_ylabel("share detected")
    ax.set_ylim(0, 1.02)
    ax.set_title("Time to detect")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
