"""Evaluation harness: benign captures plus injected attacks, scored per attack class.

Method (docs/detection.md): for every device type, its captures are sorted by
name and split in two folds (even/odd positions); each fold trains device and
cohort baselines on one half and tests on the other (two-fold cross-validation,
so every capture is tested once, never by a baseline that saw it). Each test
capture is replayed benign (every alert is a false alarm) and once per attack
variant with the attack injected from the device's own address, starting 30 %
into the capture. Attack traffic is metered by the same meter; because its
5-tuples never collide with the benign ones, metering it apart and merging the
records by export time equals metering the merged capture (a test pins this).

Scores per attack class: recall (attacked runs with an alert of the class's
kind for that SIM), precision (alerts of that kind that fall on an attack of
that class), time to detect (export time of the record that completed the
evidence minus attack start), and false alarms per device-day over the benign
runs, with device-days the summed capture durations.
"""

from __future__ import annotations

import dataclasses
import io
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import dpkt

from simtrust.detect import Alert, Detector, DeviceRef, Thresholds
from simtrust.domain import FlowRecord, imsi_digits
from simtrust.flows import (
    Capture,
    decode_packet,
    iter_pcap,
    learn_baselines,
    meter_packets,
    replay,
)
from simtrust.testing.detect import attacks

__all__ = [
    "STRESS_VARIANTS",
    "VARIANTS",
    "DeviceCapture",
    "EvaluationReport",
    "Variant",
    "discover",
    "evaluate",
    "load_capture",
]

_PLACEHOLDER = "192.0.2.1"
_DAY = 86_400.0
_UNSPECIFIED = frozenset(("0.0.0.0", "::"))  # noqa: S104 - DHCP discovery source, not a bind


@dataclass(frozen=True, slots=True)
class Variant:
    """One attack configuration the evaluation injects."""

    name: str
    kind: str
    attack_class: str
    params: tuple[tuple[str, float], ...] = ()


VARIANTS: tuple[Variant, ...] = (
    Variant("scan-160pps", "scan", "scan"),
    Variant("scan-20pps", "scan", "scan", (("rate", 20.0),)),
    Variant("udp-400pps", "udp", "ddos"),
    Variant("syn-1000pps", "syn", "ddos"),
    Variant("ack-400pps", "ack", "ddos"),
    Variant("gre-300pps", "gre", "ddos"),
    Variant("http-200rps", "http", "ddos"),
    Variant("dns-200qps", "dns", "ddos"),
    Variant("flood-250pps", "flood", "ddos"),
    Variant("flood-150pps", "flood", "ddos", (("rate", 150.0),)),
    Variant("beacon-30s-10pct", "beacon", "beacon"),
    Variant(
        "beacon-60s-25pct",
        "beacon",
        "beacon",
        (("period", 60.0), ("jitter", 0.25), ("duration", 900.0)),
    ),
)

# Below the documented rates: where detection stops (reported as limits, not tuned to).
STRESS_VARIANTS: tuple[Variant, ...] = (
    Variant("scan-2pps", "scan", "scan", (("rate", 2.0),)),
    Variant("scan-0.2pps", "scan", "scan", (("rate", 0.2), ("duration", 300.0))),
    Variant("udp-50pps", "udp", "ddos", (("rate", 50.0),)),
    Variant("syn-50pps", "syn", "ddos", (("rate", 50.0),)),
    Variant("flood-100pps", "flood", "ddos", (("rate", 100.0),)),
    Variant("http-50rps", "http", "ddos", (("rate", 50.0),)),
    Variant("dns-20qps", "dns", "ddos", (("rate", 20.0),)),
    Variant(
        "beacon-300s-10pct",
        "beacon",
        "beacon",
        (("period", 300.0), ("jitter", 0.1), ("duration", 3000.0)),
    ),
    Variant("beacon-30s-50pct", "beacon", "beacon", (("jitter", 0.5), ("duration", 900.0))),
)

_CLASS_KIND = {"scan": "scan", "ddos": "ddos", "beacon": "beacon"}


@dataclass(slots=True)
class DeviceCapture:
    """One benign capture of one device type, metered, with the device's addresses."""

    device_type: str
    path: Path
    addresses: frozenset[str]
    capture: Capture

    @property
    def primary(self) -> str:
        v4 = sorted(a for a in self.addresses if ":" not in a)
        return v4[0] if v4 else sorted(self.addresses)[0]


def discover(root: Path) -> dict[str, list[Path]]:
    """Device type → its capture files (folders holding ``*.pcap``)."""
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(list(d.glob("*.pcap")) + list(d.glob("*.pcapng")))
        if files:
            out[d.name] = files
    return out


def _device_mac(path: Path) -> bytes | None:
    f = path.parent / "_iotdevice-mac.txt"
    try:
        return bytes.fromhex(f.read_text().strip().replace(":", "").replace("-", ""))
    except (OSError, ValueError):
        return None


def load_capture(device_type: str, path: Path) -> DeviceCapture:
    """Meter a capture and find the device's addresses (its MAC's sources, else the top talker)."""
    data = path.read_bytes()
    mac = _device_mac(path)
    by_mac: Counter[str] = Counter()
    talkers: Counter[str] = Counter()
    packets = list(iter_pcap(data, str(path)))
    if mac is not None and data[:4] != b"\x0a\x0d\x0d\x0a":
        reader = dpkt.pcap.Reader(io.BytesIO(data))
        for ts, frame in reader:
            if bytes(frame[6:12]) == mac:
                p = decode_packet(float(ts), 1, bytes(frame))
                if p is not None and p.src not in _UNSPECIFIED:
                    by_mac[p.src] += 1
    for p in packets:
        if p is not None:
            talkers[p.src] += 1
    addresses = frozenset(by_mac) if by_mac else frozenset(a for a, _ in talkers.most_common(1))
    cap = meter_packets(packets)
    return DeviceCapture(device_type, path, addresses, cap)


@cache
def _attack_template(
    variant: Variant, seed: int
) -> tuple[tuple[FlowRecord, ...], tuple[float, ...], float]:
    """Metered attack records from the placeholder address, times relative to attack start."""
    params = dict(variant.params)
    traffic = attacks.generate(variant.kind, _PLACEHOLDER, 0.0, seed=seed, params=params)
    cap = meter_packets(decode_packet(ts, 1, fr) for ts, fr in traffic.frames)
    return tuple(cap.records), tuple(cap.exported_at), traffic.end - traffic.start


def _attack_capture(
    variant: Variant, seed: int, device: str, start: float
) -> tuple[Capture, float]:
    recs, exported, duration = _attack_template(variant, seed)

    def move(r: FlowRecord) -> FlowRecord:
        return FlowRecord(
            r.start + start,
            r.end + start,
            device if r.src_addr == _PLACEHOLDER else r.src_addr,
            device if r.dst_addr == _PLACEHOLDER else r.dst_addr,
            r.src_port,
            r.dst_port,
            r.protocol,
            r.packets,
            r.octets,
            r.tcp_flags,
            r.exporter,
        )

    cap = Capture(
        records=[move(r) for r in recs],
        exported_at=[x + start for x in exported],
        first_ts=start,
        last_ts=start + duration,
    )
    return cap, duration


def _merge(a: Capture, b: Capture) -> Capture:
    pairs = sorted(
        zip(a.exported_at + b.exported_at, range(len(a.records) + len(b.records)), strict=True)
    )
    records = a.records + b.records
    return Capture(
        records=[records[i] for _, i in pairs],
        exported_at=[x for x, _ in pairs],
        dns=a.dns + b.dns,
        first_ts=min(x for x in (a.first_ts, b.first_ts) if x is not None),
        last_ts=max(x for x in (a.last_ts, b.last_ts) if x is not None),
    )


@dataclass(slots=True)
class _Run:
    device_type: str
    capture: str
    variant: str
    attack_class: str
    start: float
    alerts: list[tuple[float, Alert]]
    imsi: str


@dataclass(slots=True)
class EvaluationReport:
    """Figures per attack class and for the benign runs; ``to_json`` is the CLI's output."""

    device_types: list[str]
    folds: int
    benign_runs: int
    benign_device_days: float
    false_alarms: list[dict[str, Any]]
    classes: dict[str, dict[str, Any]]
    variants: dict[str, dict[str, Any]]
    thresholds: dict[str, Any]
    missed: list[dict[str, str]] = field(default_factory=list)
    trained: bool = True

    @property
    def false_alarms_per_device_day(self) -> float:
        return len(self.false_alarms) / self.benign_device_days if self.benign_device_days else 0.0

    def to_json(self) -> dict[str, Any]:
        n = len(self.false_alarms)
        return {
            "device_types": self.device_types,
            "folds": self.folds,
            "trained": self.trained,
            "benign": {
                "runs": self.benign_runs,
                "device_days": round(self.benign_device_days, 4),
                "false_alarms": n,
                "false_alarms_per_device_day": round(self.false_alarms_per_device_day, 3),
                "false_alarms_per_100_device_days": round(
                    100 * self.false_alarms_per_device_day, 1
                ),
                # Poisson 95 % upper bound on the rate (3.0 events when none were seen).
                "upper95_per_device_day": round(_poisson_upper95(n) / self.benign_device_days, 2)
                if self.benign_device_days
                else None,
                "by_kind": dict(Counter(a["kind"] for a in self.false_alarms)),
                "examples": self.false_alarms[:10],
            },
            "classes": self.classes,
            "variants": self.variants,
            "missed": self.missed[:20],
            "thresholds": self.thresholds,
        }


def _poisson_upper95(n: int) -> float:
    # Exact chi-square bounds for small counts, rounded up (Garwood 1936).
    table = [3.0, 4.74, 6.3, 7.75, 9.15, 10.51, 11.84, 13.15, 14.43, 15.71, 16.96]
    return table[n] if n < len(table) else n + 1.96 * n**0.5 + 2.0


def _imsi_for(index: int) -> str:
    # Test network PLMN 001/01 (3GPP TS 23.003: MCC 001 is reserved for testing).
    return f"00101{index:010d}"


def evaluate(
    root: Path,
    *,
    device_types: Sequence[str] | None = None,
    variants: Sequence[Variant] = VARIANTS,
    thresholds: Thresholds | None = None,
    max_captures: int | None = None,
    seeds: int = 3,
    trained: bool = True,
) -> EvaluationReport:
    """Run the two-fold evaluation over the device-type folders under ``root``.

    ``trained=False`` runs the test captures against the default floors only (what
    ``simtrust detect pcap`` does without ``--train``).
    """
    corpus = discover(root)
    types = [t for t in corpus if device_types is None or t in device_types]
    runs: list[_Run] = []
    benign_days = 0.0
    benign_runs = 0
    false_alarms: list[dict[str, Any]] = []
    for ti, dtype in enumerate(types):
        files = corpus[dtype][:max_captures] if max_captures else corpus[dtype]
        caps = [load_capture(dtype, f) for f in files]
        imsi = _imsi_for(ti + 1)
        folds = [(caps[0::2], caps[1::2]), (caps[1::2], caps[0::2])]
        for train, test in folds:
            if not train or not test:
                continue
            train_subs: dict[str, DeviceRef] = {}
            for c in train:
                for a in c.addresses:
                    train_subs[a] = DeviceRef(imsi_digits(imsi), dtype)
            baselines = learn_baselines([c.capture for c in train], train_subs) if trained else []
            for ci, c in enumerate(test):
                subs = {a: DeviceRef(imsi_digits(imsi), dtype) for a in c.addresses}
                benign = replay(Detector(subs, baselines, thresholds), c.capture)
                benign_runs += 1
                benign_days += c.capture.duration / _DAY
                for _, alert in benign:
                    false_alarms.append(
                        {
                            "device_type": dtype,
                            "capture": c.path.name,
                            "kind": alert.kind,
                            "at": alert.to_json()["at"],
                            "summary": alert.summary,
                        }
                    )
                first = c.capture.first_ts or 0.0
                start = first + max(5.0, 0.3 * c.capture.duration)
                for v in variants:
                    atk, _ = _attack_capture(v, 1 + (ci % seeds), c.primary, start)
                    merged = _merge(c.capture, atk)
                    alerts = replay(Detector(subs, baselines, thresholds), merged)
                    runs.append(
                        _Run(dtype, c.path.name, v.name, v.attack_class, start, alerts, imsi)
                    )
    report = _score(
        types, runs, benign_runs, benign_days, false_alarms, variants, thresholds or Thresholds()
    )
    report.trained = trained
    return report


def _score(
    types: list[str],
    runs: list[_Run],
    benign_runs: int,
    benign_days: float,
    false_alarms: list[dict[str, Any]],
    variants: Sequence[Variant],
    th: Thresholds,
) -> EvaluationReport:
    classes: dict[str, dict[str, Any]] = {}
    per_variant: dict[str, dict[str, Any]] = {}
    missed: list[dict[str, str]] = []
    ttd: dict[str, list[float]] = {}
    detected: dict[str, int] = Counter()
    total: dict[str, int] = Counter()
    tp_alerts: dict[str, int] = Counter()
    fp_alerts: dict[str, int] = Counter(a["kind"] for a in false_alarms)
    other_on_attack: dict[str, Counter[str]] = {}
    vstat: dict[str, list[float]] = {}
    vdet: dict[str, int] = Counter()
    vtot: dict[str, int] = Counter()
    for r in runs:
        kind = _CLASS_KIND[r.attack_class]
        total[r.attack_class] += 1
        vtot[r.variant] += 1
        during = [(t, a) for t, a in r.alerts if t >= r.start and a.imsi == r.imsi]
        hits = [(t, a) for t, a in during if a.kind == kind]
        for _, a in during:
            if a.kind == kind:
                tp_alerts[kind] += 1
            elif a.kind in _CLASS_KIND.values():
                fp_alerts[a.kind] += 1
            else:
                other_on_attack.setdefault(r.attack_class, Counter())[a.kind] += 1
        if hits:
            detected[r.attack_class] += 1
            vdet[r.variant] += 1
            delay = min(t for t, _ in hits) - r.start
            ttd.setdefault(r.attack_class, []).append(delay)
            vstat.setdefault(r.variant, []).append(delay)
        else:
            missed.append(
                {"device_type": r.device_type, "capture": r.capture, "variant": r.variant}
            )
    for cls in sorted(total):
        kind = _CLASS_KIND[cls]
        d = ttd.get(cls, [])
        tp, fp = tp_alerts[kind], fp_alerts[kind]
        classes[cls] = {
            "runs": total[cls],
            "detected": detected[cls],
            "recall": round(detected[cls] / total[cls], 4),
            "alerts_true": tp,
            "alerts_false": fp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "time_to_detect_s": {
                "median": round(statistics.median(d), 1) if d else None,
                "p90": round(sorted(d)[int(0.9 * (len(d) - 1))], 1) if d else None,
                "max": round(max(d), 1) if d else None,
            },
            "other_alerts_during_attack": dict(other_on_attack.get(cls, Counter())),
        }
    for v in variants:
        d = vstat.get(v.name, [])
        per_variant[v.name] = {
            "class": v.attack_class,
            "runs": vtot[v.name],
            "recall": round(vdet[v.name] / vtot[v.name], 4) if vtot[v.name] else None,
            "median_time_to_detect_s": round(statistics.median(d), 1) if d else None,
        }
    return EvaluationReport(
        device_types=types,
        folds=2,
        benign_runs=benign_runs,
        benign_device_days=benign_days,
        false_alarms=false_alarms,
        classes=classes,
        variants=per_variant,
        thresholds=dataclasses.asdict(th),
        missed=missed,
    )
