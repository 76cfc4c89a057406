"""Per-device detector state and its windows.

Two tumbling windows per device (60 s and 10 s) with the previous window kept
for a sliding estimate; the thresholds in force, resolved from the device's
and its cohort's baselines; in learning mode, the baseline being recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from simtrust.detect._baseline import Baseline
from simtrust.detect._model import DeviceRef
from simtrust.detect._thresholds import Thresholds

__all__ = ["NO_PREV", "DeviceState"]

#: The previous 10 s window when it was not the adjacent one: shared, read-only.
NO_PREV: Mapping[str, list[float]] = MappingProxyType({})


class DeviceState:
    """Per-device detector state: windows, thresholds in force, learning, cooldowns."""

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
        self.dst_prev: Mapping[str, list[float]] = NO_PREV
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

    def resolve(self, th: Thresholds, device_base: Mapping[str, Baseline],
                cohort_base: Mapping[str, Baseline]) -> None:
        """Thresholds in force from the device's and its cohort's baselines (or floors)."""
        dev = self
        dev.base = device_base.get(dev.ref.imsi)
        dev.cohort = cohort_base.get(dev.ref.device_group) if dev.ref.device_group else None
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

    def roll60(self, w: int) -> None:
        """Start 60 s window ``w`` (the adjacent one's counts are kept for sliding)."""
        dev = self
        if dev.learn is not None and dev.w60 >= 0:
            dev.learn60()
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

    def learn60(self) -> None:
        """Record the closing 60 s window into the baseline being learnt."""
        dev = self
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

    def roll10(self, w: int) -> None:
        """Start 10 s window ``w`` (per-destination counters)."""
        dev = self
        if dev.learn is not None:
            for v in dev.dst_cur.values():
                dev.learn.raise_feature("dst_packets_10s", v[0])
                dev.learn.raise_feature("dst_flows_10s", v[1])
                dev.learn.raise_feature("dst_bytes_10s", v[2])
        if w == dev.w10 + 1:
            dev.dst_prev = dev.dst_cur
            dev.dst_cur = {}
        else:
            dev.dst_prev = NO_PREV
            if dev.dst_cur:
                dev.dst_cur.clear()
        dev.w10 = w

    def close(self) -> None:
        """Learning: fold the open windows into the baseline and count the observed time."""
        dev = self
        if dev.learn is not None and dev.w60 >= 0:
            dev.learn60()
            dev.roll10(dev.w10 + 2)
            dev.w60 = -1
            dev.syn_cur, dev.tel_cur, dev.brd_cur, dev.by_cur = {}, set(), set(), 0
            if dev.t_last > dev.t_first:
                dev.learn.observed_s += dev.t_last - dev.t_first
            dev.t_first, dev.t_last = math.inf, -math.inf
