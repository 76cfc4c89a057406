"""The streaming detector: flow records and attach events in, self-explaining alerts out.

Detectors (DESIGN.md "Detect"; issue 6 §5): scanning (Mirai: many distinct
destinations, unanswered SYNs, telnet 23/2323), DDoS participation (packets,
flows or bytes to one destination far above baseline), C2 beaconing (low-jitter
periodic contact with a destination outside the baseline), volume and
time-of-day anomalies, new destinations, and a SIM seen in a new device.

This module holds the per-record path and the detector's configuration; the
parts live beside it by responsibility: thresholds (``_thresholds``), address
classes (``_addresses``), per-device windows and resolved thresholds
(``_device``), destination knowledge from baselines and DNS names
(``_knowledge``), alert construction with evidence (``_explain``) and the
IMEIs per IMSI behind ``sim-swap`` (``_swap``). ``observe`` stays one function
on purpose: it runs for every flow record, and calls cost more than the work.

Per record the work is O(1): two tumbling windows per device (60 s and 10 s)
with the previous window kept for a sliding estimate, hash-set and dict
updates, and Welford running moments for contact intervals. Time is the
records' own time (``end``), never the wall clock, so the same code runs live
and over captures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simtrust.detect._addresses import GROUP, UNICAST, classify
from simtrust.detect._baseline import Baseline
from simtrust.detect._batch import observe_columns
from simtrust.detect._device import NO_PREV, DeviceState
from simtrust.detect._explain import Explainer
from simtrust.detect._knowledge import DestinationKnowledge
from simtrust.detect._model import Alert, AttachEvent, DeviceRef
from simtrust.detect._swap import SwapWatch
from simtrust.detect._thresholds import Thresholds
from simtrust.domain import PROTO_TCP, FlowRecord, ImsiDigits

__all__ = ["Detector", "Thresholds"]

_SYN, _ACK = 0x02, 0x10
_TELNET = frozenset((23, 2323))
_INFRA_PORTS = frozenset((53, 123, 5353))


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
        self._by_addr: dict[str, DeviceState] = {}
        self._by_imsi: dict[ImsiDigits, DeviceState] = {}
        #: the batch path's caches: IPv4 address as an integer → device (None: no
        #: subscriber's), → its text, → its address class
        self._by_int: dict[int, DeviceState | None] = {}
        self._dst_names: dict[int, str] = {}
        self._dst_classes: dict[int, int] = {}
        self._device_base: dict[str, Baseline] = {}
        self._cohort_base: dict[str, Baseline] = {}
        for b in baselines:
            self.add_baseline(b)
        self._learn = learn
        self._knowledge = DestinationKnowledge()
        self._names = self._knowledge.names
        self._classes = self._knowledge.classes
        self._explain = Explainer(self.th, self._knowledge)
        self._swaps = SwapWatch(self._explain)

    # -- configuration -------------------------------------------------------------------

    def add_baseline(self, baseline: Baseline) -> None:
        if baseline.scope == "cohort":
            self._cohort_base[baseline.key] = baseline
        else:
            self._device_base[baseline.key] = baseline
        for dev in self._by_imsi.values():
            dev.resolve(self.th, self._device_base, self._cohort_base)

    def assign(self, address: str, ref: DeviceRef) -> None:
        """Bind an address to a SIM (at attach); flows from it count for that device."""
        self._refs[address] = ref
        self._by_addr.pop(address, None)
        self._by_int.clear()

    def learn_names(self, address: str, name: str) -> None:
        """A name→address fact (from DNS answers the gateway or the capture saw)."""
        self._knowledge.learn_name(address, name)
        for dev in self._by_imsi.values():
            if dev.known.get(address) is False:
                del dev.known[address]

    # -- baselines -----------------------------------------------------------------------

    def baselines(self) -> list[Baseline]:
        """Device baselines learnt so far, plus one merged cohort baseline per group."""
        for dev in self._by_imsi.values():
            dev.close()
        devices = [d.learn for d in self._by_imsi.values() if d.learn is not None]
        groups: dict[str, list[Baseline]] = {}
        for d in self._by_imsi.values():
            if d.learn is not None and d.ref.device_group:
                groups.setdefault(d.ref.device_group, []).append(d.learn)
        cohorts = [Baseline.merge("cohort", g, parts) for g, parts in sorted(groups.items())]
        return devices + cohorts

    def thresholds_for(self, imsi: ImsiDigits) -> dict[str, float]:
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

    def _device(self, ref: DeviceRef) -> DeviceState:
        dev = self._by_imsi.get(ref.imsi)
        if dev is None:
            dev = DeviceState(ref)
            if self._learn:
                dev.learn = Baseline("device", ref.imsi)
            dev.resolve(self.th, self._device_base, self._cohort_base)
            self._by_imsi[ref.imsi] = dev
        return dev

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
                dev.roll60(w10 // 6)
            if dev.learn is not None:
                dev.roll10(w10)
            else:  # _roll10 inlined for the detecting (not learning) path
                if w10 == dev.w10 + 1:
                    dev.dst_prev = dev.dst_cur
                    dev.dst_cur = {}
                else:
                    dev.dst_prev = NO_PREV
                    if dev.dst_cur:
                        dev.dst_cur.clear()
                dev.w10 = w10
        w = dev.w60
        classes = self._classes
        cls = classes.get(dst)
        if cls is None:
            if len(classes) > 1_000_000:
                classes.clear()
            cls = classes[dst] = classify(dst)
        out: list[Alert] = []
        dev.by_cur += octets
        learn = dev.learn
        if learn is not None:
            learn.ports.add(dport)
            if cls == UNICAST and packets > 2:
                learn.add_destination(dst, self._names.get(dst, ()))

        # Scanning: unanswered TCP attempts (SYN without ACK) to many destinations.
        unanswered = proto == PROTO_TCP and flags & (_SYN | _ACK) == _SYN
        if unanswered and packets <= 3 and cls != GROUP:
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
                        out += self._explain.scan(dev, score, t)
        if packets <= 2 and cls == UNICAST:
            brd = dev.brd_cur
            if dst not in brd:
                if not brd and not dev.brd_prev:
                    dev.brd_first = start
                brd.add(dst)
                if learn is None:
                    est = len(brd) + dev.brd_prev * (1.0 - (t - w * 60) / 60.0)
                    if est >= dev.th_breadth and len(dev.syn_cur) * 2 < len(brd):
                        out += self._explain.breadth(dev, est, t)

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
            out += self._explain.ddos(dev, dst, e, t, w10, f)

        # Volume: bytes sent per 60 s.
        if dev.by_cur + dev.by_prev >= dev.th_vol:
            vol = dev.by_cur + dev.by_prev * (1.0 - (t - w * 60) / 60.0)
            if vol >= dev.th_vol:
                dev.by_first = max(dev.t_first, w * 60.0 - (60.0 if dev.by_prev else 0.0))
                out += self._explain.volume(dev, vol, t)

        # Destinations outside the baseline: beaconing, new destination, time of day.
        if cls == UNICAST and not unanswered:
            known = dev.known.get(dst)
            if known is None:
                known = self._knowledge.known(dev, dst)
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
                                out += self._explain.beacon(dev, f, dst, b)
                if packets > 2 and (dev.base is not None or dev.cohort is not None):
                    out += self._explain.destination(dev, f, dst)
        if dev.time_on and int(t // 3600) % 24 in dev.quiet:
            out += self._explain.time(dev, f)
        return out

    # -- attach events (SIM in a new device) ---------------------------------------------

    def observe_attach(self, ev: AttachEvent) -> list[Alert]:
        """Account an attach; a known IMSI in a device with another IMEI raises ``sim-swap``."""
        ref = DeviceRef(ev.imsi, ev.device_group, ev.tenant)
        dev = self._by_imsi.get(ev.imsi) or self._device(ref)
        return self._swaps.observe(ev, dev, self._device_base)

    # -- batch ---------------------------------------------------------------------------

    def flush(self, now: float) -> list[Alert]:
        """Close windows up to ``now``; nothing is pending in the per-record detectors.

        Alerts fire as soon as a record crosses a threshold, so flushing only rolls
        windows (which finalises learnt baselines in learning mode).
        """
        for dev in self._by_imsi.values():
            w = int(now // 60)
            if w > dev.w60 >= 0:
                dev.roll60(w)
            w10 = int(now // 10)
            if w10 > dev.w10 >= 0:
                dev.roll10(w10)
        return []

    def observe_columns(self, batch: Any) -> list[Alert]:
        """:meth:`observe` for every record of a column batch (the flows package's
        ``FlowColumns``), in order, without one object per record; the alerts
        and the state are those of observing ``batch.records()`` one by one.
        """
        return observe_columns(self, batch)

    def run(self, records: Iterable[FlowRecord]) -> list[Alert]:
        """Batch path: observe every record in order."""
        out: list[Alert] = []
        for r in records:
            out += self.observe(r)
        return out
