"""Rendering a tenant's policies as an nftables ruleset for a Linux packet gateway.

One table per tenant (``inet simtrust_<tenant>``) holding: interval sets of
allowed destination addresses per device, a verdict map from each device's
address to its own chain, named counters on every drop rule, a ``removed``
set that cuts a SIM off in both directions, and flow-start rate caps as
``limit rate over``. Time windows become ``meta day`` / ``meta hour`` matches
in UTC, converted from the device's zone at render time (re-render after a
DST change; the ruleset is loaded with ``TZ=UTC`` so nft does not shift the
hours again). The file replaces the table atomically when applied with
``nft -f`` (nft(8), "RULESET"). Volume caps are enforced by the decision API
and flow ingestion, not in the kernel.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from simtrust.domain import DeviceContext
from simtrust.errors import InvalidInput, StoreError
from simtrust.policy._evaluate import PolicySet
from simtrust.policy._model import Destination, DestinationRule

__all__ = ["GatewayDevice", "NftError", "apply_ruleset", "read_counters", "render_ruleset",
           "table_name", "utc_segments"]


class NftError(StoreError):
    """``nft`` rejected a ruleset or is not installed."""

    code = "nft-failed"


@dataclass(frozen=True, slots=True)
class GatewayDevice:
    """A device as the gateway sees it: its context and its current PDN address."""

    context: DeviceContext
    address: str


def table_name(tenant_id: str) -> str:
    """``simtrust_<tenant>`` with characters nft identifiers cannot hold replaced."""
    return "simtrust_" + re.sub(r"[^A-Za-z0-9_]", "_", tenant_id)[:40]


def _port_expr(ports: tuple[tuple[int, int], ...]) -> str:
    items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEK = 7 * 1440


def utc_segments(by_day: Sequence[Sequence[tuple[int, int]]], tz: str,
                 at: float) -> list[tuple[int, int, int]]:
    """Local allowed minutes per weekday → (UTC weekday, start, end) minutes, at time ``at``."""
    offset = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(tz)).utcoffset()
    shift = int(offset.total_seconds()) // 60 if offset is not None else 0
    minutes: list[tuple[int, int]] = []
    for day, windows in enumerate(by_day):
        for s, e in windows:
            lo = (day * 1440 + s - shift) % _WEEK
            length = e - s
            if lo + length <= _WEEK:
                minutes.append((lo, lo + length))
            else:
                minutes.append((lo, _WEEK))
                minutes.append((0, lo + length - _WEEK))
    out: list[tuple[int, int, int]] = []
    for lo, hi in sorted(minutes):
        cur = lo
        while cur < hi:
            day, start = divmod(cur, 1440)
            end = min(hi - day * 1440, 1440)
            out.append((day, start, end))
            cur = day * 1440 + end
    return out


def _hhmm(minute: int, *, end: bool = False) -> str:
    if end:  # nft hour ranges are inclusive: stop one second before the end minute
        second = minute * 60 - 1
        return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _dest_rules(dev: str, index: int, dest: Destination, resolved: Sequence[str],
                sets: list[str]) -> list[str]:
    """Accept rules for one allowed destination (one per address family present)."""
    l4 = ""
    if dest.protocols:
        protos = [str(p) for p in dest.protocols]
        l4 = "meta l4proto " + (protos[0] if len(protos) == 1 else "{ " + ", ".join(protos) + " }")
    if dest.ports:
        if not l4:
            l4 = "meta l4proto { 6, 17 }"
        l4 += " th dport " + _port_expr(dest.ports)
    if not dest.cidrs and not dest.names:
        return [f"{l4} accept".strip()]
    rules = []
    nets = [ipaddress.ip_network(c, strict=False) for c in (*dest.cidrs, *resolved)]
    for family, kw, typ in ((4, "ip", "ipv4_addr"), (6, "ip6", "ipv6_addr")):
        members = sorted({str(n) for n in nets if n.version == family})
        if not members:
            continue
        name = f"{dev}_a{index}_{family}"
        sets.append(f"  set {name} {{\n    type {typ}; flags interval; auto-merge;\n"
                    f"    elements = {{ {', '.join(members)} }}\n  }}")
        rules.append(f"{kw} daddr @{name} {l4} accept".replace("  ", " "))
    return rules


def render_ruleset(tenant_id: str, policies: PolicySet, devices: Iterable[GatewayDevice],
                   removed: Iterable[str] = (), *, at: float | None = None) -> str:
    """The nft script that (re)creates the tenant's table; ``removed`` are IMSIs cut off.

    ``at`` (default now) fixes the zone offsets used for time windows.
    """
    when = time.time() if at is None else at
    table = table_name(tenant_id)
    removed_set = set(removed)
    sets: list[str] = []
    counters: list[str] = ["removed_drop"]
    chains: list[str] = []
    vmap4: list[str] = []
    vmap6: list[str] = []
    gone4: list[str] = []
    gone6: list[str] = []
    for n, gd in enumerate(sorted(devices, key=lambda d: d.context.imsi)):
        if gd.context.tenant_id != tenant_id:
            raise InvalidInput(f"device {gd.context.imsi} is not of tenant {tenant_id}")
        addr = ipaddress.ip_address(gd.address)
        if gd.context.imsi in removed_set or not gd.context.active:
            (gone4 if addr.version == 4 else gone6).append(str(addr))
            continue
        dev = f"dev_{n}"
        cp = policies.effective(gd.context)
        body = [f'    comment "imsi {gd.context.imsi}"']
        for rate_rule, _pol in cp.rate:
            counters.append(f"{dev}_rate_drop")
            per = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(
                rate_rule.per_seconds)
            if per is None:  # nft limits take a unit; scale to per-minute
                amount, per = max(1, rate_rule.max_flows * 60 // rate_rule.per_seconds), "minute"
            else:
                amount = rate_rule.max_flows
            body.append(f'    ct state new limit rate over {amount}/{per} burst {amount} packets'
                        f' counter name "{dev}_rate_drop" drop')
        dest_body: list[str] = []
        if cp.dest is None:
            dest_body.append("    accept")
        else:
            rule, _pol, _compiled = cp.dest
            assert isinstance(rule, DestinationRule)
            for i, dest in enumerate(rule.allow):
                resolved = sorted({a for name in dest.names for a in policies.names.resolve(name)})
                if dest.names and not dest.cidrs and not resolved:
                    continue  # a name nobody resolved yet allows nothing
                for r in _dest_rules(dev, i, dest, resolved, sets):
                    dest_body.append(f"    {r}")
            counters.append(f"{dev}_drop")
            dest_body.append(f'    counter name "{dev}_drop" drop')
        if cp.time is not None and not cp.time[0].always:
            ct = cp.time[0]
            for day, start, end in utc_segments(ct.by_day, ct.tz or gd.context.tz, when):
                body.append(f'    meta day "{_DAYS[day]}" meta hour "{_hhmm(start)}"-'
                            f'"{_hhmm(end, end=True)}" jump {dev}_dest')
            counters.append(f"{dev}_time_drop")
            body.append(f'    counter name "{dev}_time_drop" drop')
            chains.append(f"  chain {dev}_dest {{\n" + "\n".join(dest_body) + "\n  }")
        else:
            body.extend(dest_body)
        chains.append(f"  chain {dev} {{\n" + "\n".join(body) + "\n  }")
        (vmap4 if addr.version == 4 else vmap6).append(f"{addr} : jump {dev}")

    def elements(items: list[str]) -> str:
        return f"\n    elements = {{ {', '.join(items)} }}" if items else ""

    out = [
        f"table inet {table} {{}}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        *[f"  counter {c} {{}}" for c in counters],
        f"  set removed4 {{\n    type ipv4_addr;{elements(gone4)}\n  }}",
        f"  set removed6 {{\n    type ipv6_addr;{elements(gone6)}\n  }}",
        f"  map devices4 {{\n    type ipv4_addr : verdict;{elements(vmap4)}\n  }}",
        f"  map devices6 {{\n    type ipv6_addr : verdict;{elements(vmap6)}\n  }}",
        *sets,
        *chains,
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        '    ip saddr @removed4 counter name "removed_drop" drop',
        '    ip daddr @removed4 counter name "removed_drop" drop',
        '    ip6 saddr @removed6 counter name "removed_drop" drop',
        '    ip6 daddr @removed6 counter name "removed_drop" drop',
        "    ct state established,related accept",
        "    ip saddr vmap @devices4",
        "    ip6 saddr vmap @devices6",
        "  }",
        "}",
    ]
    return "\n".join(out) + "\n"


def _nft(args: list[str], script: str | None = None, netns: str | None = None) -> str:
    binary = shutil.which("nft")
    if binary is None:
        raise NftError("nft is not installed")
    cmd = [binary, *args]
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    # argv list from fixed words and a checked namespace name; no shell is involved
    # TZ=UTC: rendered hours are UTC already; nft must not shift them by the host's zone
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run(cmd, input=script, capture_output=True, text=True, check=False,  # noqa: S603
                          timeout=30, env=env)
    if done.returncode != 0:
        raise NftError(f"nft failed: {done.stderr.strip()[:500]}")
    return done.stdout


def apply_ruleset(script: str, *, netns: str | None = None) -> None:
    """Load the script with ``nft -f -`` (atomically), optionally inside a network namespace."""
    _nft(["-f", "-"], script, netns)


def read_counters(tenant_id: str, *, netns: str | None = None) -> dict[str, tuple[int, int]]:
    """Named counters of the tenant's table: name → (packets, bytes), from ``nft -j``."""
    raw = _nft(["-j", "list", "counters", "table", "inet", table_name(tenant_id)], None, netns)
    out: dict[str, tuple[int, int]] = {}
    for item in json.loads(raw).get("nftables", []):
        counter = item.get("counter")
        if counter:
            out[str(counter["name"])] = (int(counter["packets"]), int(counter["bytes"]))
    return out
