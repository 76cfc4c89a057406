"""The streaming detector: flow records and attach events in, self-explaining alerts out.

Detectors (DESIGN.md "Detect"; issue 6 §5): scanning (Mirai: many distinct
destinations, unanswered SYNs, telnet 23/2323), DDoS participation (packets,
flows or bytes to one destination far above baseline), C2 beaconing (low-jitter
periodic contact with a destination outside the baseline), volume and
time-of-day anomalies, new destinations, and a SIM seen in a new device.

Per record the work is O(1): two tumbling windows per device (60 s and 10 s)
with the previous window kept for a sliding estimate, hash-set and dict
updates, and Welford running moments for contact intervals. Time is the
records' own time (``end``), never the wall clock, so the same code runs live
and over captures.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from simtrust.detect._baseline import Baseline
from simtrust.detect._model import Alert, AttachEvent, DeviceRef
from simtrust.domain import PROTO_TCP, FlowRecord

__all__ = ["Detector", "Thresholds"]

_SYN, _ACK = 0x02, 0x10
_TELNET = frozenset((23, 2323))
_INFRA_PORTS = frozenset((53, 123, 5353))
_UNICAST, _LOCAL, _GROUP = 0, 1, 2
#: The previous 10 s window when it was not the adjacent one: shared, read-only.
_NO_PREV: Mapping[str, list[float]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Alarm thresholds: ``max(floor, factor × baseline maximum)`` per feature.

    Floors are physical facts about attacks, not about any capture: a Mirai
    scanner probes hundreds of addresses a minute, a flood sends hundreds of
    packets a second; a sensor, plug or camera reaches a handful of services.
    """

    scan_floor: float = 16.0
    scan_factor: float = 4.0
    breadth_floor: float = 64.0
    breadth_factor: float = 4.0
    ddos_packets_floor: float = 1500.0
    ddos_flows_floor: float = 150.0
    ddos_bytes_floor: float = 4_000_000.0
    ddos_factor: float = 10.0
    ddos_known_factor: float = 5.0
    volume_floor_trained: float = 5_000_000.0
    volume_floor_default: float = 60_000_000.0
    volume_factor: float = 10.0
    beacon_min_contacts: int = 7
    beacon_max_cv: float = 0.2
    beacon_min_period_s: float = 10.0
    beacon_max_period_s: float = 6 * 3600.0
    beacon_merge_s: float = 2.0
    destination_min_windows: int = 240
    time_min_days: int = 7
    cooldown_s: float = 600.0


# (network, mask) pairs of IPv4 space that is local to a site or an operator's core.
_LOCAL_V4 = tuple(
    (int(n.network_address), int(n.netmask))
    for n in map(
        ipaddress.IPv4Network,
        (
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "0.0.0.0/8",
        ),
    )
)
_LOCAL_V6 = tuple(map(ipaddress.IPv6Network, ("fc00::/7", "fe80::/10", "::1/128", "::/128")))


def _classify(addr: str) -> int:
    """Group (multicast/broadcast), local (RFC 1918/6598/4193, link-local) or unicast.

    Documentation and benchmarking ranges count as unicast on purpose: they
    stand for Internet hosts in tests and never occur on a live network.
    """
    if ":" not in addr:
        try:
            value = int.from_bytes(socket.inet_aton(addr), "big")
        except OSError:
            return _LOCAL
        if value >> 28 == 0xE or value & 0xFF == 0xFF:
            return _GROUP
        for net, mask in _LOCAL_V4:
            if value & mask == net:
                return _LOCAL
        return _UNICAST
    try:
        ip6 = ipaddress.IPv6Address(addr)
    except ValueError:
        return _LOCAL
    if ip6.is_multicast:
        return _GROUP
    if any(ip6 in net for net in _LOCAL_V6):
        return _LOCAL
    return _UNICAST


class _Dev:
    """Per-device detector state."""

    __slots__ = (
        "alerted",
        "base",
        "beacons",
        "brd_cur",
        "brd_first",
        "brd_prev",
        "by_cur",
        "by_first",
        "by_prev",
        "cohort",
        "dst_cur",
        "dst_prev",
        "h_dbytes",
        "h_dflows",
        "h_dpk",
        "known",
        "learn",
        "new_dsts",
        "quiet",
        "ref",
        "syn_cur",
        "syn_first",
        "syn_prev",
        "t_first",
        "t_last",
        "tel_cur",
        "tel_prev",
        "th_breadth",
        "th_dbytes",
        "th_dflows",
        "th_dpk",
        "th_scan",
        "th_vol",
        "time_on",
        "w10",
        "w60",
    )

    def __init__(self, ref: DeviceRef) -> None:
        self.ref = ref
        self.w60 = -1
        self.w10 = -1
        self.syn_cur: dict[str, int] = {}
        self.syn_prev = 0
        self.syn_first = 0.0
        self.tel_cur: set[str] = set()
        self.tel_prev = 0
        self.brd_cur: set[str] = set()
        self.brd_prev = 0
        self.brd_first = 0.0
        self.by_cur = 0
        self.by_prev = 0
        self.by_first = 0.0
        self.dst_cur: dict[str, list[float]] = {}
        self.dst_prev: Mapping[str, list[float]] = _NO_PREV
        self.beacons: dict[str, list[float]] = {}
        self.known: dict[str, bool] = {}
        self.alerted: dict[tuple[str, str], float] = {}
        self.new_dsts: dict[str, float] = {}
        self.t_first = math.inf
        self.t_last = -math.inf
        self.base: Baseline | None = None
        self.cohort: Baseline | None = None
        self.learn: Baseline | None = None
        self.th_scan = self.th_breadth = self.th_dpk = self.th_dflows = 0.0
        self.th_dbytes = self.th_vol = 0.0
        self.h_dpk = self.h_dflows = self.h_dbytes = 0.0
        self.time_on = False
        self.quiet: frozenset[int] = frozenset()


class Detector:
    """Streaming detection over flow records of many devices.

    ``subscribers`` maps an address to the SIM it was assigned to. Baselines are
    looked up per IMSI (device) and per device group (cohort); without either,
    the floors of :class:`Thresholds` apply and the detectors that need a
    learnt baseline (new destination, time of day) stay silent. With
    ``learn=True`` the detector raises no alerts and records baselines instead.
    """

    def __init__(
        self,
        subscribers: Mapping[str, DeviceRef] | None = None,
        baselines: Iterable[Baseline] = (),
        thresholds: Thresholds | None = None,
        learn: bool = False,
    ) -> None:
        self.th = thresholds or Thresholds()
        self._refs: dict[str, DeviceRef] = dict(subscribers or {})
        self._by_addr: dict[str, _Dev] = {}
        self._by_imsi: dict[str, _Dev] = {}
        self._device_base: dict[str, Baseline] = {}
        self._cohort_base: dict[str, Baseline] = {}
        for b in baselines:
            self.add_baseline(b)
        self._learn = learn
        self._names: dict[str, set[str]] = {}
        self._class: dict[str, int] = {}
        self._imeis: dict[str, dict[str, float]] = {}

    # -- configuration -------------------------------------------------------------------

    def add_baseline(self, baseline: Baseline) -> None:
        if baseline.scope == "cohort":
            self._cohort_base[baseline.key] = baseline
        else:
            self._device_base[baseline.key] = baseline
        for dev in self._by_imsi.values():
            self._resolve(dev)

    def assign(self, address: str, ref: DeviceRef) -> None:
        """Bind an address to a SIM (at attach); flows from it count for that device."""
        self._refs[address] = ref
        self._by_addr.pop(address, None)

    def learn_names(self, address: str, name: str) -> None:
        """A name→address fact (from DNS answers the gateway or the capture saw)."""
        self._names.setdefault(address, set()).add(name.lower().rstrip("."))
        for dev in self._by_imsi.values():
            if dev.known.get(address) is False:
                del dev.known[address]

    # -- baselines -----------------------------------------------------------------------

    def baselines(self) -> list[Baseline]:
        """Device baselines learnt so far, plus one merged cohort baseline per group."""
        self._close_all()
        devices = [d.learn for d in self._by_imsi.values() if d.learn is not None]
        groups: dict[str, list[Baseline]] = {}
        for d in self._by_imsi.values():
            if d.learn is not None and d.ref.device_group:
                groups.setdefault(d.ref.device_group, []).append(d.learn)
        cohorts = [Baseline.merge("cohort", g, parts) for g, parts in sorted(groups.items())]
        return devices + cohorts

    def thresholds_for(self, imsi: str) -> dict[str, float]:
        """The thresholds in force for a device seen so far (empty when it is unknown)."""
        dev = self._by_imsi.get(imsi)
        if dev is None:
            return {}
        return {
            "scan_score_60s": dev.th_scan,
            "breadth_60s": dev.th_breadth,
            "dst_packets_10s": dev.th_dpk,
            "dst_flows_10s": dev.th_dflows,
            "dst_bytes_10s": dev.th_dbytes,
            "bytes_60s": dev.th_vol,
        }

    def _resolve(self, dev: _Dev) -> None:
        th = self.th
        dev.base = self._device_base.get(dev.ref.imsi)
        dev.cohort = self._cohort_base.get(dev.ref.device_group) if dev.ref.device_group else None
        trained = dev.base is not None or dev.cohort is not None

        def expected(name: str) -> float:
            return max(
                dev.base.feature(name) if dev.base else 0.0,
                dev.cohort.feature(name) if dev.cohort else 0.0,
            )

        dev.th_scan = max(th.scan_floor, th.scan_factor * expected("scan_score_60s"))
        dev.th_breadth = max(th.breadth_floor, th.breadth_factor * expected("breadth_60s"))
        dev.th_dpk = max(th.ddos_packets_floor, th.ddos_factor * expected("dst_packets_10s"))
        dev.th_dflows = max(th.ddos_flows_floor, th.ddos_factor * expected("dst_flows_10s"))
        dev.th_dbytes = max(th.ddos_bytes_floor, th.ddos_factor * expected("dst_bytes_10s"))
        # Below half a threshold the exact sliding check is skipped.
        dev.h_dpk, dev.h_dflows, dev.h_dbytes = dev.th_dpk / 2, dev.th_dflows / 2, dev.th_dbytes / 2
        dev.th_vol = (
            max(th.volume_floor_trained, th.volume_factor * expected("bytes_60s"))
            if trained
            else th.volume_floor_default
        )
        days = (dev.base.days if dev.base else set()) | (dev.cohort.days if dev.cohort else set())
        dev.time_on = len(days) >= th.time_min_days
        profile = [0] * 24
        for b in (dev.base, dev.cohort):
            if b is not None:
                profile = [x + y for x, y in zip(profile, b.hours, strict=True)]
        dev.quiet = frozenset(
            h for h in range(24) if not (profile[h] or profile[h - 1] or profile[(h + 1) % 24])
        )
        dev.known.clear()

    def _device(self, ref: DeviceRef) -> _Dev:
        dev = self._by_imsi.get(ref.imsi)
        if dev is None:
            dev = _Dev(ref)
            if self._learn:
                dev.learn = Baseline("device", ref.imsi)
            self._resolve(dev)
            self._by_imsi[ref.imsi] = dev
        return dev

    # -- evidence helpers ----------------------------------------------------------------

    def _which(self, dev: _Dev, feature: str) -> tuple[str, float]:
        b = dev.base.feature(feature) if dev.base else 0.0
        c = dev.cohort.feature(feature) if dev.cohort else 0.0
        if dev.base is None and dev.cohort is None:
            return "default", 0.0
        if dev.base is not None and b >= c:
            return f"device:{dev.ref.imsi}", b
        return f"cohort:{dev.ref.device_group}", c

    def _alert(
        self,
        dev: _Dev,
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

    def _threshold_evidence(
        self,
        dev: _Dev,
        feature: str,
        observed: float,
        threshold: float,
        window: float,
    ) -> dict[str, Any]:
        baseline, expected = self._which(dev, feature)
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

    # -- windows -------------------------------------------------------------------------

    def _roll60(self, dev: _Dev, w: int) -> None:
        if dev.learn is not None and dev.w60 >= 0:
            self._learn60(dev)
        adjacent = w == dev.w60 + 1
        dev.syn_prev = len(dev.syn_cur) + len(dev.tel_cur) if adjacent else 0
        dev.brd_prev = len(dev.brd_cur) if adjacent else 0
        dev.by_prev = dev.by_cur if adjacent else 0
        # Emptied in place: nothing outside the device holds these containers
        # (alerts copy what they report), and most windows leave them empty.
        if dev.syn_cur:
            dev.syn_cur.clear()
        if dev.tel_cur:
            dev.tel_cur.clear()
        if dev.brd_cur:
            dev.brd_cur.clear()
        dev.by_cur = 0
        dev.w60 = w

    def _learn60(self, dev: _Dev) -> None:
        b = dev.learn
        if b is None or not dev.by_cur:
            return
        b.windows += 1
        b.raise_feature("scan_score_60s", len(dev.syn_cur) + len(dev.tel_cur))
        b.raise_feature("breadth_60s", len(dev.brd_cur))
        b.raise_feature("bytes_60s", dev.by_cur)
        when = datetime.fromtimestamp(dev.w60 * 60, UTC)
        b.hours[when.hour] += 1
        b.days.add(when.strftime("%Y-%m-%d"))

    def _roll10(self, dev: _Dev, w: int) -> None:
        if dev.learn is not None:
            for v in dev.dst_cur.values():
                dev.learn.raise_feature("dst_packets_10s", v[0])
                dev.learn.raise_feature("dst_flows_10s", v[1])
                dev.learn.raise_feature("dst_bytes_10s", v[2])
        if w == dev.w10 + 1:
            dev.dst_prev = dev.dst_cur
            dev.dst_cur = {}
        else:
            dev.dst_prev = _NO_PREV
            if dev.dst_cur:
                dev.dst_cur.clear()
        dev.w10 = w

    def _close_all(self) -> None:
        for dev in self._by_imsi.values():
            if dev.learn is not None and dev.w60 >= 0:
                self._learn60(dev)
                self._roll10(dev, dev.w10 + 2)
                dev.w60 = -1
                dev.syn_cur, dev.tel_cur, dev.brd_cur, dev.by_cur = {}, set(), set(), 0
                if dev.t_last > dev.t_first:
                    dev.learn.observed_s += dev.t_last - dev.t_first
                dev.t_first, dev.t_last = math.inf, -math.inf

    # -- the per-record path -------------------------------------------------------------

    def observe(self, f: FlowRecord) -> list[Alert]:
        """Account one flow record; returns the alerts it completes (usually none)."""
        # One unpack instead of a dozen attribute loads; the hot path below keeps
        # device fields in locals and calls out only for window rolls and alerts.
        start, t, src, dst, _sport, dport, proto, packets, octets, flags, _exp, imsi = f
        dev = self._by_addr.get(src)
        if dev is None:
            # ``_by_addr`` caches ``_refs`` (``assign`` drops stale entries), so a hit
            # there means the address is a subscriber's.
            ref = self._refs.get(src)
            if ref is None:
                if imsi is None or dst in self._refs:
                    return []
                dev = self._by_imsi.get(imsi) or self._device(DeviceRef(imsi))
            else:
                dev = self._by_addr[src] = self._device(ref)
        if t < dev.t_first:
            dev.t_first = start
        if t > dev.t_last:  # noqa: PLR1730 - a branch is cheaper than max() per record
            dev.t_last = t
        w10 = int(t // 10)
        if w10 > dev.w10:
            if w10 // 6 > dev.w60:
                self._roll60(dev, w10 // 6)
            if dev.learn is not None:
                self._roll10(dev, w10)
            else:  # _roll10 inlined for the detecting (not learning) path
                if w10 == dev.w10 + 1:
                    dev.dst_prev = dev.dst_cur
                    dev.dst_cur = {}
                else:
                    dev.dst_prev = _NO_PREV
                    if dev.dst_cur:
                        dev.dst_cur.clear()
                dev.w10 = w10
        w = dev.w60
        cls = self._class.get(dst)
        if cls is None:
            if len(self._class) > 1_000_000:
                self._class.clear()
            cls = self._class[dst] = _classify(dst)
        out: list[Alert] = []
        dev.by_cur += octets
        learn = dev.learn
        if learn is not None:
            learn.ports.add(dport)
            if cls == _UNICAST and packets > 2:
                learn.add_destination(dst, self._names.get(dst, ()))

        # Scanning: unanswered TCP attempts (SYN without ACK) to many destinations.
        unanswered = proto == PROTO_TCP and flags & (_SYN | _ACK) == _SYN
        if unanswered and packets <= 3 and cls != _GROUP:
            syn = dev.syn_cur
            if dst not in syn:
                if not syn and not dev.syn_prev:
                    # First evidence: keep the previous window's start while it counts.
                    dev.syn_first = start
                syn[dst] = dport
                if dport in _TELNET:
                    dev.tel_cur.add(dst)
                if learn is None:
                    frac = (t - w * 60) / 60.0
                    score = len(syn) + len(dev.tel_cur) + dev.syn_prev * (1.0 - frac)
                    if score >= dev.th_scan:
                        out += self._scan_alert(dev, score, t)
        if packets <= 2 and cls == _UNICAST:
            brd = dev.brd_cur
            if dst not in brd:
                if not brd and not dev.brd_prev:
                    dev.brd_first = start
                brd.add(dst)
                if learn is None:
                    est = len(brd) + dev.brd_prev * (1.0 - (t - w * 60) / 60.0)
                    if est >= dev.th_breadth and len(dev.syn_cur) * 2 < len(brd):
                        out += self._breadth_alert(dev, est, t)

        # Flood: per-destination packets/flows/bytes in 10 s (long flows count pro rata).
        dur = t - start
        share = 1.0 if dur <= 10.0 else 10.0 / dur
        dst_cur = dev.dst_cur
        e = dst_cur.get(dst)
        if e is None:
            # packets, flows, bytes, first start, unanswered flows, quiet until
            e = dst_cur[dst] = [
                packets * share, 1.0, octets * share, start, 1.0 if unanswered else 0.0, 0.0,
            ]
        else:
            e[0] += packets * share
            e[1] += 1.0
            e[2] += octets * share
            if unanswered:
                e[4] += 1.0
        if learn is not None:
            return out
        if t >= e[5] and (e[0] >= dev.h_dpk or e[1] >= dev.h_dflows or e[2] >= dev.h_dbytes):
            out += self._ddos_check(dev, dst, e, t, w10, f)

        # Volume: bytes sent per 60 s.
        if dev.by_cur + dev.by_prev >= dev.th_vol:
            vol = dev.by_cur + dev.by_prev * (1.0 - (t - w * 60) / 60.0)
            if vol >= dev.th_vol:
                dev.by_first = max(dev.t_first, w * 60.0 - (60.0 if dev.by_prev else 0.0))
                out += self._volume_alert(dev, vol, t)

        # Destinations outside the baseline: beaconing, new destination, time of day.
        if cls == _UNICAST and not unanswered:
            known = dev.known.get(dst)
            if known is None:
                known = self._known(dev, dst)
            if not known:
                # Beaconing: Welford moments of the intervals between contacts. Time
                # and name service polls (NTP, DNS) are periodic by design.
                if proto == PROTO_TCP or dport not in _INFRA_PORTS:
                    beacons = dev.beacons
                    b = beacons.get(dst)
                    if b is None:
                        if len(beacons) < 10_000:
                            # [first, last contact start, intervals, mean, M2]
                            beacons[dst] = [start, start, 0.0, 0.0, 0.0]
                    else:
                        x = start - b[1]
                        th = self.th
                        if x >= th.beacon_merge_s:
                            b[1] = start
                            n = b[2] = b[2] + 1.0
                            delta = x - b[3]
                            mean = b[3] = b[3] + delta / n
                            b[4] += delta * (x - mean)
                            if n + 1 >= th.beacon_min_contacts and (
                                th.beacon_min_period_s <= mean <= th.beacon_max_period_s
                            ):
                                out += self._beacon_check(dev, f, dst, b)
                if packets > 2 and (dev.base is not None or dev.cohort is not None):
                    out += self._destination_check(dev, f, dst)
        if dev.time_on and int(t // 3600) % 24 in dev.quiet:
            out += self._time_check(dev, f)
        return out

    def _classify(self, dst: str) -> int:
        cls = self._class.get(dst)
        if cls is None:
            if len(self._class) > 1_000_000:
                self._class.clear()
            cls = self._class[dst] = _classify(dst)
        return cls

    def _known(self, dev: _Dev, dst: str) -> bool:
        known = dev.known.get(dst)
        if known is None:
            known = self._knows(dev, dst)
            if known or len(dev.known) < 100_000:
                dev.known[dst] = known
        return known

    def _knows(self, dev: _Dev, dst: str) -> bool:
        names = self._names.get(dst, ())
        if dev.base is None and dev.cohort is None:
            # Self-baselining: a destination the device looked up by name is one it meant
            # to reach; bare-address contact is what needs explaining.
            return bool(names)
        return bool(
            (dev.base is not None and dev.base.knows(dst, names))
            or (dev.cohort is not None and dev.cohort.knows(dst, names))
        )

    # -- detectors -----------------------------------------------------------------------

    def _scan_alert(self, dev: _Dev, score: float, t: float) -> list[Alert]:
        if (last := dev.alerted.get(("scan", ""))) is not None and t - last < self.th.cooldown_s:
            return []
        targets = list(dev.syn_cur)
        ports: dict[str, int] = {}
        for p in dev.syn_cur.values():
            ports[str(p)] = ports.get(str(p), 0) + 1
        telnet = len(dev.tel_cur)
        ev = self._threshold_evidence(dev, "scan_score_60s", score, dev.th_scan, 60.0)
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
        return self._alert(
            dev,
            "scan",
            "",
            dev.syn_first,
            t,
            f"unanswered TCP SYNs to {len(targets)} distinct hosts within 60 s "
            f"({telnet} on telnet 23/2323)",
            ev,
        )

    def _breadth_alert(self, dev: _Dev, est: float, t: float) -> list[Alert]:
        ev = self._threshold_evidence(dev, "breadth_60s", est, dev.th_breadth, 60.0)
        ev.update(
            {
                "distinct_targets": len(dev.brd_cur),
                "sample_targets": list(dev.brd_cur)[:5],
                "signature": "address-sweep",
            }
        )
        return self._alert(
            dev,
            "scan",
            "",
            dev.brd_first,
            t,
            f"{len(dev.brd_cur)} distinct hosts contacted with at most 2 packets within 60 s",
            ev,
        )

    def _ddos_check(
        self,
        dev: _Dev,
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
        known = self._classify(dst) == _GROUP or self._known(dev, dst)
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
        ev = self._threshold_evidence(dev, feature, observed, threshold, 10.0)
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
        return self._alert(
            dev,
            "ddos",
            dst,
            first,
            t,
            f"{vector}: {pk / 10.0:.0f} packets/s, {fl / 10.0:.0f} flows/s to {dst}",
            ev,
        )

    def _volume_alert(self, dev: _Dev, vol: float, t: float) -> list[Alert]:
        if (last := dev.alerted.get(("volume", ""))) is not None and t - last < self.th.cooldown_s:
            return []
        ev = self._threshold_evidence(dev, "bytes_60s", vol, dev.th_vol, 60.0)
        return self._alert(
            dev,
            "volume",
            "",
            dev.by_first or t,
            t,
            f"{vol / 1e6:.1f} MB sent within 60 s",
            ev,
            severity="medium",
        )

    def _beacon_check(self, dev: _Dev, f: FlowRecord, dst: str, b: list[float]) -> list[Alert]:
        """A beacon alert when the contact intervals so far are periodic enough."""
        th = self.th
        n = b[2]
        cv = math.sqrt(b[4] / (n - 1)) / b[3] if n > 1 else 0.0
        if cv > th.beacon_max_cv:
            return []
        baseline = self._which(dev, "destinations")[0]
        ev = {
            "feature": "contact_interval_s",
            "baseline": baseline,
            "destination": dst,
            "port": f.dst_port,
            "protocol": f.protocol,
            "names": sorted(self._names.get(dst, ())),
            "contacts": int(n + 1),
            "period_s": round(b[3], 3),
            "jitter_cv": round(cv, 4),
            "threshold_cv": th.beacon_max_cv,
            "observed": round(cv, 4),
            "expected": "destination outside baseline; benign periodic contact "
            "goes to baseline destinations",
        }
        return self._alert(
            dev,
            "beacon",
            dst,
            b[0],
            f.end,
            f"periodic contact with new destination {dst}: every "
            f"{b[3]:.1f} s, jitter {cv * 100:.1f} %",
            ev,
        )

    def _destination_check(self, dev: _Dev, f: FlowRecord, dst: str) -> list[Alert]:
        """A destination alert once a mature baseline exists that does not know ``dst``."""
        th = self.th
        if not (
            (dev.base is not None and dev.base.windows >= th.destination_min_windows)
            or (dev.cohort is not None and dev.cohort.windows >= th.destination_min_windows)
        ):
            return []
        if dst not in dev.new_dsts and len(dev.new_dsts) < 10_000:
            dev.new_dsts[dst] = f.start
        baseline, _ = self._which(dev, "destinations")
        ev2 = {
            "feature": "destination",
            "baseline": baseline,
            "observed": dst,
            "names": sorted(self._names.get(dst, ())),
            "port": f.dst_port,
            "port_in_baseline": any(
                b is not None and f.dst_port in b.ports for b in (dev.base, dev.cohort)
            ),
            "protocol": f.protocol,
            "expected": "one of the baseline's addresses, prefixes or names",
            "new_destinations": list(dev.new_dsts)[-10:],
        }
        return self._alert(
            dev,
            "destination",
            "",
            dev.new_dsts.get(dst, f.start),
            f.end,
            f"contact with {dst} outside the baseline",
            ev2,
            severity="medium",
        )

    def _time_check(self, dev: _Dev, f: FlowRecord) -> list[Alert]:
        hour = int(f.end // 3600) % 24
        ev = {
            "feature": "hour_of_day_utc",
            "baseline": self._which(dev, "hours")[0],
            "observed": hour,
            "expected": sorted(set(range(24)) - dev.quiet),
            "tolerance_h": 1,
            "baseline_days": len(
                (dev.base.days if dev.base else set()) | (dev.cohort.days if dev.cohort else set())
            ),
        }
        return self._alert(
            dev,
            "time",
            str(int(f.end // 3600)),
            f.start,
            f.end,
            f"active at {hour:02d}h UTC, an hour the baseline never saw",
            ev,
            severity="medium",
        )

    # -- attach events (SIM in a new device) ---------------------------------------------

    def observe_attach(self, ev: AttachEvent) -> list[Alert]:
        """Account an attach; a known IMSI in a device with another IMEI raises ``sim-swap``."""
        seen = self._imeis.get(ev.imsi)
        if seen is None:
            seen = self._imeis[ev.imsi] = {}
            base = self._device_base.get(ev.imsi)
            if base is not None:
                seen.update(dict.fromkeys(base.imeis, -math.inf))
        ref = DeviceRef(ev.imsi, ev.device_group, ev.tenant)
        dev = self._by_imsi.get(ev.imsi) or self._device(ref)
        if dev.learn is not None:
            dev.learn.imeis.add(ev.imei)
        out: list[Alert] = []
        if seen and ev.imei not in seen and dev.learn is None:
            recent = {i: t for i, t in seen.items() if ev.at - t <= 86_400.0}
            pattern = "clone-suspected" if len(recent) >= 1 else "swap"
            prev = sorted(seen)
            tac_changed = all(i[:8] != ev.imei[:8] for i in prev)
            evidence = {
                "feature": "imei_for_imsi",
                "baseline": f"device:{ev.imsi}",
                "observed": ev.imei,
                "expected": prev,
                "tac_changed": tac_changed,
                "pattern": pattern,
                "previous_seen_within_24h": sorted(recent),
            }
            out += self._alert(
                dev,
                "sim-swap",
                ev.imei,
                ev.at,
                ev.at,
                f"SIM {ev.imsi} attached from a new device (IMEI {ev.imei}"
                f"{', different model' if tac_changed else ''})",
                evidence,
            )
        seen[ev.imei] = ev.at
        return out

    # -- batch ---------------------------------------------------------------------------

    def flush(self, now: float) -> list[Alert]:
        """Close windows up to ``now``; nothing is pending in the per-record detectors.

        Alerts fire as soon as a record crosses a threshold, so flushing only rolls
        windows (which finalises learnt baselines in learning mode).
        """
        for dev in self._by_imsi.values():
            w = int(now // 60)
            if w > dev.w60 >= 0:
                self._roll60(dev, w)
            w10 = int(now // 10)
            if w10 > dev.w10 >= 0:
                self._roll10(dev, w10)
        return []

    def run(self, records: Iterable[FlowRecord]) -> list[Alert]:
        """Batch path: observe every record in order."""
        out: list[Alert] = []
        for r in records:
            out += self.observe(r)
        return out
