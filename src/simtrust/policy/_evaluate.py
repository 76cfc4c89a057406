"""The compiled, in-memory policy evaluator behind the inline decision API.

Policies are compiled once into flat structures — CIDR sets as merged, sorted
integer ranges searched with :func:`bisect.bisect_right`, port sets as merged
ranges (or a frozenset when small), protocol sets, time windows as minute
ranges per weekday — so that deciding "may this flow start?" is a handful of
dictionary and bisect operations. Evaluation is pure: the caller passes the
flow, the device context and time; counters for volume and rate caps live in
:class:`UsageMeter`, also clock-free.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from simtrust.domain import DeviceContext, FlowRecord, ImsiDigits
from simtrust.policy._model import (
    SCOPE_RANK,
    Action,
    DestinationRule,
    Policy,
    RateCapRule,
    RoamingRule,
    Rule,
    ScopeKind,
    TimeWindowRule,
    VolumeCapRule,
)
from simtrust.policy._usage import UsageMeter

__all__ = [
    "CompiledPolicy",
    "Decision",
    "LocalClock",
    "NameMap",
    "PolicySet",
    "UsageMeter",
    "Violation",
    "address_int",
]

_BLOCKING = frozenset({Action.BLOCK, Action.REMOVE})


def address_int(text: str) -> tuple[int, int]:
    """``(version, integer)`` of an IPv4/IPv6 address in text; (0, 0) if unparsable."""
    try:
        if ":" in text:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        return 0, 0


class NameMap:
    """DNS name → addresses, as the gateway reports what its resolver answered.

    Every change bumps :attr:`version`; compiled policies depending on names
    are rebuilt lazily when the version moves.
    """

    __slots__ = ("_names", "version")

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str]] = {}
        self.version = 0

    def report(self, name: str, addresses: Iterable[str]) -> None:
        """Record the current answer for ``name`` (replaces the previous one)."""
        norm = name.strip().lower().rstrip(".")
        addrs = frozenset(str(ipaddress.ip_address(a)) for a in addresses)
        if self._names.get(norm) != addrs:
            self._names[norm] = addrs
            self.version += 1

    def resolve(self, pattern: str) -> set[str]:
        """Addresses of ``pattern``: an exact name or ``*.suffix`` (any depth)."""
        if pattern.startswith("*."):
            suffix = pattern[1:]
            return {a for n, addrs in self._names.items() if n.endswith(suffix) for a in addrs}
        return set(self._names.get(pattern, ()))

    def snapshot(self) -> dict[str, list[str]]:
        return {n: sorted(a) for n, a in sorted(self._names.items())}


class LocalClock:
    """UTC epoch → (local epoch seconds, weekday) in a zone, cached per quarter hour.

    Zone offsets only change on quarter-hour boundaries, so the offset found
    for one instant holds for its whole UTC quarter hour.
    """

    __slots__ = ("_cache", "_months", "_zones")

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, int]] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._months: dict[int, int] = {}

    def month(self, local: float) -> int:
        """Month number (year * 12 + month - 1) of a local epoch time."""
        day = int(local) // 86400
        hit = self._months.get(day)
        if hit is None:
            if len(self._months) > 4096:
                self._months.clear()
            hit = self._months[day] = _month_key(local)
        return hit

    def local(self, tz: str, ts: float) -> float:
        slot = int(ts // 900)
        hit = self._cache.get(tz)
        if hit is not None and hit[0] == slot:
            return ts + hit[1]
        seconds = self.offset(tz, slot)
        self._cache[tz] = (slot, seconds)
        return ts + seconds

    def offset(self, tz: str, slot: int) -> int:
        """Seconds ``tz`` is ahead of UTC during the quarter hour ``slot`` (epoch // 900)."""
        zone = self._zones.get(tz)
        if zone is None:
            zone = self._zones[tz] = ZoneInfo(tz)
        offset = datetime.fromtimestamp(slot * 900, UTC).astimezone(zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0


def _weekday_minute(local: float) -> tuple[int, int]:
    days, rest = divmod(int(local), 86400)
    return (days + 3) % 7, rest // 60  # 1970-01-01 was a Thursday (weekday 3)


def _month_key(local: float) -> int:
    d = datetime.fromtimestamp(int(local) // 86400 * 86400, UTC)
    return d.year * 12 + d.month - 1


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which, of which policy version, why, and what to do."""

    kind: str
    rule_id: str
    policy: str
    version: int
    detail: str
    actions: tuple[Action, ...]
    key: str

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "rule_id": self.rule_id,
            "policy": self.policy,
            "version": self.version,
            "detail": self.detail,
            "actions": [str(a) for a in self.actions],
        }


class Decision(NamedTuple):
    """The answer to "may this flow start?": ``allowed`` plus the violations behind it.

    A named tuple (immutable, and cheap to build on the per-flow path).
    """

    allowed: bool
    violations: tuple[Violation, ...] = ()
    imsi: ImsiDigits | None = None
    reason: str = "ok"

    @property
    def actions(self) -> frozenset[Action]:
        return frozenset(a for v in self.violations for a in v.actions)

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "imsi": self.imsi,
            "violations": [v.to_dict() for v in self.violations],
        }


ALLOW = Decision(True)


class _Ports:
    __slots__ = ("his", "los", "small")

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        total = sum(hi - lo + 1 for lo, hi in ranges)
        self.small: frozenset[int] | None = (
            frozenset(p for lo, hi in ranges for p in range(lo, hi + 1)) if total <= 64 else None
        )
        self.los = [lo for lo, _ in ranges]
        self.his = [hi for _, hi in ranges]

    def __contains__(self, port: int) -> bool:
        if self.small is not None:
            return port in self.small
        i = bisect.bisect_right(self.los, port) - 1
        return i >= 0 and port <= self.his[i]


class _Ranges:
    """Merged, sorted closed integer ranges of one address family."""

    __slots__ = ("ends", "starts")

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        ranges.sort()
        merged: list[list[int]] = []
        for lo, hi in ranges:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]

    def __bool__(self) -> bool:
        return bool(self.starts)


class _CompiledDest:
    __slots__ = ("any_addr", "ports", "protocols", "v4", "v6")

    def __init__(self, cidrs: set[str], any_addr: bool, ports: _Ports | None,
                 protocols: frozenset[int] | None) -> None:
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            rng = (int(net.network_address), int(net.broadcast_address))
            (v4 if net.version == 4 else v6).append(rng)
        self.v4 = _Ranges(v4)
        self.v6 = _Ranges(v6)
        self.any_addr = any_addr
        self.ports = ports
        self.protocols = protocols

    def match(self, family: int, addr: int, port: int, proto: int) -> bool:
        if self.protocols is not None and proto not in self.protocols:
            return False
        if self.ports is not None and port not in self.ports:
            return False
        if self.any_addr:
            return True
        return addr in (self.v4 if family == 4 else self.v6)


class _CompiledTime:
    __slots__ = ("always", "by_day", "rule", "tz")

    def __init__(self, rule: TimeWindowRule) -> None:
        self.rule = rule
        self.tz = rule.tz
        by_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for w in rule.windows:
            s, e = w.start_minute, w.end_minute
            for d in w.days:
                if e > s:
                    by_day[d].append((s, e))
                else:  # wraps midnight (or the whole day when s == e)
                    by_day[d].append((s, 1440))
                    if e:
                        by_day[(d + 1) % 7].append((0, e))
        self.by_day = tuple(tuple(x) for x in by_day)

        self.always = all(any(s == 0 and e == 1440 for s, e in day) for day in self.by_day)

    def allows(self, weekday: int, minute: int) -> bool:
        return any(s <= minute < e for s, e in self.by_day[weekday])


@dataclass(slots=True)
class CompiledPolicy:
    """The effective rules for one (tenant, APN, group, device) after precedence."""

    dest: tuple[DestinationRule, Policy, tuple[_CompiledDest, ...]] | None
    time: tuple[_CompiledTime, Policy] | None
    roaming: tuple[RoamingRule, Policy, frozenset[str]] | None
    volume: tuple[tuple[VolumeCapRule, Policy], ...]
    rate: tuple[tuple[RateCapRule, Policy], ...]
    empty: bool = False
    #: (destination, port, protocol) → allowed; IoT devices reuse few destinations
    dest_memo: dict[tuple[str, int, int], bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.empty = not (self.dest or self.time or self.roaming or self.volume or self.rate)


def _compile_dest(rule: DestinationRule, names: NameMap) -> tuple[_CompiledDest, ...]:
    out = []
    for d in rule.allow:
        cidrs = set(d.cidrs)
        for name in d.names:
            cidrs.update(names.resolve(name))
        ports = _Ports(d.ports) if d.ports else None
        protos = frozenset(d.protocols) if d.protocols else None
        out.append(_CompiledDest(cidrs, not d.cidrs and not d.names, ports, protos))
    return tuple(out)


class PolicySet:
    """All active policies, compiled; answers :meth:`evaluate` per flow.

    Precedence (``docs/decisions/policy-scope-precedence.md``): for each rule
    kind, the most specific scope that has rules of that kind wins — a device
    policy's destination list replaces its group's, which replaces its APN's,
    which replaces the tenant's. Effective policies are cached per
    (tenant, APN, group, IMSI) and rebuilt when policies or names change.
    """

    def __init__(self, policies: Iterable[Policy] = (), names: NameMap | None = None) -> None:
        self.names = names if names is not None else NameMap()
        self.usage = UsageMeter()
        self.clock = LocalClock()
        #: bumped by every :meth:`put` (compiled policies held elsewhere are stale then)
        self.generation = 0
        self._by_scope: dict[tuple[str, ScopeKind, str], Policy] = {}
        self._effective: dict[tuple[str, str, str, str], CompiledPolicy] = {}
        self._by_layers: dict[tuple[tuple[str, int], ...], CompiledPolicy] = {}
        self._names_version = self.names.version
        self._addr_cache: dict[str, tuple[int, int]] = {}
        #: IMSI → (the DeviceContext object last seen, its effective policy, its allowing
        #: decision); a hit needs the very same (frozen) context object.
        self._by_device: dict[str, tuple[DeviceContext, CompiledPolicy, Decision]] = {}
        for p in policies:
            self.put(p)

    def put(self, policy: Policy) -> None:
        """Install (or, when inactive, remove) a policy; effective caches are dropped."""
        key = (policy.tenant_id, policy.scope.kind, policy.scope.value)
        if policy.active:
            self._by_scope[key] = policy
        else:
            self._by_scope.pop(key, None)
        self.generation += 1
        self._effective.clear()
        self._by_layers.clear()
        self._by_device.clear()

    def policies(self) -> list[Policy]:
        return list(self._by_scope.values())

    def effective(self, device: DeviceContext) -> CompiledPolicy:
        if self.names.version != self._names_version:
            self._effective.clear()
            self._by_layers.clear()
            self._by_device.clear()
            self._names_version = self.names.version
        key = (device.tenant_id, device.apn, device.group, device.imsi)
        hit = self._effective.get(key)
        if hit is None:
            hit = self._effective[key] = self._build(device)
        return hit

    def _build(self, device: DeviceContext) -> CompiledPolicy:
        layers = [
            self._by_scope.get((device.tenant_id, ScopeKind.TENANT, "")),
            self._by_scope.get((device.tenant_id, ScopeKind.APN, device.apn)) if device.apn
            else None,
            self._by_scope.get((device.tenant_id, ScopeKind.GROUP, device.group))
            if device.group else None,
            self._by_scope.get((device.tenant_id, ScopeKind.DEVICE, device.imsi)),
        ]
        present = sorted((p for p in layers if p), key=lambda p: SCOPE_RANK[p.scope.kind])
        layer_key = tuple((p.key, p.version) for p in present)
        shared = self._by_layers.get(layer_key)
        if shared is None:
            shared = self._by_layers[layer_key] = self._combine(present)
        return shared

    def _combine(self, present: list[Policy]) -> CompiledPolicy:
        chosen: dict[str, tuple[Policy, tuple[Rule, ...]]] = {}
        for policy in present:
            for kind in policy.kinds():
                chosen[kind] = (policy, policy.rules_of(kind))
        dest = time_ = roaming = None
        if "destination" in chosen:
            p, rules = chosen["destination"]
            rule = rules[0]
            assert isinstance(rule, DestinationRule)
            dest = (rule, p, _compile_dest(rule, self.names))
        if "time" in chosen:
            p, rules = chosen["time"]
            assert isinstance(rules[0], TimeWindowRule)
            time_ = (_CompiledTime(rules[0]), p)
        if "roaming" in chosen:
            p, rules = chosen["roaming"]
            assert isinstance(rules[0], RoamingRule)
            roaming = (rules[0], p, frozenset(rules[0].allowed_mcc))
        volume = tuple((r, chosen["volume"][0]) for r in chosen.get("volume", (None, ()))[1]
                       if isinstance(r, VolumeCapRule))
        rate = tuple((r, chosen["rate"][0]) for r in chosen.get("rate", (None, ()))[1]
                     if isinstance(r, RateCapRule))
        return CompiledPolicy(dest, time_, roaming, volume, rate)

    def _addr(self, text: str) -> tuple[int, int]:
        hit = self._addr_cache.get(text)
        if hit is None:
            if len(self._addr_cache) > 65536:
                self._addr_cache.clear()
            hit = self._addr_cache[text] = address_int(text)
        return hit

    def compiled(self, device: DeviceContext) -> tuple[CompiledPolicy, Decision]:
        """``device``'s effective policy and its allowing decision (the cache evaluate uses)."""
        ent = self._by_device.get(device.imsi)
        if ent is not None and ent[0] is device and self.names.version == self._names_version:
            return ent[1], ent[2]
        cp = self.effective(device)
        fine = Decision(True, (), device.imsi)
        if len(self._by_device) > 1_000_000:
            self._by_device.clear()
        self._by_device[device.imsi] = (device, cp, fine)
        return cp, fine

    def evaluate(self, flow: FlowRecord, device: DeviceContext, *, at: float | None = None,
                 count_start: bool = True, count_bytes: bool = False) -> Decision:
        """Decide one flow of ``device``.

        ``at`` is the decision time (defaults to ``flow.start``). ``count_start``
        counts the flow against rate caps; ``count_bytes`` adds its octets to the
        volume counters (ingestion of finished flows) — the inline gateway only
        counts starts and checks the volume already used.
        """
        ent = self._by_device.get(device.imsi)
        if ent is not None and ent[0] is device and self.names.version == self._names_version:
            cp, fine = ent[1], ent[2]
        else:
            cp = self.effective(device)
            fine = Decision(True, (), device.imsi)
            if len(self._by_device) > 1_000_000:
                self._by_device.clear()
            self._by_device[device.imsi] = (device, cp, fine)
        if cp.empty:
            return fine
        now = flow.start if at is None else at
        violations: list[Violation] = []
        if cp.dest is not None:
            rule, pol, dests = cp.dest
            port, proto = flow.dst_port, flow.protocol
            memo = cp.dest_memo
            mkey = (flow.dst_addr, port, proto)
            ok = memo.get(mkey)
            if ok is None:
                family, addr = self._addr(flow.dst_addr)
                ok = any(d.match(family, addr, port, proto) for d in dests)
                if len(memo) >= 65536:
                    memo.clear()
                memo[mkey] = ok
            if not ok:
                violations.append(Violation(
                    "destination", rule.id, pol.key, pol.version,
                    f"{flow.dst_addr} port {port} proto {proto} is not an allowed destination",
                    rule.actions, f"{rule.id}:{flow.dst_addr}:{port}:{proto}"))
        tz = device.tz
        local: float | None = None
        if cp.time is not None and not cp.time[0].always:
            ct, pol = cp.time
            local = self.clock.local(ct.tz or tz, now)
            weekday, minute = _weekday_minute(local)
            if not ct.allows(weekday, minute):
                violations.append(Violation(
                    "time", ct.rule.id, pol.key, pol.version,
                    f"local time {minute // 60:02d}:{minute % 60:02d} on day {weekday} "
                    f"({ct.tz or tz}) is outside the allowed windows",
                    ct.rule.actions, f"{ct.rule.id}:{int(local) // 3600}"))
        if cp.roaming is not None:
            rrule, pol, allowed = cp.roaming
            if device.serving_mcc is not None and device.serving_mcc not in allowed:
                violations.append(Violation(
                    "roaming", rrule.id, pol.key, pol.version,
                    f"attached in MCC {device.serving_mcc}, allowed {sorted(allowed)}",
                    rrule.actions, f"{rrule.id}:{device.serving_mcc}"))
        if cp.volume:
            own_tz = cp.time is not None and cp.time[0].tz is not None
            if local is not None and not own_tz:
                lt = local
            else:
                # LocalClock.local's cache hit, inlined: same slot, same offset.
                hit = self.clock._cache.get(tz)
                if hit is not None and hit[0] == int(now // 900):
                    lt = now + hit[1]
                else:
                    lt = self.clock.local(tz, now)
            volume = self.usage._volume
            imsi = device.imsi
            for vrule, pol in cp.volume:
                period = vrule.period
                if period == "hour":
                    bucket = int(lt) // 3600
                elif period == "day":
                    bucket = int(lt) // 86400
                else:
                    bucket = self.clock.month(lt)
                vkey = (imsi, period)
                cur = volume.get(vkey)
                used = cur[1] if cur is not None and cur[0] == bucket else 0
                if count_bytes:
                    used += flow.octets
                    volume[vkey] = (bucket, used)
                    over = used > vrule.max_bytes
                else:
                    over = used >= vrule.max_bytes
                if over:
                    violations.append(Violation(
                        "volume", vrule.id, pol.key, pol.version,
                        f"{used} bytes this {period}, cap {vrule.max_bytes}",
                        vrule.actions, f"{vrule.id}:{bucket}"))
        if cp.rate and count_start:
            flows = self.usage._flows
            for rrule2, pol in cp.rate:
                window = int(now // rrule2.per_seconds)
                rkey = (device.imsi, rrule2.per_seconds)
                rcur = flows.get(rkey)
                n = 1 if rcur is None or rcur[0] != window else rcur[1] + 1
                flows[rkey] = (window, n)
                if n > rrule2.max_flows:
                    violations.append(Violation(
                        "rate", rrule2.id, pol.key, pol.version,
                        f"{n} flows in {rrule2.per_seconds}s, cap {rrule2.max_flows}",
                        rrule2.actions, f"{rrule2.id}:{window}"))
        if not violations:
            return fine
        blocked = any(a in _BLOCKING for v in violations for a in v.actions)
        reason = ",".join(v.kind for v in violations)
        return Decision(not blocked, tuple(violations), device.imsi, reason)

    def meter(self, flow: FlowRecord, device: DeviceContext, *, at: float) -> Decision:
        """Add ``flow.octets`` to ``device``'s volume counters and check its volume caps
        only (byte counts a gateway reported in RADIUS accounting, RFC 2866 §5.3/§5.4)."""
        cp = self.effective(device)
        if not cp.volume:
            return Decision(True, (), device.imsi)
        local = self.clock.local(device.tz, at)
        violations: list[Violation] = []
        for vrule, pol in cp.volume:
            if vrule.period == "hour":
                bucket = int(local) // 3600
            elif vrule.period == "day":
                bucket = int(local) // 86400
            else:
                bucket = self.clock.month(local)
            used = self.usage.add_bytes(device.imsi, vrule.period, bucket, flow.octets)
            if used > vrule.max_bytes:
                violations.append(Violation(
                    "volume", vrule.id, pol.key, pol.version,
                    f"{used} bytes this {vrule.period}, cap {vrule.max_bytes}",
                    vrule.actions, f"{vrule.id}:{bucket}"))
        if not violations:
            return Decision(True, (), device.imsi)
        blocked = any(a in _BLOCKING for v in violations for a in v.actions)
        return Decision(not blocked, tuple(violations), device.imsi, "volume")
