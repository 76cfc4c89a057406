"""The streaming detector over a batch of flow records in columns.

:meth:`Detector.observe_columns` gives the alerts, in the order, and leaves the
state that :meth:`Detector.observe` gives and leaves for the batch's records one
by one (``docs/decisions/flows-batch-path.md``). Sources are resolved to device
state and destinations named and classified once per address, kept by the detector (keyed by the
4-octet column values, RFC 7011 §3.4.3 records as the collector decoded them;
``assign`` drops the device cache), devices are created in the order their
first record arrives, and a
:class:`~simtrust.domain.FlowRecord` is built only for a record an alert
cites. The per-device windows and destination dictionaries change with every
record, so they are followed record by record: quiet records (no alert, no
first evidence, a destination known to be usual) by the C extension
``simtrust.detect._fast`` when it is built, every other record by ``_one``,
``observe``'s body over column values kept line for line beside it.
"""

from __future__ import annotations

import socket
from itertools import repeat
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from simtrust.detect._addresses import GROUP, UNICAST, classify
from simtrust.detect._device import NO_PREV, DeviceState
from simtrust.detect._model import Alert, DeviceRef
from simtrust.domain import PROTO_TCP

_fast: ModuleType | None
try:
    from simtrust.detect import _fast
except ImportError:  # built optionally (setup.py): observe's body in Python then
    _fast = None

if TYPE_CHECKING:
    from simtrust.detect._engine import Detector

__all__ = ["observe_columns"]

_SYN, _ACK = 0x02, 0x10
_TELNET = frozenset((23, 2323))
_INFRA_PORTS = frozenset((53, 123, 5353))
_U32 = np.dtype(">u4")


def _text(addr: int) -> str:
    return socket.inet_ntoa(addr.to_bytes(4, "big"))


_MISS = object()


def observe_columns(det: Detector, batch: Any) -> list[Alert]:
    """See :meth:`Detector.observe_columns`."""
    n = len(batch)
    if n == 0:
        return []
    src = np.frombuffer(batch.src_addr, _U32).tolist()
    dst = np.frombuffer(batch.dst_addr, _U32).tolist()
    # a record whose source is no subscriber's is skipped by observe (decoded records
    # carry no IMSI); devices are made in the order of their first record
    by_int = det._by_int
    devs = list(map(by_int.get, src, repeat(_MISS, n)))
    if _MISS in devs:
        if len(by_int) > 1_000_000:
            by_int.clear()
        refs, by_addr = det._refs, det._by_addr
        for i, a in enumerate(src):
            if devs[i] is not _MISS:
                continue
            dev = by_int.get(a, _MISS)
            if dev is _MISS:
                name = _text(a)
                dev = by_addr.get(name)
                if dev is None:
                    ref: DeviceRef | None = refs.get(name)
                    if ref is not None:
                        dev = by_addr[name] = det._device(ref)
                by_int[a] = dev
            devs[i] = dev
    names, kinds = det._dst_names, det._dst_classes
    dst_text = list(map(names.get, dst, repeat(None, n)))
    if None in dst_text:
        if len(names) > 1_000_000:  # start afresh (every record of the batch asks again)
            names.clear()
            kinds.clear()
            dst_text = [None] * n
        for i, a in enumerate(dst):
            if dst_text[i] is None:
                text = names.get(a)
                if text is None:
                    text = names[a] = _text(a)
                    kinds[a] = classify(text)
                dst_text[i] = text
    dst_cls = list(map(kinds.__getitem__, dst))
    return _loop(det, batch, cast("list[DeviceState | None]", devs),
                 cast("list[str]", dst_text), dst_cls)


def _loop(det: Detector, batch: Any, devs: list[DeviceState | None], dst_text: list[str],
          dst_cls: list[int]) -> list[Alert]:
    """Quiet records in C while they last, each other record through ``_one``."""
    out: list[Alert] = []
    # the numeric columns as they lie (the C path reads their buffers; an item of a
    # memoryview is the Python float or int tolist would give, for the records run here)
    cols: list[Any] = [memoryview(c) for c in (batch.start, batch.end, batch.dst_port,
                                              batch.protocol, batch.packets, batch.octets,
                                              batch.tcp_flags)]
    starts, ends, dports, protos, packets, octets, flags = cols
    n = len(devs)
    th = det.th
    beacon = (float(th.beacon_merge_s), float(th.beacon_min_contacts),
              float(th.beacon_min_period_s), float(th.beacon_max_period_s),
              float(th.beacon_max_cv))
    i = 0
    while i < n:
        if _fast is not None:
            i = _fast.step(devs, starts, ends, dst_text, dports, packets, octets, protos, flags,
                           dst_cls, i, NO_PREV, beacon, det._knowledge)
            if i >= n:
                break
        dev = devs[i]
        if dev is not None:
            _one(det, batch, i, dev, starts[i], ends[i], dst_text[i], dports[i], protos[i],
                 packets[i], octets[i], flags[i], dst_cls[i], out)
        i += 1
    return out


def _one(det: Detector, batch: Any, i: int, dev: DeviceState, start: float, t: float,
         dst: str, dport: int, proto: int, packets: int, octets: int, flags: int, cls: int,
         out: list[Alert]) -> None:
    """``Detector.observe``'s body for record ``i`` of ``batch``, line for line."""
    explain = det._explain
    th = det.th
    if t < dev.t_first:
        dev.t_first = start
    if t > dev.t_last:  # noqa: PLR1730 - as in observe
        dev.t_last = t
    w10 = int(t // 10)
    if w10 > dev.w10:
        if w10 // 6 > dev.w60:
            dev.roll60(w10 // 6)
        if dev.learn is not None:
            dev.roll10(w10)
        else:
            if w10 == dev.w10 + 1:
                dev.dst_prev = dev.dst_cur
                dev.dst_cur = {}
            else:
                dev.dst_prev = NO_PREV
                if dev.dst_cur:
                    dev.dst_cur.clear()
            dev.w10 = w10
    w = dev.w60
    dev.by_cur += octets
    learn = dev.learn
    if learn is not None:
        learn.ports.add(dport)
        if cls == UNICAST and packets > 2:
            learn.add_destination(dst, det._names.get(dst, ()))
    unanswered = proto == PROTO_TCP and flags & (_SYN | _ACK) == _SYN
    if unanswered and packets <= 3 and cls != GROUP:
        syn = dev.syn_cur
        if dst not in syn:
            if not syn and not dev.syn_prev:
                dev.syn_first = start
            syn[dst] = dport
            if dport in _TELNET:
                dev.tel_cur.add(dst)
            if learn is None:
                frac = (t - w * 60) / 60.0
                score = len(syn) + len(dev.tel_cur) + dev.syn_prev * (1.0 - frac)
                if score >= dev.th_scan:
                    out += explain.scan(dev, score, t)
    if packets <= 2 and cls == UNICAST:
        brd = dev.brd_cur
        if dst not in brd:
            if not brd and not dev.brd_prev:
                dev.brd_first = start
            brd.add(dst)
            if learn is None:
                est = len(brd) + dev.brd_prev * (1.0 - (t - w * 60) / 60.0)
                if est >= dev.th_breadth and len(dev.syn_cur) * 2 < len(brd):
                    out += explain.breadth(dev, est, t)
    dur = t - start
    share = 1.0 if dur <= 10.0 else 10.0 / dur
    dst_cur = dev.dst_cur
    e = dst_cur.get(dst)
    if e is None:
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
        return
    if t >= e[5] and (e[0] >= dev.h_dpk or e[1] >= dev.h_dflows or e[2] >= dev.h_dbytes):
        out += explain.ddos(dev, dst, e, t, w10, batch.record(i))
    if dev.by_cur + dev.by_prev >= dev.th_vol:
        vol = dev.by_cur + dev.by_prev * (1.0 - (t - w * 60) / 60.0)
        if vol >= dev.th_vol:
            dev.by_first = max(dev.t_first, w * 60.0 - (60.0 if dev.by_prev else 0.0))
            out += explain.volume(dev, vol, t)
    if cls == UNICAST and not unanswered:
        known = dev.known.get(dst)
        if known is None:
            known = det._knowledge.known(dev, dst)
        if not known:
            if proto == PROTO_TCP or dport not in _INFRA_PORTS:
                beacons = dev.beacons
                b = beacons.get(dst)
                if b is None:
                    if len(beacons) < 10_000:
                        beacons[dst] = [start, start, 0.0, 0.0, 0.0]
                else:
                    x = start - b[1]
                    if x >= th.beacon_merge_s:
                        b[1] = start
                        nb = b[2] = b[2] + 1.0
                        delta = x - b[3]
                        mean = b[3] = b[3] + delta / nb
                        b[4] += delta * (x - mean)
                        if nb + 1 >= th.beacon_min_contacts and (
                            th.beacon_min_period_s <= mean <= th.beacon_max_period_s
                        ):
                            out += explain.beacon(dev, batch.record(i), dst, b)
            if packets > 2 and (dev.base is not None or dev.cohort is not None):
                out += explain.destination(dev, batch.record(i), dst)
    if dev.time_on and int(t // 3600) % 24 in dev.quiet:
        out += explain.time(dev, batch.record(i))
