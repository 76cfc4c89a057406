"""Building alerts that explain themselves (DESIGN.md "Detect").

Each detector's alert carries its evidence: the feature, the baseline it was
held against (device, cohort or the default floors), the observed and expected
values, the threshold and how far past it the observation is, plus what the
detector saw (targets, ports, vector, period and jitter, names). One alert per
device, kind and key per cooldown.
"""

from __future__ import annotations

import math
from typing import Any

from simtrust.detect._addresses import GROUP
from simtrust.detect._device import DeviceState
from simtrust.detect._knowledge import DestinationKnowledge
from simtrust.detect._model import Alert
from simtrust.detect._thresholds import Thresholds
from simtrust.domain import PROTO_TCP, FlowRecord

__all__ = ["Explainer"]


class Explainer:
    """Turns a detector's finding on one device into an :class:`Alert` with its evidence."""

    __slots__ = ("knowledge", "th")

    def __init__(self, th: Thresholds, knowledge: DestinationKnowledge) -> None:
        self.th = th
        self.knowledge = knowledge

    def which(self, dev: DeviceState, feature: str) -> tuple[str, float]:
        b = dev.base.feature(feature) if dev.base else 0.0
        c = dev.cohort.feature(feature) if dev.cohort else 0.0
        if dev.base is None and dev.cohort is None:
            return "default", 0.0
        if dev.base is not None and b >= c:
            return f"device:{dev.ref.imsi}", b
        return f"cohort:{dev.ref.device_group}", c

    def alert(
        self,
        dev: DeviceState,
        kind: str,
        key: str,
        at: float,
        now: float,
        summary: str,
        evidence: dict[str, Any],
        severity: str = "high",
    ) -> list[Alert]:
        last = dev.alerted.get((kind, key))
        if last is not None and now - last < self.th.cooldown_s:
            return []
        dev.alerted[(kind, key)] = now
        return [
            Alert(
                kind,
                dev.ref.imsi,
                at,
                now,
                summary,
                evidence,
                dev.ref.device_group,
                dev.ref.tenant,
                severity,
            )
        ]

    def threshold_evidence(
        self,
        dev: DeviceState,
        feature: str,
        observed: float,
        threshold: float,
        window: float,
    ) -> dict[str, Any]:
        baseline, expected = self.which(dev, feature)
        return {
            "feature": feature,
            "baseline": baseline,
            "observed": round(observed, 3),
            "expected": round(expected, 3),
            "threshold": round(threshold, 3),
            "ratio": round(observed / expected, 2) if expected else None,
            "times_threshold": round(observed / threshold, 2),
            "window_s": window,
        }

    def scan(self, dev: DeviceState, score: float, t: float) -> list[Alert]:
        if (last := dev.alerted.get(("scan", ""))) is not None and t - last < self.th.cooldown_s:
            return []
        targets = list(dev.syn_cur)
        ports: dict[str, int] = {}
        for p in dev.syn_cur.values():
            ports[str(p)] = ports.get(str(p), 0) + 1
        telnet = len(dev.tel_cur)
        ev = self.threshold_evidence(dev, "scan_score_60s", score, dev.th_scan, 60.0)
        ev.update(
            {
                "distinct_targets": len(targets),
                "telnet_targets": telnet,
                "telnet_share": round(telnet / len(targets), 3) if targets else 0.0,
                "ports": dict(sorted(ports.items(), key=lambda kv: -kv[1])[:8]),
                "sample_targets": targets[:5],
                "signature": "mirai-telnet-scan" if telnet * 2 >= len(targets) else "tcp-syn-scan",
            }
        )
        return self.alert(
            dev,
            "scan",
            "",
            dev.syn_first,
            t,
            f"unanswered TCP SYNs to {len(targets)} distinct hosts within 60 s "
            f"({telnet} on telnet 23/2323)",
            ev,
        )

    def breadth(self, dev: DeviceState, est: float, t: float) -> list[Alert]:
        ev = self.threshold_evidence(dev, "breadth_60s", est, dev.th_breadth, 60.0)
        ev.update(
            {
                "distinct_targets": len(dev.brd_cur),
                "sample_targets": list(dev.brd_cur)[:5],
                "signature": "address-sweep",
            }
        )
        return self.alert(
            dev,
            "scan",
            "",
            dev.brd_first,
            t,
            f"{len(dev.brd_cur)} distinct hosts contacted with at most 2 packets within 60 s",
            ev,
        )

    def ddos(
        self,
        dev: DeviceState,
        dst: str,
        e: list[float],
        t: float,
        w10: int,
        f: FlowRecord,
    ) -> list[Alert]:
        prev = dev.dst_prev.get(dst)
        frac = 1.0 - (t - w10 * 10) / 10.0
        pk = e[0] + (prev[0] * frac if prev else 0.0)
        fl = e[1] + (prev[1] * frac if prev else 0.0)
        by = e[2] + (prev[2] * frac if prev else 0.0)
        # A device streaming to its own service (a baseline destination, or one it
        # resolved by name) is held to a higher bar than traffic to an unknown target.
        known = self.knowledge.classify(dst) == GROUP or self.knowledge.known(dev, dst)
        scale = self.th.ddos_known_factor if known else 1.0
        hits = []
        if pk >= dev.th_dpk * scale:
            hits.append(("dst_packets_10s", pk, dev.th_dpk * scale))
        if fl >= dev.th_dflows * scale:
            hits.append(("dst_flows_10s", fl, dev.th_dflows * scale))
        if by >= dev.th_dbytes * scale:
            hits.append(("dst_bytes_10s", by, dev.th_dbytes * scale))
        if not hits:
            return []
        if (last := dev.alerted.get(("ddos", dst))) is not None and t - last < self.th.cooldown_s:
            e[5] = last + self.th.cooldown_s
            return []
        feature, observed, threshold = max(hits, key=lambda h: h[1] / h[2])
        ev = self.threshold_evidence(dev, feature, observed, threshold, 10.0)
        syn_share = e[4] / e[1] if e[1] else 0.0
        vector = {1: "icmp-flood", 17: "udp-flood", 47: "gre-flood"}.get(f.protocol, "ip-flood")
        if f.protocol == 17 and f.dst_port == 53:
            vector = "dns-flood"
        if f.protocol == PROTO_TCP:
            if syn_share > 0.5:
                vector = "syn-flood"
            elif f.dst_port in (80, 8080, 443) and f.octets / max(f.packets, 1) > 100:
                vector = "http-flood"
            else:
                vector = "ack-flood"
        ev.update(
            {
                "target": dst,
                "target_port": f.dst_port,
                "protocol": f.protocol,
                "vector": vector,
                "packets_per_s": round(pk / 10.0, 1),
                "flows_per_s": round(fl / 10.0, 1),
                "bits_per_s": round(by * 8 / 10.0),
                "all_triggers": [h[0] for h in hits],
                "target_known": known,
            }
        )
        first = min(e[3], prev[3]) if prev else e[3]
        return self.alert(
            dev,
            "ddos",
            dst,
            first,
            t,
            f"{vector}: {pk / 10.0:.0f} packets/s, {fl / 10.0:.0f} flows/s to {dst}",
            ev,
        )

    def volume(self, dev: DeviceState, vol: float, t: float) -> list[Alert]:
        if (last := dev.alerted.get(("volume", ""))) is not None and t - last < self.th.cooldown_s:
            return []
        ev = self.threshold_evidence(dev, "bytes_60s", vol, dev.th_vol, 60.0)
        return self.alert(
            dev,
            "volume",
            "",
            dev.by_first or t,
            t,
            f"{vol / 1e6:.1f} MB sent within 60 s",
            ev,
            severity="medium",
        )

    def beacon(self, dev: DeviceState, f: FlowRecord, dst: str, b: list[float]) -> list[Alert]:
        """A beacon alert when the contact intervals so far are periodic enough."""
        th = self.th
        n = b[2]
        cv = math.sqrt(b[4] / (n - 1)) / b[3] if n > 1 else 0.0
        if cv > th.beacon_max_cv:
            return []
        baseline = self.which(dev, "destinations")[0]
        ev = {
            "feature": "contact_interval_s",
            "baseline": baseline,
            "destination": dst,
            "port": f.dst_port,
            "protocol": f.protocol,
            "names": sorted(self.knowledge.names.get(dst, ())),
            "contacts": int(n + 1),
            "period_s": round(b[3], 3),
            "jitter_cv": round(cv, 4),
            "threshold_cv": th.beacon_max_cv,
            "observed": round(cv, 4),
            "expected": "destination outside baseline; benign periodic contact "
            "goes to baseline destinations",
        }
        return self.alert(
            dev,
            "beacon",
            dst,
            b[0],
            f.end,
            f"periodic contact with new destination {dst}: every "
            f"{b[3]:.1f} s, jitter {cv * 100:.1f} %",
            ev,
        )

    def destination(self, dev: DeviceState, f: FlowRecord, dst: str) -> list[Alert]:
        """A destination alert once a mature baseline exists that does not know ``dst``."""
        th = self.th
        if not (
            (dev.base is not None and dev.base.windows >= th.destination_min_windows)
            or (dev.cohort is not None and dev.cohort.windows >= th.destination_min_windows)
        ):
            return []
        if dst not in dev.new_dsts and len(dev.new_dsts) < 10_000:
            dev.new_dsts[dst] = f.start
        baseline, _ = self.which(dev, "destinations")
        ev2 = {
            "feature": "destination",
            "baseline": baseline,
            "observed": dst,
            "names": sorted(self.knowledge.names.get(dst, ())),
            "port": f.dst_port,
            "port_in_baseline": any(
                b is not None and f.dst_port in b.ports for b in (dev.base, dev.cohort)
            ),
            "protocol": f.protocol,
            "expected": "one of the baseline's addresses, prefixes or names",
            "new_destinations": list(dev.new_dsts)[-10:],
        }
        return self.alert(
            dev,
            "destination",
            "",
            dev.new_dsts.get(dst, f.start),
            f.end,
            f"contact with {dst} outside the baseline",
            ev2,
            severity="medium",
        )

    def time(self, dev: DeviceState, f: FlowRecord) -> list[Alert]:
        hour = int(f.end // 3600) % 24
        ev = {
            "feature": "hour_of_day_utc",
            "baseline": self.which(dev, "hours")[0],
            "observed": hour,
            "expected": sorted(set(range(24)) - dev.quiet),
            "tolerance_h": 1,
            "baseline_days": len(
                (dev.base.days if dev.base else set()) | (dev.cohort.days if dev.cohort else set())
            ),
        }
        return self.alert(
            dev,
            "time",
            str(int(f.end // 3600)),
            f.start,
            f.end,
            f"active at {hour:02d}h UTC, an hour the baseline never saw",
            ev,
            severity="medium",
        )
