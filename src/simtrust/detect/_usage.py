"""Usage fraud: a SIM's volume, destinations and sessions against its own past and its cohort.

Inputs: RADIUS accounting (RFC 2866 §5.3/§5.4 Acct-Input/Output-Octets with
their Gigawords, RFC 2869 §5.1) gives each session's cumulative octets, the
increase since the session's last record is the SIM's use; a session start
is one ``session-start``; flow summaries carry the destination prefixes the
SIM reached (/24 or /48, :func:`simtrust.detect._baseline.prefix_of`).
Per SIM and UTC day the detector keeps:

* **volume** — today's octets against an exponentially weighted baseline of
  the SIM's past days with traffic (a SIM that is active every other day is
  judged by what its active days move; a dormant SIM has a baseline of zero,
  so one that suddenly moves data stands out): over ``volume_factor`` × the
  baseline and over ``volume_floor_octets``, once ``volume_min_days`` days
  are known;
* **cohort volume** — today's octets against the SIM's cohort (its tenant,
  and APN where the event names it): the cohort keeps an EWMA of the mean and
  variance of log-volume over its SIM-days with traffic; a day over
  ``cohort_factor`` × the cohort's geometric mean, ``cohort_z`` standard
  deviations above it and over the floor is anomalous from the SIM's first
  day (a new SIM put in a router is unlike its fleet before it has a past);
* **destinations** — the prefixes the SIM reached in its first
  ``dest_learn_s`` are its usual set; afterwards more than ``dest_new_per_day``
  prefixes outside it within a UTC day are anomalous (an IoT device talks to
  a handful of endpoints; a SIM in a phone or router reaches hundreds). New
  prefixes of a quiet day join the usual set; a SIM whose set grows past
  ``dest_max_usual`` is diverse by nature and is no longer judged;
* **session pattern** — session starts per UTC day against an EWMA of the
  SIM's past days: over ``session_factor`` × the baseline and over
  ``session_floor`` starts, once ``session_min_days`` days are known.

Pure logic on the events' own time. State is kept only for SIMs with
accounting or flow summaries (one object per SIM, the destination sets only
where flows name destinations); docs/decisions/fraud-usage-baselines.md says
why these baselines and thresholds.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["UsageBaselines", "UsageFinding", "sim_day"]

_DAY = 86_400.0
_MAX_SESSIONS = 4
_ALPHA = 0.3
_COHORT_ALPHA = 0.002

#: (cooldown key, summary, evidence) of an anomaly; the detector makes the alert.
UsageFinding = tuple[str, str, dict[str, Any]]


_S = TypeVar("_S", bound="_SimDay")


class _SimDay(Protocol):
    day: int
    cohort: str


def sim_day(sims: dict[str, _S], imsi: str, day: int, cohort: str,
            make: Callable[[int, str], _S], roll: Callable[[_S, int], None]) -> _S | None:
    """A SIM's state for ``day``: made on first sight, its cohort updated, rolled over
    to a later day; ``None`` for a late record of a day already judged."""
    s = sims.get(imsi)
    if s is None:
        s = sims[imsi] = make(day, sys.intern(cohort))
    elif cohort and cohort != s.cohort:
        s.cohort = sys.intern(cohort)
    if day > s.day:
        roll(s, day)
    elif day < s.day:
        return None
    return s


class _Usage:
    __slots__ = ("base", "cohort", "day", "days", "dest", "sbase", "sessions", "starts",
                 "today")

    def __init__(self, day: int, cohort: str) -> None:
        self.day = day
        self.cohort = cohort
        self.today = 0
        self.base = 0.0
        self.days = 0
        self.starts = 0
        self.sbase = 0.0
        self.sessions: dict[str, int] | None = None
        self.dest: _Destinations | None = None


class _Destinations:
    __slots__ = ("day", "learn_until", "new", "usual")

    def __init__(self, until: float, day: int) -> None:
        self.learn_until = until
        self.usual: set[str] | None = set()  # None: diverse, not judged
        self.new: set[str] = set()
        self.day = day


class _Cohort:
    __slots__ = ("mean", "n", "var")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def add(self, octets: int) -> None:
        x = math.log(octets)
        if self.n == 0:
            self.mean = x
        else:
            a = max(_COHORT_ALPHA, 1.0 / (self.n + 1))
            d = x - self.mean
            self.mean += a * d
            self.var = (1 - a) * (self.var + a * d * d)
        self.n += 1


class UsageBaselines:
    """Volume, cohort volume, destination and session-pattern baselines per SIM."""

    __slots__ = ("_cohorts", "_sims", "th")

    def __init__(self, thresholds: Any) -> None:
        #: a :class:`~simtrust.detect.FraudThresholds` (typed loosely: no import cycle)
        self.th = thresholds
        self._sims: dict[str, _Usage] = {}
        self._cohorts: dict[str, _Cohort] = {}

    def __len__(self) -> int:
        return len(self._sims)

    def cohort(self, name: str) -> tuple[int, float, float] | None:
        """(SIM-days, geometric mean octets, log standard deviation) of a cohort."""
        c = self._cohorts.get(name)
        return None if c is None else (c.n, math.exp(c.mean), math.sqrt(c.var))

    def history(self, imsi: str, at: float) -> tuple[int, str] | None:
        """(days of accounting history by ``at``, cohort) of a SIM, or None if it has none."""
        u = self._sims.get(imsi)
        if u is None:
            return None
        return u.days + min(max(0, int(at // _DAY) - u.day), 30), u.cohort

    def cohort_days(self, name: str) -> int:
        """The SIM-days with traffic a cohort has learnt from (0: unknown cohort)."""
        c = self._cohorts.get(name)
        return 0 if c is None else c.n

    def _get(self, imsi: str, at: float, cohort: str) -> _Usage | None:
        return sim_day(self._sims, imsi, int(at // _DAY), cohort, _Usage, self._roll)

    def _roll(self, u: _Usage, day: int) -> None:
        """Fold the finished day, then any days without traffic (at most 30)."""
        if u.today > 0 and u.cohort:
            c = self._cohorts.get(u.cohort)
            if c is None:
                c = self._cohorts[u.cohort] = _Cohort()
            c.add(u.today)
        if u.today > 0:
            # the first active day sets the baseline, later ones move it
            u.base = float(u.today) if u.base == 0.0 else (
                _ALPHA * u.today + (1 - _ALPHA) * u.base)
        for n in range(min(day - u.day, 30)):
            starts = u.starts if n == 0 else 0
            u.sbase = float(starts) if u.days == 0 else (
                _ALPHA * starts + (1 - _ALPHA) * u.sbase)
            u.days += 1
        u.day, u.today, u.starts = day, 0, 0

    # -- accounting --------------------------------------------------------------------

    def session(self, imsi: str, session: str, total: int, at: float, *, start: bool,
                cohort: str = "") -> list[UsageFinding]:
        """A session event: ``total`` its cumulative octets (0: not given)."""
        u = self._get(imsi, at, cohort)
        if u is None:
            return []
        th = self.th
        out: list[UsageFinding] = []
        if start:
            u.starts += 1
            floor = max(th.session_factor * u.sbase, th.session_floor)
            if u.days >= th.session_min_days and u.starts > floor:
                out.append((f"sessions:{u.day}",
                            f"SIM {imsi} started {u.starts} sessions today against a "
                            f"baseline of {u.sbase:.1f} a day",
                            {"feature": "session_starts_per_day", "observed": u.starts,
                             "baseline": round(u.sbase, 2), "days_of_history": u.days,
                             "factor": th.session_factor, "floor": th.session_floor,
                             "reason": "session-pattern"}))
        if total:
            out += self._octets(imsi, u, session, total)
        return out

    def _octets(self, imsi: str, u: _Usage, session: str, total: int) -> list[UsageFinding]:
        th = self.th
        sessions = u.sessions
        if sessions is None:
            sessions = u.sessions = {}
        last = sessions.get(session, 0)
        if total > last:
            u.today += total - last
        if session not in sessions and len(sessions) >= _MAX_SESSIONS:
            del sessions[next(iter(sessions))]
        sessions[session] = max(total, last)
        out: list[UsageFinding] = []
        floor = th.volume_floor_octets
        if u.days >= th.volume_min_days and u.today > max(th.volume_factor * u.base, floor):
            out.append((f"volume:{u.day}",
                        f"SIM {imsi} moved {u.today / 1e6:.1f} MB today against a baseline "
                        f"of {u.base / 1e6:.1f} MB a day",
                        {"feature": "daily_volume", "observed": u.today,
                         "baseline": round(u.base), "days_of_history": u.days,
                         "factor": th.volume_factor, "floor": floor,
                         "reason": "volume-anomaly"}))
        c = self._cohorts.get(u.cohort) if u.cohort and u.today > floor else None
        if c is not None and c.n >= th.cohort_min_days:
            typical = math.exp(c.mean)
            sigma = math.sqrt(c.var)
            z = (math.log(u.today) - c.mean) / sigma if sigma > 0 else math.inf
            if u.today > th.cohort_factor * typical and z > th.cohort_z:
                out.append((f"cohort:{u.day}",
                            f"SIM {imsi} moved {u.today / 1e6:.1f} MB today; its cohort "
                            f"{u.cohort} moves {typical / 1e6:.2f} MB per SIM-day",
                            {"feature": "cohort_daily_volume", "observed": u.today,
                             "cohort": u.cohort, "cohort_typical": round(typical),
                             "cohort_sim_days": c.n, "z": round(z, 2),
                             "factor": th.cohort_factor, "threshold_z": th.cohort_z,
                             "floor": floor, "reason": "cohort-volume-anomaly"}))
        return out

    # -- flows -------------------------------------------------------------------------

    def destinations(self, imsi: str, prefixes: tuple[str, ...], at: float,
                     cohort: str = "") -> list[UsageFinding]:
        """A flow summary naming the destination prefixes the SIM reached."""
        u = self._get(imsi, at, cohort)
        if u is None:
            return []
        th = self.th
        d = u.dest
        if d is None:
            d = u.dest = _Destinations(at + th.dest_learn_s, u.day)
        usual = d.usual
        if usual is None:
            return []
        if at < d.learn_until:
            usual.update(prefixes)
            if len(usual) > th.dest_max_usual:
                d.usual = None
            return []
        if u.day != d.day:
            # a quiet day's new destinations become usual
            if len(d.new) <= th.dest_new_per_day:
                usual |= d.new
                if len(usual) > th.dest_max_usual:
                    d.usual = None
                    return []
            d.new, d.day = set(), u.day
        limit = th.dest_new_per_day
        if len(d.new) > limit:
            return []  # judged today already
        for p in prefixes:
            if p not in usual:
                d.new.add(p)
        if len(d.new) <= limit:
            return []
        return [(f"destinations:{u.day}",
                 f"SIM {imsi} reached {len(d.new)} destinations outside its usual "
                 f"{len(usual)} today",
                 {"feature": "new_destinations_per_day", "observed": len(d.new),
                  "usual": len(usual), "examples": sorted(d.new)[:10],
                  "threshold": limit, "learnt_for_s": th.dest_learn_s,
                  "reason": "destination-anomaly"})]
