"""Flow records in columns through the policy engine, one batch at a time.

:meth:`PolicyEngine.ingest_columns` takes the collector's column batches (IPv4
records of fixed-length templates, RFC 7011 §3.4.3) and gives the results
:meth:`PolicyEngine.ingest` gives for the same records in the same order: the
same violations (destination, time window, roaming, volume and rate caps, in
that order), the same dispatcher submissions and the same usage counters. The
work is done over numpy arrays: addresses are mapped to SIMs by a sorted index
of the address map (``searchsorted``), allow-lists are range searches per
batch, local time comes from one zone lookup per (zone, quarter hour), and
volume and rate counters are segmented cumulative sums per device (a counter
restarts where its hour/day/month bucket or rate window changes, as the
per-record path restarts it; one ordered pass in C, ``simtrust.policy._counters``,
when it is built). Python objects are built only for the flows
that are not a plain allow. A batch the arrays cannot take exactly (non-finite
times, counters near 2^62) goes through the per-record path instead.
docs/decisions/flows-batch-path.md says why.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import ModuleType
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

_counters_c: ModuleType | None
try:
    from simtrust.policy import _counters as _counters_c
except ImportError:  # built optionally (setup.py): the numpy path then
    _counters_c = None

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

    __slots__ = ("_keys", "cps", "devices", "fines", "groups", "imsis", "inactive", "keep",
                 "tz", "tzs")

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
        self._keys: dict[str | int, list[tuple[ImsiDigits, str | int]]] = {}

    def keys(self, sub: str | int) -> list[tuple[ImsiDigits, str | int]]:
        """``(imsi, sub)`` per device: the usage counters' keys."""
        hit = self._keys.get(sub)
        if hit is None:
            hit = self._keys[sub] = [(imsi, sub) for imsi in self.imsis]
        return hit

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


def _segmented(dev: np.ndarray, bucket: np.ndarray, inc: np.ndarray, ud: np.ndarray,
               has: np.ndarray, sb: np.ndarray, su: np.ndarray) -> np.ndarray:
    """Per row the counter before it: rows of one device in order, restarting at a new bucket.

    ``ud`` are the devices (sorted); ``has``, ``sb``, ``su`` their stored
    ``(bucket, count)`` before the batch, where one is stored.
    """
    n = len(dev)
    order = np.argsort(dev, kind="stable")
    d, b, x = dev[order], bucket[order], inc[order]
    new = np.ones(n, bool)
    new[1:] = (d[1:] != d[:-1]) | (b[1:] != b[:-1])
    first = np.ones(n, bool)
    first[1:] = d[1:] != d[:-1]
    p = np.searchsorted(ud, d)
    base = np.where(first & has[p] & (sb[p] == b), su[p], 0)
    c = np.cumsum(x)
    seg = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    before = np.where(seg > 0, c[seg - 1], 0)
    # counter before row = base of its segment + what earlier rows of the segment added
    prev = base[seg] + (c - x) - before
    out = np.empty(n, np.int64)
    out[order] = prev
    return out


def _native_counters(dv: np.ndarray, bucket: np.ndarray, inc: np.ndarray, ud: np.ndarray,
                     keys: list[Any], counters: dict[Any, tuple[int, int]]
                     ) -> tuple[np.ndarray | None, list[Any]]:
    """``_numpy_counters`` in one ordered pass in C (``simtrust.policy._counters``);
    (None, []) where the C path does not apply."""
    if _counters_c is None or not (dv.dtype == bucket.dtype == inc.dtype == np.int64):
        return None, []
    prev = np.empty(len(dv), np.int64)
    stores = _counters_c.segmented(np.searchsorted(ud, dv), np.ascontiguousarray(bucket),
                                   np.ascontiguousarray(inc), keys, counters, prev)
    if stores is False:
        raise _Fallback
    if stores is None:
        return None, []
    return prev, stores


def _numpy_counters(dv: np.ndarray, bucket: np.ndarray, inc: np.ndarray, k: int,
                    ud: np.ndarray, last: np.ndarray, keys: list[Any],
                    counters: dict[Any, tuple[int, int]]) -> tuple[np.ndarray, list[Any]]:
    """Per row the counter before it, and per device of ``ud`` the (bucket, count) after."""
    cur = list(map(counters.get, keys))
    has = np.array([c is not None for c in cur], bool)
    try:
        stored = np.array([c if c is not None else (0, 0) for c in cur], np.int64)
    except OverflowError:
        raise _Fallback from None
    stored = stored.reshape(len(cur), 2)
    if has.any() and stored[:, 1].max() > 1 << 61:
        raise _Fallback
    prev = _segmented(dv, bucket, inc * k, ud, has, stored[:, 0], stored[:, 1])
    after = (prev[last] + inc[last] * k).tolist()
    return prev, list(zip(bucket[last].tolist(), after, strict=True))


class _Rows:
    """Position of a flow (row number) among the sorted rows of an evaluation."""

    __slots__ = ("rows",)

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __getitem__(self, r: int) -> int:
        return int(np.searchsorted(self.rows, r))


class _Plan:
    """What one batch decided, before anything is written."""

    __slots__ = ("extra", "rate", "volume", "writes")

    def __init__(self) -> None:
        #: row → violations in evaluation order (destination, time, roaming, volume, rate)
        self.extra: dict[int, list[tuple[int, Violation]]] = {}
        self.writes: list[tuple[dict[Any, tuple[int, int]], list[Any], list[Any]]] = []
        self.volume = 0
        self.rate = 0

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
    d_idx, imsis_d = index.map(engine.addresses, dst)
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
    for counters, keys, values in plan.writes:
        counters.update(zip(keys, values, strict=True))
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
        volume = ps.usage._volume
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
        order = _counters(plan, cp.volume, periods, volume, table, dv, row, at, octs, order,
                          "volume")
    if cp.rate:
        upsel = np.flatnonzero(up)
        windows: dict[int, np.ndarray] = {}
        for rrule2, _ in cp.rate:
            windows.setdefault(rrule2.per_seconds, np.floor_divide(
                now[upsel], float(rrule2.per_seconds)).astype(np.int64))
        ones = np.ones(len(upsel), np.int64)
        _counters(plan, cp.rate, {str(k): v for k, v in windows.items()}, ps.usage._flows,
                  table, dv[upsel], row[upsel], _Rows(row[upsel]), ones, order, "rate")


def _counters(plan: _Plan, rules: tuple[tuple[Any, Any], ...], buckets: dict[str, np.ndarray],
              counters: dict[Any, tuple[int, int]], table: DeviceTable, dv: np.ndarray,
              row: np.ndarray, at: _Rows, inc: np.ndarray, order: int,
              kind: str) -> int:
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
    ud, first_rev = np.unique(dv[::-1], return_index=True)
    last = len(dv) - 1 - first_rev  # each device's last row in the batch
    uds = ud.tolist()
    for name, js in per.items():
        bucket = buckets[name]
        k = len(js)
        sub: str | int = name if kind == "volume" else int(name)
        every = table.keys(sub)
        keys = [every[d] for d in uds]
        if len(dv) * k >= 1 << 20:
            raise _Fallback
        prev, stores = _native_counters(dv, bucket, inc * k, ud, keys, counters)
        if prev is None:
            prev, stores = _numpy_counters(dv, bucket, inc, k, ud, last, keys, counters)
        for m, j in enumerate(js, start=1):
            seen[j] = prev + inc * m
        plan.writes.append((counters, keys, stores))
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
