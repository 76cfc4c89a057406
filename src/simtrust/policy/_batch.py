"""Flow records in columns through the policy engine, one batch at a time.

:meth:`PolicyEngine.ingest_columns` takes the collector's column batches (IPv4
records of fixed-length templates, RFC 7011 §3.4.3) and gives the results
:meth:`PolicyEngine.ingest` gives for the same records in the same order: the
same violations (destination, time window, roaming, volume and rate caps, in
that order), the same dispatcher submissions and the same usage counters. The
work is done over numpy arrays: addresses are mapped to SIMs by a sorted index
of the address map (``searchsorted``), allow-lists are range searches per
batch, local time comes from one zone lookup per (zone, quarter hour), and
volume and rate counters are kept in arrays per device slot between batches
(``policy/_slots.py``: the ``UsageMeter`` dicts are written when something else
uses them) and counted row by row in one ordered pass (in C,
``simtrust.policy._counters``, when it is built; segmented cumulative sums in
numpy otherwise). Python objects are built only for the flows
that are not a plain allow. A batch the arrays cannot take exactly (non-finite
times, counters near 2^62) goes through the per-record path instead.
docs/decisions/flows-batch-path.md says why.
"""

from __future__ import annotations

import bisect
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from simtrust.domain import FlowRecord, ImsiDigits
from simtrust.policy._evaluate import (
    _BLOCKING,
    CompiledPolicy,
    Decision,
    PolicySet,
    Violation,
)
from simtrust.policy._model import Action
from simtrust.policy._slots import Counter, SlotCounters, count_rows

if TYPE_CHECKING:
    from simtrust.policy._engine import PolicyEngine

__all__ = ["AddressIndex", "ColumnBatch", "ingest_columns"]

_U32 = np.dtype(">u4")
_BIG = 1 << 40


class ColumnBatch(Protocol):
    """What the flows package's ``FlowColumns`` offers (buffers of one record each)."""

    def __len__(self) -> int: ...

    @property
    def start(self) -> Any: ...
    @property
    def src_addr(self) -> bytes: ...
    @property
    def dst_addr(self) -> bytes: ...
    @property
    def src_port(self) -> Any: ...
    @property
    def dst_port(self) -> Any: ...
    @property
    def protocol(self) -> Any: ...
    @property
    def octets(self) -> Any: ...

    def record(self, i: int) -> FlowRecord: ...

    def records(self, out: list[FlowRecord] | None = None) -> list[FlowRecord]: ...


class _Fallback(Exception):
    """The batch needs the per-record path (nothing was changed yet)."""


def _name(addr: int) -> str:
    return socket.inet_ntoa(addr.to_bytes(4, "big"))


class DeviceTable:
    """Per device of an address index: its context, compiled policy, zone, counter keys."""

    __slots__ = ("cps", "devices", "fines", "groups", "imsis", "inactive", "keep", "tz",
                 "tzs", "usage")

    def __init__(self, engine: PolicyEngine, imsis: list[ImsiDigits]) -> None:
        ps = engine.policies
        self.imsis = imsis
        self.devices = list(map(engine.directory.context, imsis))
        self.keep = np.array([d is not None for d in self.devices], bool)
        none = (CompiledPolicy(None, None, None, (), ()), Decision(True))
        compiled = [ps.compiled(d) if d is not None else none for d in self.devices]
        self.cps = [c[0] for c in compiled]
        self.fines = [c[1] for c in compiled]
        ids: dict[str, int] = {}
        self.tz = np.array([ids.setdefault(d.tz, len(ids)) if d is not None else 0
                            for d in self.devices], np.int64)
        self.tzs = list(ids)
        self.inactive = np.array([d is not None and not d.active for d in self.devices], bool)
        by_cp: dict[int, list[int]] = {}
        for k, cp in enumerate(self.cps):
            if not cp.empty and self.devices[k] is not None:
                by_cp.setdefault(id(cp), []).append(k)
        #: devices sharing one compiled policy
        self.groups = [np.array(m, np.int64) for m in by_cp.values()]
        #: the devices' usage counters, kept between batches
        self.usage = SlotCounters(imsis)

    def special(self, removed: set[str]) -> np.ndarray:
        """Devices whose flows are never a plain allow (inactive SIM, removed by an action)."""
        if not removed:
            return self.inactive
        gone: np.ndarray = self.inactive | np.array([i in removed for i in self.imsis], bool)
        return gone


class AddressIndex:
    """IPv4 address → IMSI as sorted arrays, rebuilt when the resolver's version moves."""

    __slots__ = ("_imsis", "_keys", "_table", "_table_key", "_version")

    def __init__(self) -> None:
        self._version = -1
        self._table: DeviceTable | None = None
        self._table_key: tuple[int, ...] = ()
        self._keys = np.zeros(0, np.int64)
        self._imsis: list[ImsiDigits] = []

    def map(self, resolver: Any, addrs: np.ndarray) -> tuple[np.ndarray, list[ImsiDigits]]:
        """Per address an index into the returned IMSI list, -1 where none is bound."""
        version = getattr(resolver, "version", None)
        bindings = getattr(resolver, "bindings", None)
        if version is None or bindings is None:
            uniq, inv = np.unique(addrs, return_inverse=True)
            imsis: list[ImsiDigits] = []
            pos = np.full(len(uniq), -1, np.int64)
            for k, a in enumerate(uniq.tolist()):
                imsi = resolver.lookup(_name(a))
                if imsi is not None:
                    pos[k] = len(imsis)
                    imsis.append(imsi)
            return pos[inv], imsis
        if version != self._version:
            pairs = sorted((int.from_bytes(socket.inet_aton(a), "big"), i)
                           for a, i in bindings().items() if ":" not in a)
            self._keys = np.array([k for k, _ in pairs], np.int64)
            self._imsis = [i for _, i in pairs]
            self._version = version
        keys = self._keys
        if not len(keys):
            return np.full(len(addrs), -1, np.int64), self._imsis
        at = np.minimum(np.searchsorted(keys, addrs), len(keys) - 1)
        return np.where(keys[at] == addrs, at, -1), self._imsis


    def table(self, engine: PolicyEngine, imsis: list[ImsiDigits]) -> DeviceTable | None:
        """The devices of ``imsis`` (this index's list), while nothing they depend on moved.

        None unless the directory and the resolver say when they change (``version``).
        """
        dir_version = getattr(engine.directory, "version", None)
        if dir_version is None or imsis is not self._imsis:
            return None
        ps = engine.policies
        key = (self._version, dir_version, ps.generation, ps.names.version)
        if self._table is None or key != self._table_key:
            self._table = DeviceTable(engine, imsis)
            self._table_key = key
        return self._table


def _dest_ok(cp: CompiledPolicy, addr: np.ndarray, port: np.ndarray,
             proto: np.ndarray) -> np.ndarray:
    assert cp.dest is not None
    ok = np.zeros(len(addr), bool)
    for d in cp.dest[2]:
        m = np.ones(len(addr), bool)
        if d.protocols is not None:
            m &= np.isin(proto, np.array(sorted(d.protocols), np.int64))
        if d.ports is not None:
            if d.ports.small is not None:
                m &= np.isin(port, np.array(sorted(d.ports.small), np.int64))
            else:
                los = np.array(d.ports.los, np.int64)
                his = np.array(d.ports.his, np.int64)
                i = np.searchsorted(los, port, "right") - 1
                m &= (i >= 0) & (port <= his[np.maximum(i, 0)])
        if not d.any_addr:
            if not d.v4:
                m &= False
            else:
                starts = np.array(d.v4.starts, np.int64)
                ends = np.array(d.v4.ends, np.int64)
                i = np.searchsorted(starts, addr, "right") - 1
                m &= (i >= 0) & (addr <= ends[np.maximum(i, 0)])
        ok |= m
    return ok


def _allowed_minutes(cp: CompiledPolicy) -> np.ndarray:
    assert cp.time is not None
    table = np.zeros(7 * 1440, bool)
    for day, windows in enumerate(cp.time[0].by_day):
        for s, e in windows:
            table[day * 1440 + s:day * 1440 + e] = True
    return table


class _Rows:
    """Position of a flow (row number) among the sorted rows of an evaluation."""

    __slots__ = ("_list", "rows")

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self._list: list[int] | None = None

    def __getitem__(self, r: int) -> int:
        # a list and bisect: a scalar searchsorted costs more than the list, after a few
        if self._list is None:
            self._list = self.rows.tolist()
        return bisect.bisect_left(self._list, r)


class _Plan:
    """What one batch decided, before anything is written."""

    __slots__ = ("extra", "work")

    def __init__(self) -> None:
        #: row → violations in evaluation order (destination, time, roaming, volume, rate)
        self.extra: dict[int, list[tuple[int, Violation]]] = {}
        #: per counter touched: its arrays as the batch leaves them, and the slots touched
        self.work: dict[tuple[bool, str | int],
                        tuple[Counter, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]] = {}

    def arrays(self, usage: SlotCounters, volume: bool, sub: str | int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """Copies of a counter's arrays that this batch changes (written at commit)."""
        hit = self.work.get((volume, sub))
        if hit is None:
            c = usage.counter(volume, sub)
            hit = self.work[(volume, sub)] = (c, c.bucket.copy(), c.count.copy(),
                                              c.has.copy(), [])
        return hit[1:]

    def commit(self, usage: SlotCounters) -> None:
        """The batch's counters become the held state (``_Fallback`` if the meter's
        dicts were written since the batch read them: nothing changes then)."""
        meter = usage.meter
        assert meter is not None
        with meter.lock:
            if meter.held is not usage:
                raise _Fallback
            for c, sb, sc, has, touched in self.work.values():
                c.bucket, c.count, c.has = sb, sc, has
                for pos in touched:
                    c.dirty[pos] = True

    def add(self, rows: np.ndarray, order: int, make: Callable[[int], Violation]) -> None:
        for r in rows.tolist():
            self.extra.setdefault(r, []).append((order, make(r)))


def _const(v: Violation) -> Callable[[int], Violation]:
    def make(_r: int) -> Violation:
        return v
    return make


def _tz_offsets(ps: PolicySet, tzs: list[str], tz_row: np.ndarray,
                slot: np.ndarray) -> np.ndarray:
    key = tz_row * (1 << 42) + (slot + (1 << 41))
    uniq, inv = np.unique(key, return_inverse=True)
    offs = np.array([ps.clock.offset(tzs[k >> 42], (k & ((1 << 42) - 1)) - (1 << 41))
                     for k in uniq.tolist()], np.int64)
    return offs[inv]


def ingest_columns(engine: PolicyEngine, cols: ColumnBatch, index: AddressIndex,
                   verdict_cls: Any) -> list[Any]:
    """See :meth:`PolicyEngine.ingest_columns` (``verdict_cls`` is its FlowVerdict)."""
    n = len(cols)
    if n == 0:
        return []
    with engine._lock:
        try:
            return _ingest(engine, cols, index, n, verdict_cls)
        except _Fallback:
            pass
    flows = cols.records()
    return [v for v in engine.ingest(flows) if v.decision.violations or not v.decision.allowed
            or v.decision.reason != "ok"]


def _ingest(engine: PolicyEngine, cols: ColumnBatch, index: AddressIndex, n: int,
            verdict_cls: Any) -> list[Any]:
    start = np.frombuffer(cols.start, np.float64)
    if not np.isfinite(start).all() or np.abs(start).max() > 1e13:
        raise _Fallback
    octets = np.frombuffer(cols.octets, np.uint64)
    if octets.max() >= _BIG:
        raise _Fallback
    src = np.frombuffer(cols.src_addr, _U32).astype(np.int64)
    dst = np.frombuffer(cols.dst_addr, _U32).astype(np.int64)
    sport = np.frombuffer(cols.src_port, np.uint64)
    dport = np.frombuffer(cols.dst_port, np.uint64)
    if max(int(sport.max()), int(dport.max())) >= _BIG:
        raise _Fallback
    proto = np.frombuffer(cols.protocol, np.uint64).astype(np.int64)
    s_idx, imsis = index.map(engine.addresses, src)
    # the destination is looked up only where the source is no SIM's, as ingest does
    down = np.flatnonzero(s_idx < 0)
    d_idx = np.full(n, -1, np.int64)
    d_idx[down], imsis_d = index.map(engine.addresses, dst[down])
    if imsis_d is not imsis:  # the generic resolver path: one list per call
        d_idx = np.where(d_idx >= 0, d_idx + len(imsis), -1)
        imsis = imsis + imsis_d
    uplink = s_idx >= 0
    idx = np.where(uplink, s_idx, d_idx)
    mapped = np.flatnonzero(idx >= 0)
    unmapped = n - len(mapped)
    ps = engine.policies
    table = index.table(engine, imsis)
    if table is None:  # no versioned directory: the batch's devices, asked once each
        u_imsi, dv_all = np.unique(idx[mapped], return_inverse=True)
        table = DeviceTable(engine, [imsis[u] for u in u_imsi.tolist()])
    else:
        dv_all = idx[mapped]
    ok_rows = table.keep[dv_all]
    unmapped += int((~ok_rows).sum())
    rows = mapped[ok_rows]
    dv = dv_all[ok_rows]  # device (table slot) per row
    up = uplink[rows]
    now = start[rows]
    v_addr = np.where(up, dst[rows], src[rows])
    v_port = np.where(up, dport[rows], sport[rows]).astype(np.int64)
    v_proto = proto[rows]
    v_oct = octets[rows].astype(np.int64)
    slot = np.floor_divide(now, 900.0).astype(np.int64)
    devices, cps, fines = table.devices, table.cps, table.fines
    table.usage.hold(ps.usage)
    plan = _Plan()
    for members in table.groups:
        cp = cps[int(members[0])]
        if len(table.groups) == 1:
            sel = np.arange(len(rows))
        else:
            sel = np.flatnonzero(np.isin(dv, members))
        _evaluate(ps, cp, plan, table, sel, rows, dv[sel], up[sel], now[sel],
                  v_addr[sel], v_port[sel], v_proto[sel], v_oct[sel], slot[sel])
    # a ``remove`` acts within the batch (the dispatcher marks the SIM removed at once,
    # and its later flows are decided as removed): the per-record path takes that batch
    if engine.dispatcher is not None and any(
            Action.REMOVE in v.actions for found in plan.extra.values() for _, v in found):
        raise _Fallback
    # commit: counters, then decisions in flow order
    if plan.work:
        plan.commit(table.usage)
    engine.unmapped += unmapped
    removed = engine.removed
    special = table.special(removed)
    interesting = set(plan.extra)
    if special.any():
        interesting.update(rows[special[dv]].tolist())
    if not interesting:
        return []
    pos = _Rows(rows)
    dispatcher = engine.dispatcher
    out = []
    for r in sorted(interesting):
        i = pos[r]
        k = int(dv[i])
        device = devices[k]
        assert device is not None
        found = plan.extra.get(r)
        if found:
            found.sort(key=lambda x: x[0])
            violations = tuple(v for _, v in found)
            blocked = any(a in _BLOCKING for v in violations for a in v.actions)
            decision = Decision(not blocked, violations, device.imsi,
                                ",".join(v.kind for v in violations))
        else:
            decision = fines[k]
        if device.imsi in removed:
            decision = Decision(False, decision.violations, device.imsi, "removed")
        elif not device.active:
            decision = Decision(False, decision.violations, device.imsi, "sim-inactive")
        flow = cols.record(r)
        if decision.violations and dispatcher is not None:
            dispatcher.submit(decision, device.tenant_id, _flow_dict(flow), flow.start)
        out.append(tuple.__new__(verdict_cls, (flow, device.imsi, bool(up[i]), decision)))
    return out


def _flow_dict(flow: FlowRecord) -> dict[str, object]:
    return {
        "src": flow.src_addr, "dst": flow.dst_addr, "sport": flow.src_port,
        "dport": flow.dst_port, "proto": flow.protocol, "packets": flow.packets,
        "octets": flow.octets, "start": flow.start, "end": flow.end,
    }


def _evaluate(ps: PolicySet, cp: CompiledPolicy, plan: _Plan, table: DeviceTable,
              sel: np.ndarray, rows: np.ndarray, dv: np.ndarray, up: np.ndarray,
              now: np.ndarray, addr: np.ndarray, port: np.ndarray, proto: np.ndarray,
              octs: np.ndarray, slot: np.ndarray) -> None:
    """Evaluate one compiled policy's rows (``sel`` indexes ``rows``); fills ``plan``."""
    devices, tzs, dev_tz = table.devices, table.tzs, table.tz
    row = rows[sel]
    at = _Rows(row)
    if cp.dest is not None:
        rule, pol, _ = cp.dest
        bad = row[~_dest_ok(cp, addr, port, proto)]

        def dest_v(r: int) -> Violation:
            i = at[r]
            a, p, pr = _name(int(addr[i])), int(port[i]), int(proto[i])
            return Violation("destination", rule.id, pol.key, pol.version,
                             f"{a} port {p} proto {pr} is not an allowed destination",
                             rule.actions, f"{rule.id}:{a}:{p}:{pr}")
        plan.add(bad, 0, dest_v)
    own_tz = np.asarray(dev_tz[dv])
    lt = now + _tz_offsets(ps, tzs, own_tz, slot)
    lti = np.trunc(lt).astype(np.int64)
    if cp.time is not None and not cp.time[0].always:
        ct, tpol = cp.time
        if ct.tz is not None:
            local = now + _tz_offsets(ps, [ct.tz], np.zeros(len(now), np.int64), slot)
            li = np.trunc(local).astype(np.int64)
        else:
            li = lti
        days = li // 86400
        weekday = (days + 3) % 7
        minute = (li - days * 86400) // 60
        bad = row[~_allowed_minutes(cp)[weekday * 1440 + minute]]

        def time_v(r: int) -> Violation:
            i = at[r]
            m, wd = int(minute[i]), int(weekday[i])
            device = devices[int(dv[i])]
            assert device is not None
            zone = ct.tz or device.tz
            return Violation("time", ct.rule.id, tpol.key, tpol.version,
                             f"local time {m // 60:02d}:{m % 60:02d} on day {wd} "
                             f"({zone}) is outside the allowed windows",
                             ct.rule.actions, f"{ct.rule.id}:{int(li[i]) // 3600}")
        plan.add(bad, 1, time_v)
    if cp.roaming is not None:
        rrule, rpol, allowed = cp.roaming
        for k in np.unique(dv).tolist():
            device = devices[k]
            if device.serving_mcc is not None and device.serving_mcc not in allowed:
                viol = Violation("roaming", rrule.id, rpol.key, rpol.version,
                                 f"attached in MCC {device.serving_mcc}, allowed "
                                 f"{sorted(allowed)}", rrule.actions,
                                 f"{rrule.id}:{device.serving_mcc}")
                plan.add(row[dv == k], 2, _const(viol))
    order = 3
    if cp.volume:
        periods: dict[str, np.ndarray] = {}
        for vrule, _ in cp.volume:
            if vrule.period not in periods:
                if vrule.period == "hour":
                    periods[vrule.period] = lti // 3600
                elif vrule.period == "day":
                    periods[vrule.period] = lti // 86400
                else:
                    uday, dinv = np.unique(lti // 86400, return_inverse=True)
                    months = np.array([ps.clock.month(float(d * 86400)) for d in uday.tolist()],
                                      np.int64)
                    periods[vrule.period] = months[dinv]
        order = _counters(plan, cp.volume, periods, table, dv, row, at, octs, order, "volume")
    if cp.rate:
        upsel = np.flatnonzero(up)
        windows: dict[int, np.ndarray] = {}
        for rrule2, _ in cp.rate:
            windows.setdefault(rrule2.per_seconds, np.floor_divide(
                now[upsel], float(rrule2.per_seconds)).astype(np.int64))
        ones = np.ones(len(upsel), np.int64)
        _counters(plan, cp.rate, {str(k): v for k, v in windows.items()}, table, dv[upsel],
                  row[upsel], _Rows(row[upsel]), ones, order, "rate")


def _counters(plan: _Plan, rules: tuple[tuple[Any, Any], ...], buckets: dict[str, np.ndarray],
              table: DeviceTable, dv: np.ndarray, row: np.ndarray, at: _Rows, inc: np.ndarray,
              order: int, kind: str) -> int:
    """Volume (``inc`` = octets) or rate (``inc`` = 1) counters of ``rules``, in rule order.

    Rules of one period (or window length) share one counter, and each adds
    ``inc`` to it in turn, as the per-record path does.
    """
    if not len(row):
        return order + len(rules)
    per: dict[str, list[int]] = {}
    for j, (rule, _) in enumerate(rules):
        per.setdefault(str(rule.period if kind == "volume" else rule.per_seconds), []).append(j)
    seen: dict[int, np.ndarray] = {}
    usage = table.usage
    pos = dv if usage.slot is None else usage.slot[dv]
    for name, js in per.items():
        bucket = buckets[name]
        k = len(js)
        if len(dv) * k >= 1 << 20:
            raise _Fallback
        sb, sc, has, touched = plan.arrays(usage, kind == "volume",
                                           name if kind == "volume" else int(name))
        prev = count_rows(pos, np.ascontiguousarray(bucket), inc * k, sb, sc, has)
        if prev is None:
            raise _Fallback
        touched.append(pos)
        for m, j in enumerate(js, start=1):
            seen[j] = prev + inc * m
        for j in js:
            rule, pol = rules[j]
            value = seen[j]
            bad = row[value > (rule.max_bytes if kind == "volume" else rule.max_flows)]

            def make(r: int, rule: Any = rule, pol: Any = pol, value: np.ndarray = value,
                     bucket: np.ndarray = bucket) -> Violation:
                i = at[r]
                used, b = int(value[i]), int(bucket[i])
                if kind == "volume":
                    return Violation("volume", rule.id, pol.key, pol.version,
                                     f"{used} bytes this {rule.period}, cap {rule.max_bytes}",
                                     rule.actions, f"{rule.id}:{b}")
                return Violation("rate", rule.id, pol.key, pol.version,
                                 f"{used} flows in {rule.per_seconds}s, cap {rule.max_flows}",
                                 rule.actions, f"{rule.id}:{b}")
            plan.add(bad, order + j, make)
    return order + len(rules)
