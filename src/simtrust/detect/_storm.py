"""Signalling-storm protection: token buckets per tenant, per TAC and per cell.

A fleet that re-attaches all at once (a firmware push, a power cut, a network
outage ending) sends thousands of authentications in seconds; GSMA's IoT
Device Connection Efficiency guidelines (TS.34 §4 and §7: back-off, no
synchronised retries) and 3GPP extended access barring (TS 22.011 §4.3.4)
answer with admission limits and randomised back-off. :class:`StormGuard`
holds one token bucket per tenant, per TAC (the device model: a storm is
usually one model's firmware) and per cell or tracking area, and admits an
authentication or attach only when every bucket that applies has a token, so
a storm of one model or one cell is throttled while other traffic of the same
tenant keeps flowing.

Pure logic: the caller passes the time (``now``, seconds on any monotonic
scale). A refused request consumes nothing. The retry-after time is the wait
for a token plus a spread derived from the subject (CRC-32 of the IMSI), so
the devices told to back off do not all come back in the same second.

The answer in each protocol (:func:`backoff_answer`):

* Diameter (S6a/SWx): Result-Code 3004 ``DIAMETER_TOO_BUSY`` (RFC 6733
  §7.1.3), a protocol error the client retries at another peer or later;
* SBI (Nudm/Nausf): HTTP 503 with ``Retry-After`` in seconds (RFC 9110
  §10.2.3; the ``503`` response of TS29571_CommonData.yaml, which the
  TS29509_Nausf_UEAuthentication operations list);
* RADIUS: silent discard (RFC 2865 §2: an Access-Request the server will not
  answer is dropped; the NAS retransmits and backs off on its own).

Every admission and refusal is counted per scope.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from simtrust.errors import InvalidInput

__all__ = [
    "Admission", "BackOff", "BucketRate", "StormGuard", "StormLimits", "backoff_answer",
    "storm_guard_from",
]

SCOPES = ("tenant", "tac", "cell")


@dataclass(frozen=True, slots=True)
class BucketRate:
    """Sustained ``per_s`` admissions a second, bursts of up to ``burst``."""

    per_s: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.per_s > 0 and math.isfinite(self.per_s)):
            raise InvalidInput("bucket rate must be a positive number")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise InvalidInput("bucket burst must be at least 1")


@dataclass(frozen=True, slots=True)
class StormLimits:
    """Limits per scope (``None``: that scope is not limited) and the back-off spread."""

    tenant: BucketRate | None = BucketRate(500.0, 2000.0)
    tac: BucketRate | None = BucketRate(100.0, 500.0)
    cell: BucketRate | None = BucketRate(20.0, 100.0)
    spread_s: float = 30.0
    max_keys: int = 200_000


@dataclass(frozen=True, slots=True)
class Admission:
    """The decision: admitted, or refused by ``scope`` ``key`` with a retry-after."""

    admitted: bool
    scope: str = ""
    key: str = ""
    retry_after_s: int = 0


@dataclass(frozen=True, slots=True)
class BackOff:
    """How a refusal is answered in a protocol: a result code, headers, or silence."""

    protocol: str
    code: int
    headers: tuple[tuple[str, str], ...] = ()
    discard: bool = False


_ADMIT = Admission(True)


class StormGuard:
    """Token buckets per tenant, TAC and cell; ``admit`` is the per-request entry point."""

    def __init__(self, limits: StormLimits | None = None) -> None:
        self.limits = limits or StormLimits()
        self._buckets: dict[str, dict[str, list[float]]] = {s: {} for s in SCOPES}
        self.admitted = 0
        self.refused: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"StormGuard(admitted={self.admitted}, refused={sum(self.refused.values())})"

    def _rate(self, scope: str) -> BucketRate | None:
        rate: BucketRate | None = getattr(self.limits, scope)
        return rate

    def admit(self, now: float, *, tenant: str = "", tac: str = "", cell: str = "",
              subject: str = "") -> Admission:
        """Admit one authentication/attach, or say which bucket refused and for how long."""
        if not math.isfinite(now):
            raise InvalidInput("time must be finite")
        held: list[list[float]] = []
        worst: tuple[float, str, str] | None = None
        for scope, key in (("tenant", tenant), ("tac", tac), ("cell", cell)):
            rate = self._rate(scope)
            if rate is None or not key:
                continue
            buckets = self._buckets[scope]
            b = buckets.get(key)
            if b is None:
                if len(buckets) >= self.limits.max_keys:
                    self._prune(buckets, rate, now)
                b = buckets[key] = [rate.burst, now]
            elapsed = now - b[1]
            if elapsed > 0:
                b[0] = min(rate.burst, b[0] + elapsed * rate.per_s)
                b[1] = now
            if b[0] < 1.0:
                wait = (1.0 - b[0]) / rate.per_s
                if worst is None or wait > worst[0]:
                    worst = (wait, scope, key)
            else:
                held.append(b)
        if worst is not None:
            wait, scope, key = worst
            self.refused[scope] += 1
            jitter = (zlib.crc32(subject.encode()) / 0xFFFFFFFF) * self.limits.spread_s
            return Admission(False, scope, key, max(1, math.ceil(wait + jitter)))
        for b in held:
            b[0] -= 1.0
        self.admitted += 1
        return _ADMIT

    def _prune(self, buckets: dict[str, list[float]], rate: BucketRate, now: float) -> None:
        """Forget buckets that have refilled (a full bucket is the same as none)."""
        full = [k for k, b in buckets.items() if b[0] + (now - b[1]) * rate.per_s >= rate.burst]
        for k in full:
            del buckets[k]
        while len(buckets) >= self.limits.max_keys:
            # still at the bound: drop the oldest-created buckets (lenient, never unbounded)
            del buckets[next(iter(buckets))]

    def stats(self) -> dict[str, object]:
        """Counters for metrics: admitted, refused per scope, tracked buckets per scope."""
        return {
            "admitted": self.admitted,
            "refused": dict(self.refused),
            "buckets": {s: len(b) for s, b in self._buckets.items()},
        }


def backoff_answer(protocol: str, admission: Admission) -> BackOff:
    """The refusal in ``protocol`` (``diameter``, ``sbi`` or ``radius``)."""
    if admission.admitted:
        raise InvalidInput("an admitted request has no back-off answer")
    if protocol == "diameter":
        return BackOff("diameter", 3004)  # DIAMETER_TOO_BUSY, RFC 6733 §7.1.3
    if protocol == "sbi":
        return BackOff("sbi", 503, (("Retry-After", str(admission.retry_after_s)),))
    if protocol == "radius":
        return BackOff("radius", 0, discard=True)  # RFC 2865 §2: silently discarded
    raise InvalidInput(f"no back-off answer for protocol {protocol!r}")


def storm_guard_from(rates: Mapping[str, tuple[float, float]]) -> StormGuard | None:
    """A guard limiting the scopes named in ``rates`` (scope → per second, burst); None if empty."""
    if not rates:
        return None
    unknown = set(rates) - set(SCOPES)
    if unknown:
        raise InvalidInput(f"unknown storm scope(s): {', '.join(sorted(unknown))}")
    def rate(scope: str) -> BucketRate | None:
        return BucketRate(*rates[scope]) if scope in rates else None

    return StormGuard(StormLimits(tenant=rate("tenant"), tac=rate("tac"), cell=rate("cell")))
