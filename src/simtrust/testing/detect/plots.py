"""PNG plots for the documentation: a device's baseline and an alert against it (matplotlib, Agg).

The figures are drawn from the same data the evaluation uses: baselines learnt
on half of a device type's captures, a held-out benign capture, and the same
capture with a Mirai scan and a SYN flood injected from the device's address.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from simtrust.detect import Detector, DeviceRef
from simtrust.domain import imsi_digits
from simtrust.flows import Capture, learn_baselines, replay
from simtrust.testing.detect.evaluation import (
    VARIANTS,
    _attack_capture,
    _merge,
    discover,
    load_capture,
)

__all__ = ["write_plots"]

_FEATURES = ("scan_score_60s", "breadth_60s", "dst_packets_10s", "dst_flows_10s")


def _series(
    cap: Capture, device: frozenset[str], start: float, step: float = 2.0
) -> tuple[list[float], list[float], list[float]]:
    """Per step: distinct unanswered-SYN targets in the trailing 60 s, and max packets to one
    destination in the trailing 10 s (by record end time)."""
    recs = sorted((r for r in cap.records if r.src_addr in device), key=lambda r: r.end)
    if not recs:
        return [], [], []
    t, end = recs[0].end, recs[-1].end
    xs, scan, flood = [], [], []
    while t <= end + step:
        syn = {
            r.dst_addr
            for r in recs
            if t - 60 < r.end <= t and r.protocol == 6 and r.tcp_flags & 0x12 == 0x02
        }
        per: dict[str, float] = {}
        for r in recs:
            if t - 10 < r.end <= t:
                per[r.dst_addr] = per.get(r.dst_addr, 0.0) + r.packets
        xs.append(t - start)
        scan.append(float(len(syn)))
        flood.append(max(per.values(), default=0.0))
        t += step
    return xs, scan, flood


def write_plots(root: Path, out_dir: Path, device_type: str | None = None) -> list[Path]:
    """Write ``detect-baseline.png`` and ``detect-alert.png``; returns their paths."""
    corpus = discover(root)
    if device_type is None:
        # The type with the most traffic makes the clearest picture of a baseline.
        device_type = max(corpus, key=lambda t: sum(p.stat().st_size for p in corpus[t]))
    caps = [load_capture(device_type, p) for p in corpus[device_type]]
    train, test = caps[0::2], caps[1::2]
    imsi = imsi_digits("001010000000001")
    subs = {a: DeviceRef(imsi, device_type) for c in train for a in c.addresses}
    baselines = learn_baselines([c.capture for c in train], subs)
    cohort = next(b for b in baselines if b.scope == "cohort")
    held = max(test, key=lambda c: c.capture.duration)
    tsubs = {a: DeviceRef(imsi, device_type) for a in held.addresses}
    det = Detector(tsubs, baselines)
    benign_alerts = replay(det, held.capture)
    thresholds = det.thresholds_for(imsi)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(_FEATURES)
    learnt = [max(cohort.feature(n), 0.5) for n in names]
    ths = [thresholds[n] for n in names]
    x = range(len(names))
    ax1.bar([i - 0.2 for i in x], learnt, width=0.4, label="baseline maximum (training)")
    ax1.bar([i + 0.2 for i in x], ths, width=0.4, label="alarm threshold")
    ax1.set_yscale("log")
    ax1.set_xticks(list(x), [n.replace("_", "\n", 1) for n in names], fontsize=8)
    ax1.set_title(f"{device_type}: cohort baseline from {len(train)} captures")
    ax1.legend(fontsize=8)
    hours = cohort.hours
    ax2.bar(range(24), hours)
    ax2.set_xlabel("hour of day (UTC)")
    ax2.set_ylabel("active minutes in training")
    ax2.set_title(f"activity profile ({len(cohort.days)} days; time detector needs 7)")
    fig.tight_layout()
    p1 = out_dir / "detect-baseline.png"
    fig.savefig(p1, dpi=110)
    plt.close(fig)
    paths.append(p1)

    first = held.capture.first_ts or 0.0
    start = first + max(5.0, 0.3 * held.capture.duration)
    scan = next(v for v in VARIANTS if v.name == "scan-20pps")
    syn = next(v for v in VARIANTS if v.name == "syn-1000pps")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, variant, idx, label, th in (
        (axes[0], scan, 0, "distinct unanswered-SYN targets / 60 s", thresholds["scan_score_60s"]),
        (axes[1], syn, 1, "max packets to one destination / 10 s", thresholds["dst_packets_10s"]),
    ):
        atk, _ = _attack_capture(variant, 1, held.primary, start)
        merged = _merge(held.capture, atk)
        alerts = replay(Detector(tsubs, baselines), merged)
        xs, s_scan, s_flood = _series(merged, held.addresses, first)
        bxs, b_scan, b_flood = _series(held.capture, held.addresses, first)
        ys = s_scan if idx == 0 else s_flood
        bys = b_scan if idx == 0 else b_flood
        ax.plot(xs, ys, label=f"with {variant.name}")
        ax.plot(bxs, bys, label="benign (held-out capture)")
        ax.axhline(th, color="red", linestyle="--", label="threshold")
        ax.axvline(start - first, color="grey", linestyle=":", label="attack starts")
        kind = "scan" if idx == 0 else "ddos"
        hit = [t for t, a in alerts if a.kind == kind]
        if hit:
            ax.axvline(hit[0] - first, color="black", label=f"{kind} alert raised")
        ax.set_xlabel("seconds into capture")
        ax.set_ylabel(label)
        ax.set_yscale("symlog")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        ax.set_title(f"{device_type}: {variant.name}")
    fig.tight_layout()
    p2 = out_dir / "detect-alert.png"
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    paths.append(p2)
    del benign_alerts
    return paths
