"""Baselines: what a device (or a cohort of devices of one type) normally does.

A baseline holds the maxima of the windowed flow features the detectors watch
(distinct destinations, unanswered connection attempts, packets/flows/bytes to
one destination, bytes per minute), the destinations it reached (addresses, /24
and /48 prefixes, DNS names and their registered suffixes), its ports, an
hour-of-day activity profile and the IMEIs its SIM attached from. It is learnt
by running the detector in learning mode over training windows, so learning and
detection compute every feature the same way, and it round-trips through JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simtrust.errors import InvalidInput

__all__ = ["FEATURES", "Baseline", "name_suffix", "prefix_of"]

BASELINE_VERSION = 1

FEATURES: dict[str, str] = {
    "scan_score_60s": "distinct unanswered TCP destinations per 60 s (telnet 23/2323 count twice)",
    "breadth_60s": "distinct unicast destinations reached with at most 2 packets per 60 s",
    "dst_packets_10s": "packets to one destination per 10 s",
    "dst_flows_10s": "flows (connections) to one destination per 10 s",
    "dst_bytes_10s": "bytes to one destination per 10 s",
    "bytes_60s": "bytes sent by the device per 60 s",
}


def prefix_of(addr: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) a destination lies in: cloud services rotate inside them."""
    if ":" in addr:
        parts = addr.split(":")
        return ":".join(parts[:3]) + "::/48"
    return addr.rsplit(".", 1)[0] + ".0/24"


def name_suffix(name: str) -> str:
    """The last two labels of a DNS name (``eu.api.example.com`` → ``example.com``)."""
    labels = name.rstrip(".").split(".")
    return ".".join(labels[-2:])


@dataclass(slots=True)
class Baseline:
    """Learnt behaviour of one device (``scope="device"``, key IMSI) or cohort (key group)."""

    scope: str
    key: str
    windows: int = 0
    observed_s: float = 0.0
    days: set[str] = field(default_factory=set)
    features: dict[str, float] = field(default_factory=dict)
    addresses: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    imeis: set[str] = field(default_factory=set)
    members: int = 1

    def feature(self, name: str) -> float:
        return self.features.get(name, 0.0)

    def raise_feature(self, name: str, value: float) -> None:
        if value > self.features.get(name, 0.0):
            self.features[name] = float(value)

    def knows(self, addr: str, names: Iterable[str] = ()) -> bool:
        """Whether a destination (and the names it was resolved from) is inside this baseline."""
        if addr in self.addresses or prefix_of(addr) in self.prefixes:
            return True
        return any(n in self.names or name_suffix(n) in self.names for n in names)

    def add_destination(self, addr: str, names: Iterable[str] = ()) -> None:
        self.addresses.add(addr)
        self.prefixes.add(prefix_of(addr))
        for n in names:
            self.names.add(n)
            self.names.add(name_suffix(n))

    @classmethod
    def merge(cls, scope: str, key: str, parts: Iterable[Baseline]) -> Baseline:
        """A cohort baseline: the union of its members' behaviour (maxima, sets, sums)."""
        out = cls(scope=scope, key=key, members=0)
        for b in parts:
            out.members += b.members
            out.windows += b.windows
            out.observed_s += b.observed_s
            out.days |= b.days
            for k, v in b.features.items():
                out.raise_feature(k, v)
            out.addresses |= b.addresses
            out.prefixes |= b.prefixes
            out.names |= b.names
            out.ports |= b.ports
            out.hours = [x + y for x, y in zip(out.hours, b.hours, strict=True)]
            out.imeis |= b.imeis
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "version": BASELINE_VERSION,
            "scope": self.scope,
            "key": self.key,
            "members": self.members,
            "windows": self.windows,
            "observed_s": round(self.observed_s, 3),
            "days": sorted(self.days),
            "features": {k: self.features[k] for k in sorted(self.features)},
            "addresses": sorted(self.addresses),
            "prefixes": sorted(self.prefixes),
            "names": sorted(self.names),
            "ports": sorted(self.ports),
            "hours": list(self.hours),
            "imeis": sorted(self.imeis),
        }

    @classmethod
    def from_json(cls, doc: Any) -> Baseline:
        """Parse a stored baseline; raises :class:`InvalidInput` on anything malformed."""
        try:
            if not isinstance(doc, dict) or doc.get("version") != BASELINE_VERSION:
                raise InvalidInput("baseline: unknown version or not an object")
            hours = [int(h) for h in doc["hours"]]
            if len(hours) != 24:
                raise InvalidInput("baseline: hours must have 24 entries")
            return cls(
                scope=str(doc["scope"]),
                key=str(doc["key"]),
                members=int(doc.get("members", 1)),
                windows=int(doc["windows"]),
                observed_s=float(doc["observed_s"]),
                days={str(d) for d in doc["days"]},
                features={str(k): float(v) for k, v in dict(doc["features"]).items()},
                addresses={str(a) for a in doc["addresses"]},
                prefixes={str(a) for a in doc["prefixes"]},
                names={str(a) for a in doc["names"]},
                ports={int(p) for p in doc["ports"]},
                hours=hours,
                imeis={str(i) for i in doc["imeis"]},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"baseline: malformed ({exc})") from exc
