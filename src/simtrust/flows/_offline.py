"""Offline analysis: captures and a subscriber map in, baselines and alerts out.

The batch path replays metered records in the order a meter would have
exported them, interleaved with the DNS answers seen on the wire, through the
same :class:`~simtrust.detect.Detector` the live path uses (issue 6 §6), and
evaluates tenant policies on the same flows through the public
:class:`~simtrust.policy.PolicyEngine`.
"""

from __future__ import annotations

import csv
import heapq
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simtrust.detect import Alert, Baseline, Detector, DeviceRef, Thresholds
from simtrust.domain import DeviceContext, imsi_digits
from simtrust.errors import InvalidInput
from simtrust.flows._meter import Capture
from simtrust.policy import AddressMap, PolicyEngine, PolicySet, StaticDirectory, policy_from_dict

__all__ = ["analyze", "learn_baselines", "load_subscribers", "policy_alerts", "replay"]


def load_subscribers(path: str | Path) -> dict[str, DeviceRef]:
    """Read a ``ip,imsi,device_group`` CSV (optional ``tenant`` column) into an address map."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{p}: cannot read subscriber map ({exc})", file=str(p)) from exc
    rows = csv.DictReader(text.splitlines())
    fields = set(rows.fieldnames or ())
    if not {"ip", "imsi", "device_group"} <= fields:
        raise InvalidInput(f"{p}: header must be ip,imsi,device_group", file=str(p))
    out: dict[str, DeviceRef] = {}
    for n, row in enumerate(rows, start=2):
        ip, imsi = (row.get("ip") or "").strip(), (row.get("imsi") or "").strip()
        if not ip or not imsi:
            raise InvalidInput(f"{p}:{n}: ip and imsi are required", file=str(p), line=n)
        try:
            ip = ipaddress.ip_address(ip).compressed
        except ValueError as exc:
            raise InvalidInput(
                f"{p}:{n}: {ip!r} is not an IP address", file=str(p), line=n
            ) from exc
        out[ip] = DeviceRef(
            imsi_digits(imsi), (row.get("device_group") or "").strip(),
            (row.get("tenant") or "").strip()
        )
    return out


def replay(detector: Detector, capture: Capture) -> list[tuple[float, Alert]]:
    """Feed a capture's records (in export order) and DNS answers (in time order).

    Returns each alert with the export time of the record that raised it, which
    is when a live collector would have seen the evidence complete.
    """
    out: list[tuple[float, Alert]] = []
    records = sorted(zip(capture.exported_at, range(len(capture.records)), strict=True))
    dns = capture.dns
    di = 0
    for exported, i in records:
        while di < len(dns) and dns[di].ts <= exported:
            detector.learn_names(dns[di].address, dns[di].name)
            di += 1
        for alert in detector.observe(capture.records[i]):
            out.append((exported, alert))
    while di < len(dns):
        detector.learn_names(dns[di].address, dns[di].name)
        di += 1
    if capture.last_ts is not None:
        detector.flush(capture.last_ts)
    return out


def learn_baselines(
    captures: Iterable[Capture],
    subscribers: Mapping[str, DeviceRef],
) -> list[Baseline]:
    """Device and cohort baselines from training captures (each learnt alone, then merged).

    Captures are separate sessions, so the time between them is not counted as
    observed time and windows never straddle two captures.
    """
    per_device: dict[str, list[Baseline]] = {}
    groups: dict[str, str] = {ref.imsi: ref.device_group for ref in subscribers.values()}
    for cap in captures:
        det = Detector(subscribers, learn=True)
        replay(det, cap)
        for b in det.baselines():
            if b.scope == "device":
                per_device.setdefault(b.key, []).append(b)
    devices = [Baseline.merge("device", k, v) for k, v in sorted(per_device.items())]
    for d in devices:
        d.members = 1
    cohorts: dict[str, list[Baseline]] = {}
    for d in devices:
        if groups.get(d.key):
            cohorts.setdefault(groups[d.key], []).append(d)
    return devices + [Baseline.merge("cohort", g, v) for g, v in sorted(cohorts.items())]


def analyze(
    captures: Sequence[Capture],
    subscribers: Mapping[str, DeviceRef],
    baselines: Iterable[Baseline] = (),
    thresholds: Thresholds | None = None,
) -> list[Alert]:
    """Run the detectors over captures; alerts in the order they were raised."""
    det = Detector(subscribers, baselines, thresholds)
    merged: list[tuple[float, Alert]] = []
    for cap in captures:
        merged = list(heapq.merge(merged, replay(det, cap), key=lambda x: x[0]))
    return [a for _, a in merged]


def policy_alerts(
    capture: Capture,
    subscribers: Mapping[str, DeviceRef],
    policy_docs: Sequence[Mapping[str, Any]],
    cooldown_s: float = 600.0,
) -> list[tuple[float, Alert]]:
    """Evaluate the tenant policies (``simtrust.policy`` form) on a capture's flows.

    Each violation becomes an alert of the violated rule's kind (``destination``,
    ``time``, ``volume``, ``rate``, ``roaming``) whose evidence says which policy
    and rule, and what the flow was; one per SIM and rule per ``cooldown_s``.
    The first address of each SIM in the map is the one policies see.
    """
    policies = PolicySet([policy_from_dict(d) for d in policy_docs])
    addresses = AddressMap()
    directory = StaticDirectory()
    seen: set[str] = set()
    for ip, ref in subscribers.items():
        if ref.imsi in seen:
            continue
        seen.add(ref.imsi)
        addresses.attach(ref.imsi, "pcap", ip)
        directory.add(DeviceContext(ref.imsi, ref.tenant, apn="pcap", group=ref.device_group))
    refs = {ref.imsi: ref for ref in subscribers.values()}
    engine = PolicyEngine(policies, addresses, directory, None)
    last: dict[tuple[str, str], float] = {}
    out: list[tuple[float, Alert]] = []
    order = sorted(range(len(capture.records)), key=lambda i: capture.exported_at[i])
    for i in order:
        flow = capture.records[i]
        for verdict in engine.ingest([flow]):
            for v in verdict.decision.violations:
                key = (verdict.imsi, v.rule_id)
                if key in last and flow.start - last[key] < cooldown_s:
                    continue
                last[key] = flow.start
                ref = refs.get(verdict.imsi, DeviceRef(verdict.imsi))
                evidence = {
                    "source": "policy",
                    "feature": f"policy-rule:{v.kind}",
                    "baseline": f"policy:{v.policy}@v{v.version}#{v.rule_id}",
                    "observed": {
                        "src": flow.src_addr,
                        "dst": flow.dst_addr,
                        "dport": flow.dst_port,
                        "proto": flow.protocol,
                        "packets": flow.packets,
                        "octets": flow.octets,
                    },
                    "expected": v.detail,
                    "actions": [str(a) for a in v.actions],
                    "uplink": verdict.uplink,
                }
                alert = Alert(
                    v.kind,
                    verdict.imsi,
                    flow.start,
                    flow.end,
                    v.detail,
                    evidence,
                    ref.device_group,
                    ref.tenant,
                    "medium",
                )
                out.append((capture.exported_at[i], alert))
    return out
