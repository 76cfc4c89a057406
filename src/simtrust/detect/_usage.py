"""Usage fraud by volume: a SIM's data volume of a day against its own past days.

RADIUS accounting (RFC 2866 §5.3/§5.4, Acct-Input/Output-Octets with their
Gigawords, RFC 2869 §5.1) gives each session's cumulative octets; the
increase since the session's last record is the SIM's use. Per SIM the
detector keeps the current UTC day's total and an exponentially weighted
baseline of its past days (days without traffic count as zero, so a dormant
IoT SIM that suddenly moves data stands out); a day over ``factor`` times
the baseline and over ``floor_octets`` is anomalous once the SIM has
``min_days`` days of history. Pure logic, the events' own time. State is
kept only for SIMs whose accounting carries octets, apart from the fraud
detector's per-SIM state, so SIMs without sessions cost nothing here.
"""

from __future__ import annotations

__all__ = ["VolumeBaseline"]

_DAY = 86_400.0
_MAX_SESSIONS = 4


class _Usage:
    __slots__ = ("base", "day", "days", "sessions", "today")

    def __init__(self, day: int) -> None:
        self.day = day
        self.today = 0
        self.base = 0.0
        self.days = 0
        self.sessions: dict[str, int] = {}


class VolumeBaseline:
    """Daily volume per SIM against an EWMA of its own past days."""

    __slots__ = ("_sims", "alpha", "factor", "floor_octets", "min_days")

    def __init__(self, factor: float = 10.0, floor_octets: int = 50_000_000,
                 min_days: int = 3, alpha: float = 0.3) -> None:
        self.factor = factor
        self.floor_octets = floor_octets
        self.min_days = min_days
        self.alpha = alpha
        self._sims: dict[str, _Usage] = {}

    def __len__(self) -> int:
        return len(self._sims)

    def add(self, imsi: str, session: str, total: int, at: float
            ) -> tuple[int, int, float, int] | None:
        """Account a session's cumulative octets at ``at``.

        Returns (UTC day, today's octets, baseline octets per day, days of history)
        when today's volume is anomalous, else None.
        """
        day = int(at // _DAY)
        u = self._sims.get(imsi)
        if u is None:
            u = self._sims[imsi] = _Usage(day)
        if day > u.day:
            # fold the finished day, then any days without traffic (at most 30)
            for n in range(min(day - u.day, 30)):
                volume = u.today if n == 0 else 0
                u.base = float(volume) if u.days == 0 else (
                    self.alpha * volume + (1 - self.alpha) * u.base)
                u.days += 1
            u.day, u.today = day, 0
        elif day < u.day:
            return None  # a late record of an earlier day: its volume was counted then
        last = u.sessions.get(session, 0)
        if total > last:
            u.today += total - last
        if session not in u.sessions and len(u.sessions) >= _MAX_SESSIONS:
            del u.sessions[next(iter(u.sessions))]
        u.sessions[session] = max(total, last)
        if u.days >= self.min_days and u.today > max(self.factor * u.base, self.floor_octets):
            return day, u.today, u.base, u.days
        return None
