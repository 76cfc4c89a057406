"""Policy model: scopes, rules and actions, validated once at the edge.

A :class:`Policy` belongs to a tenant and applies at one :class:`Scope`
(the whole tenant, an APN, a device group or one device). It holds rules of
five kinds — allowed destinations, time windows, volume caps, flow-rate caps
and roaming countries — each with the actions to take on a violation
(``log``, ``alert``, ``block``, ``remove``). Policies are plain data: they
round-trip through :meth:`Policy.to_dict` / :func:`policy_from_dict` (the
stored and HTTP form). How scopes combine is in ``docs/decisions/policy-scope-precedence.md``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simtrust.errors import InvalidInput

__all__ = [
    "Action",
    "Destination",
    "DestinationRule",
    "Policy",
    "RateCapRule",
    "RoamingRule",
    "Rule",
    "Scope",
    "ScopeKind",
    "TimeWindow",
    "TimeWindowRule",
    "VolumeCapRule",
    "policy_from_dict",
    "rule_from_dict",
]


class Action(StrEnum):
    """What to do when a rule is violated."""

    LOG = "log"
    ALERT = "alert"
    BLOCK = "block"
    REMOVE = "remove"


class ScopeKind(StrEnum):
    """Where a policy applies; later members are more specific."""

    TENANT = "tenant"
    APN = "apn"
    GROUP = "group"
    DEVICE = "device"


#: Precedence rank: a more specific scope overrides a less specific one.
SCOPE_RANK = {ScopeKind.TENANT: 0, ScopeKind.APN: 1, ScopeKind.GROUP: 2, ScopeKind.DEVICE: 3}

_NAME_RE = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}\.?$")
_MCC_RE = re.compile(r"^[0-9]{3}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PERIOD_SECONDS = {"hour": 3600, "day": 86400, "month": 31 * 86400}


@dataclass(frozen=True, slots=True)
class Scope:
    """``kind`` plus the selector: APN name, group name or IMSI; empty for tenant."""

    kind: ScopeKind
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind is ScopeKind.TENANT and self.value:
            raise InvalidInput("a tenant scope takes no value", field="scope")
        if self.kind is not ScopeKind.TENANT and not _ID_RE.match(self.value):
            raise InvalidInput(f"scope {self.kind.value} needs a value", field="scope")

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}" if self.value else self.kind.value

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``tenant``, ``apn:NAME``, ``group:NAME`` or ``device:IMSI``."""
        kind, _, value = text.partition(":")
        try:
            return cls(ScopeKind(kind), value)
        except ValueError:
            raise InvalidInput(f"unknown scope {text!r}", field="scope") from None


def _actions(raw: Any) -> tuple[Action, ...]:
    if raw is None:
        return (Action.LOG,)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise InvalidInput("actions must be a non-empty list", field="actions")
    try:
        out = tuple(dict.fromkeys(Action(str(a)) for a in raw))
    except ValueError:
        raise InvalidInput(f"unknown action in {raw!r}", field="actions") from None
    return out


def _port_ranges(raw: Any) -> tuple[tuple[int, int], ...]:
    """Ports as ints or ``"lo-hi"`` strings → sorted, merged closed ranges."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InvalidInput("ports must be a list", field="ports")
    ranges: list[tuple[int, int]] = []
    for item in raw:
        if isinstance(item, bool):
            raise InvalidInput("port must be a number", field="ports")
        if isinstance(item, int):
            lo = hi = item
        elif isinstance(item, str) and re.fullmatch(r"[0-9]{1,5}(-[0-9]{1,5})?", item):
            a, _, b = item.partition("-")
            lo, hi = int(a), int(b or a)
        else:
            raise InvalidInput(f"bad port {item!r}", field="ports")
        if not 0 <= lo <= hi <= 65535:
            raise InvalidInput(f"bad port range {item!r}", field="ports")
        ranges.append((lo, hi))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


_PROTO_NAMES = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}


def _protocols(raw: Any) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InvalidInput("protocols must be a list", field="protocols")
    out: set[int] = set()
    for item in raw:
        if isinstance(item, str) and item.lower() in _PROTO_NAMES:
            out.add(_PROTO_NAMES[item.lower()])
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255:
            out.add(item)
        else:
            raise InvalidInput(f"bad protocol {item!r}", field="protocols")
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Destination:
    """One allowed destination: addresses (CIDRs and/or DNS names), ports, protocols.

    An empty ``ports`` or ``protocols`` means any; empty ``cidrs`` and ``names``
    means any address (useful for "UDP/53 anywhere").
    """

    cidrs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()
    protocols: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Destination:
        cidrs = []
        for text in raw.get("cidrs", ()) or ():
            try:
                cidrs.append(str(ipaddress.ip_network(str(text), strict=False)))
            except ValueError:
                raise InvalidInput(f"bad CIDR {text!r}", field="cidrs") from None
        names = []
        for name in raw.get("names", ()) or ():
            norm = str(name).strip().lower().rstrip(".")
            if not _NAME_RE.match(norm):
                raise InvalidInput(f"bad DNS name {name!r}", field="names")
            names.append(norm)
        return cls(
            cidrs=tuple(cidrs),
            names=tuple(names),
            ports=_port_ranges(raw.get("ports")),
            protocols=_protocols(raw.get("protocols")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cidrs": list(self.cidrs),
            "names": list(self.names),
            "ports": [f"{lo}-{hi}" if lo != hi else lo for lo, hi in self.ports],
            "protocols": list(self.protocols),
        }


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Allowed local time: ``days`` (0 = Monday) and ``[start, end)``; end ≤ start wraps."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: time = time(0, 0)
    end: time = time(0, 0)

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        return self.end.hour * 60 + self.end.minute

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TimeWindow:
        days_raw = raw.get("days", [0, 1, 2, 3, 4, 5, 6])
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        days: set[int] = set()
        for d in days_raw:
            if isinstance(d, str) and d.lower()[:3] in names:
                days.add(names.index(d.lower()[:3]))
            elif isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6:
                days.add(d)
            else:
                raise InvalidInput(f"bad day {d!r}", field="days")
        try:
            start = time.fromisoformat(str(raw.get("start", "00:00")))
            end = time.fromisoformat(str(raw.get("end", "00:00")))
        except ValueError:
            raise InvalidInput("times are HH:MM", field="windows") from None
        return cls(tuple(sorted(days)), start.replace(second=0), end.replace(second=0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": list(self.days),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """Allow-list: a flow to anything not listed is a ``destination`` violation."""

    id: str
    allow: tuple[Destination, ...]
    actions: tuple[Action, ...] = (Action.BLOCK, Action.LOG)
    kind: str = field(default="destination", init=False)


@dataclass(frozen=True, slots=True)
class TimeWindowRule:
    """Traffic outside every window (in the device's time zone) is a ``time`` violation."""

    id: str
    windows: tuple[TimeWindow, ...]
    actions: tuple[Action, ...] = (Action.BLOCK, Action.LOG)
    tz: str | None = None
    kind: str = field(default="time", init=False)


@dataclass(frozen=True, slots=True)
class VolumeCapRule:
    """More than ``max_bytes`` in one local hour/day/month is a ``volume`` violation."""

    id: str
    period: str
    max_bytes: int
    actions: tuple[Action, ...] = (Action.ALERT, Action.LOG)
    kind: str = field(default="volume", init=False)


@dataclass(frozen=True, slots=True)
class RateCapRule:
    """More than ``max_flows`` flow starts in ``per_seconds`` is a ``rate`` violation."""

    id: str
    max_flows: int
    per_seconds: int = 60
    actions: tuple[Action, ...] = (Action.BLOCK, Action.LOG)
    kind: str = field(default="rate", init=False)


@dataclass(frozen=True, slots=True)
class RoamingRule:
    """Attached to a network whose MCC is not listed: a ``roaming`` violation."""

    id: str
    allowed_mcc: tuple[str, ...]
    actions: tuple[Action, ...] = (Action.BLOCK, Action.LOG)
    kind: str = field(default="roaming", init=False)


Rule = DestinationRule | TimeWindowRule | VolumeCapRule | RateCapRule | RoamingRule

#: Kinds of which a policy holds at most one rule (caps may repeat per period).
SINGLE_KINDS = frozenset({"destination", "time", "roaming"})


def _positive_int(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise InvalidInput(f"{name} must be a positive integer", field=name)
    return raw


def rule_from_dict(raw: Mapping[str, Any], index: int = 0) -> Rule:
    """Parse one rule (its ``kind`` selects the type); raises :class:`InvalidInput`."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a rule is an object", field="rules")
    kind = raw.get("kind")
    rule_id = str(raw.get("id") or f"{kind}-{index}")
    if not _ID_RE.match(rule_id):
        raise InvalidInput(f"bad rule id {rule_id!r}", field="id")
    actions = raw.get("actions")
    if kind == "destination":
        allow = raw.get("allow")
        if not isinstance(allow, list):
            raise InvalidInput("destination rule needs an 'allow' list", field="allow")
        dests = tuple(Destination.from_dict(d) for d in allow)
        return DestinationRule(rule_id, dests, _actions(actions or ["block", "log"]))
    if kind == "time":
        windows = raw.get("windows")
        if not isinstance(windows, list) or not windows:
            raise InvalidInput("time rule needs 'windows'", field="windows")
        tz = raw.get("tz")
        if tz is not None:
            _check_tz(str(tz))
        return TimeWindowRule(
            rule_id,
            tuple(TimeWindow.from_dict(w) for w in windows),
            _actions(actions or ["block", "log"]),
            None if tz is None else str(tz),
        )
    if kind == "volume":
        period = raw.get("period")
        if period not in PERIOD_SECONDS:
            raise InvalidInput("period is hour, day or month", field="period")
        return VolumeCapRule(
            rule_id,
            str(period),
            _positive_int(raw.get("max_bytes"), "max_bytes"),
            _actions(actions or ["alert", "log"]),
        )
    if kind == "rate":
        return RateCapRule(
            rule_id,
            _positive_int(raw.get("max_flows"), "max_flows"),
            _positive_int(raw.get("per_seconds", 60), "per_seconds"),
            _actions(actions or ["block", "log"]),
        )
    if kind == "roaming":
        mccs = raw.get("allowed_mcc")
        if not isinstance(mccs, list) or not all(_MCC_RE.match(str(m)) for m in mccs):
            raise InvalidInput("allowed_mcc is a list of 3-digit MCCs", field="allowed_mcc")
        return RoamingRule(
            rule_id, tuple(sorted({str(m) for m in mccs})), _actions(actions or ["block", "log"])
        )
    raise InvalidInput(f"unknown rule kind {kind!r}", field="kind")


def _check_tz(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="tz") from None


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "kind": rule.kind, "actions": list(rule.actions)}
    if isinstance(rule, DestinationRule):
        out["allow"] = [d.to_dict() for d in rule.allow]
    elif isinstance(rule, TimeWindowRule):
        out["windows"] = [w.to_dict() for w in rule.windows]
        if rule.tz:
            out["tz"] = rule.tz
    elif isinstance(rule, VolumeCapRule):
        out.update(period=rule.period, max_bytes=rule.max_bytes)
    elif isinstance(rule, RateCapRule):
        out.update(max_flows=rule.max_flows, per_seconds=rule.per_seconds)
    else:
        out["allowed_mcc"] = list(rule.allowed_mcc)
    return out


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of the policy of ``tenant_id`` at ``scope``."""

    tenant_id: str
    scope: Scope
    rules: tuple[Rule, ...]
    version: int = 0
    active: bool = True

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.tenant_id):
            raise InvalidInput("bad tenant id", field="tenant_id")
        seen: set[str] = set()
        ids: set[str] = set()
        for rule in self.rules:
            if rule.kind in SINGLE_KINDS:
                if rule.kind in seen:
                    raise InvalidInput(f"at most one {rule.kind} rule per policy", field="rules")
                seen.add(rule.kind)
            if rule.id in ids:
                raise InvalidInput(f"duplicate rule id {rule.id!r}", field="rules")
            ids.add(rule.id)

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.scope.key}"

    def rules_of(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "scope": self.scope.key,
            "version": self.version,
            "active": self.active,
            "rules": [rule_to_dict(r) for r in self.rules],
        }

    def kinds(self) -> Iterable[str]:
        return {r.kind for r in self.rules}


def policy_from_dict(raw: Mapping[str, Any]) -> Policy:
    """Parse the stored / HTTP form of a policy."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a policy is an object")
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise InvalidInput("rules must be a list", field="rules")
    return Policy(
        tenant_id=str(raw.get("tenant_id", "")),
        scope=Scope.parse(str(raw.get("scope", "tenant"))),
        rules=tuple(rule_from_dict(r, i) for i, r in enumerate(rules_raw)),
        version=int(raw.get("version", 0)),
        active=bool(raw.get("active", True)),
    )
