"""Seeded generator of labelled roaming and cloning scenarios for the fraud detectors.

Every SIM is simulated for ``days`` days from its home country and yields
:class:`~simtrust.detect.SimEvent` values in time order; a :class:`Scenario`
carries its label (``benign``, ``clone`` or ``travel``), its sub-type and the
time the fraud starts (``onset``).

Positions are true points: the country centroid of the shipped MCC table
(:func:`simtrust.detect.country_places`) plus a uniform random point of the
disc of the country's area, so real distances — not the detector's lower
bounds — decide what a journey takes.

Behaviour of every SIM (rates per SIM):

* authentication every 2 h on average (exponential gaps, i.e. a Poisson
  process), a location update on every change of serving network, one data
  session a day with hourly interim updates; 2 % of session stops are lost
  (RFC 2866 accounting over UDP), a new session then starts without a stop;
* 3 % of SIMs see one benign AUTS resynchronisation during the run, 2 % move
  once to a new device (same model, new IMEI).

Benign mix (``benign_share`` of the SIMs): 60 % stay home, 40 % roam. A
roaming SIM makes 1–3 trips, each either a flight (50 %: the device is off
from the last event at home until ``distance / 850 km/h + 0.75–3 h`` later,
then attaches at the destination; destinations anywhere in the table) or a
land border crossing (50 %: 10–40 minutes of ping-pong between the two
countries' networks near the border, then the neighbour's network); trips
last 1–4 days and end the same way home.

Fraud mix (the rest, half ``clone`` and half ``travel``):

* ``clone`` — from ``onset`` for 6–24 h a second device uses the SIM too,
  authenticating every 1 h on average: ``device`` (40 %, in the same country
  on the same or another domestic network, its own IMEI, a data session),
  ``remote`` (30 %, in a country at least 1,500 km away, own IMEI), ``twin``
  (20 %, copied IMEI, another domestic network, a data session), ``resync``
  (10 %, copied IMEI, same network; its SQN has diverged, so 3–8 AUTS
  synchronisation failures follow).
* ``travel`` — at ``onset`` the SIM is used 1–3 times in a country at least
  1,500 km away, sooner after its last event at home than 1,500 km/h would
  allow (5 minutes to the limit), then is heard at home again an ordinary
  interval later.

With ``usage_share`` > 0 every SIM also gets a cohort, accounting volumes and
flow summaries with destinations, and that share of the SIMs (taken from the
benign ones) carries a ``usage`` or ``equipment`` fraud instead
(:mod:`simtrust.testing.fraud.usage`, rates and mixes there); this detail is
drawn from a generator of its own, so the other events of a seed do not change.
With ``phone_share`` > 0 some SIMs of low-volume cohorts become benign alarm
panels that send SMS and call, and that share of the SIMs (from the benign
ones) is used like a phone (``phone``; :mod:`simtrust.testing.fraud.phone`),
again from a generator of its own.

The seed fixes everything: the same seed, counts and days give the same
events. Evaluation runs on seeds the thresholds were not chosen on.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from simtrust.detect import SimEvent, country_places, great_circle_km
from simtrust.domain import Imei, imsi_digits
from simtrust.testing.fraud.phone import add_phone
from simtrust.testing.fraud.usage import add_usage

__all__ = ["NEIGHBOURS", "Scenario", "generate", "merged"]

H = 3600.0
DAY = 86_400.0
T0 = 1_790_000_000.0  # 2026-09-21

#: Land (or bridge/tunnel) borders between countries of the table.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "AT": ("CH", "CZ", "DE", "HU", "IT"),
    "BE": ("DE", "FR", "LU", "NL"),
    "CA": ("US",),
    "CH": ("AT", "DE", "FR", "IT"),
    "CZ": ("AT", "DE", "PL"),
    "DE": ("AT", "BE", "CH", "CZ", "DK", "FR", "LU", "NL", "PL"),
    "DK": ("DE", "SE"),
    "ES": ("FR", "PT"),
    "FI": ("NO", "SE"),
    "FR": ("BE", "CH", "DE", "ES", "GB", "IT", "LU"),
    "GB": ("FR", "IE"),
    "GR": ("TR",),
    "HU": ("AT", "RO", "UA"),
    "IE": ("GB",),
    "IT": ("AT", "CH", "FR"),
    "LU": ("BE", "DE", "FR"),
    "MX": ("US",),
    "NL": ("BE", "DE"),
    "NO": ("FI", "SE"),
    "PL": ("CZ", "DE", "UA"),
    "PT": ("ES",),
    "RO": ("HU", "UA"),
    "SE": ("DK", "FI", "NO"),
    "TR": ("GR",),
    "UA": ("HU", "PL", "RO"),
    "US": ("CA", "MX"),
}
HOMES = ("DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "AT", "US")
_TACS = ("35328611", "86123404", "35921108", "01326300")


@dataclass(slots=True)
class Scenario:
    """One SIM's labelled run: ``label`` benign/clone/travel, ``onset`` of the fraud."""

    imsi: str
    label: str
    kind: str
    days: float
    onset: float = math.inf
    events: list[SimEvent] = field(default_factory=list)
    model_tac: str = ""  # the TAC of the device model registered for the SIM
    blocked: str = ""  # an IMEI the operator's blocklist holds (``blocklisted`` scenarios)


class _Geo:
    def __init__(self) -> None:
        places = country_places(1.0)
        self.by_iso: dict[str, tuple[float, float, float, str]] = {}
        self.mccs: dict[str, list[str]] = {}
        for mcc, place in sorted(places.items()):
            self.by_iso.setdefault(place[3], place)
            self.mccs.setdefault(place[3], []).append(mcc)
        self.isos = sorted(self.by_iso)

    def point(self, rng: random.Random, iso: str) -> tuple[float, float]:
        lat, lon, radius, _ = self.by_iso[iso]
        r = radius * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        dlat = r * math.cos(a) / 111.2
        dlon = r * math.sin(a) / (111.2 * max(0.2, math.cos(math.radians(lat))))
        return max(-89.0, min(89.0, lat + dlat)), (lon + dlon + 180.0) % 360.0 - 180.0

    def plmn(self, rng: random.Random, iso: str, net: int) -> str:
        mcc = self.mccs[iso][0]
        return mcc + (f"{net:03d}" if mcc in {"310", "311", "312", "302", "334", "722", "405"}
                      else f"{net:02d}")


class _Sim:
    """Builds one SIM's event list (home device)."""

    def __init__(self, rng: random.Random, geo: _Geo, imsi: str, home: str, days: float) -> None:
        self.rng, self.geo, self.imsi, self.days = rng, geo, imsi, days
        self.home = home
        self.end = T0 + days * DAY
        tac = rng.choice(_TACS)
        self.tac = tac
        self.imei = str(Imei.from_tac_snr(tac, f"{rng.randrange(10**6):06d}"))
        self.net = rng.randint(1, 3)
        self.events: list[SimEvent] = []

    def emit(self, at: float, kind: str, plmn: str, imei: str | None = None,
             session: str = "") -> None:
        """One event; ``imei`` None means the home device's, ``""`` none (interim records)."""
        if at < self.end:
            self.events.append(SimEvent(at, imsi_digits(self.imsi), kind, plmn=plmn,
                                        imei=self.imei if imei is None else imei,
                                        session=session))

    def itinerary(self, roams: bool) -> list[tuple[float, str, str]]:
        """(from time, country, how) stays: ``how`` is home/flight/border."""
        rng = self.rng
        stays: list[tuple[float, str, str]] = [(T0, self.home, "home")]
        if not roams:
            return stays
        t = T0 + rng.uniform(0.2, 1.5) * DAY
        for _ in range(rng.randint(1, 3)):
            if t > self.end:
                break
            here = stays[-1][1]
            if rng.random() < 0.5:
                dest = rng.choice([c for c in self.geo.isos if c != here])
                how = "flight"
            else:
                dest = rng.choice(NEIGHBOURS.get(here, (here,)))
                how = "border" if dest != here else "home"
            stays.append((t, dest, how))
            t += rng.uniform(1, 4) * DAY
            back = "flight" if how == "flight" else ("border" if how == "border" else "home")
            stays.append((t, self.home, back))
            t += rng.uniform(0.5, 2) * DAY
        return stays

    def run(self, roams: bool) -> None:
        rng, geo = self.rng, self.geo
        stays = self.itinerary(roams)
        resync_at = T0 + rng.uniform(0, self.days) * DAY if rng.random() < 0.03 else math.inf
        swap_at = T0 + rng.uniform(0, self.days) * DAY if rng.random() < 0.02 else math.inf
        pos = geo.point(rng, self.home)
        plmn = geo.plmn(rng, self.home, self.net)
        t = T0 + rng.uniform(0, 2 * H)
        session_n = 0
        next_session = T0 + rng.uniform(0, DAY)
        session_end = -1.0
        sid = ""
        self.emit(t, "location", plmn)
        for i, (start, iso, how) in enumerate(stays):
            stop = stays[i + 1][0] if i + 1 < len(stays) else self.end
            if i:
                # travel from pos to the new country
                new_pos = geo.point(rng, iso)
                new_plmn = geo.plmn(rng, iso, rng.randint(1, 3))
                if how == "flight":
                    km = great_circle_km(pos[0], pos[1], new_pos[0], new_pos[1])
                    t = max(t, start) + km / 850.0 * H + rng.uniform(0.75, 3.0) * H
                else:
                    t = max(t, start)
                    # border ping-pong: both networks within minutes
                    until = t + rng.uniform(10, 40) * 60
                    while t < until:
                        t += rng.uniform(1, 6) * 60
                        self.emit(t, "location", plmn if rng.random() < 0.5 else new_plmn)
                pos, plmn = new_pos, new_plmn
                session_end = min(session_end, t)
                self.emit(t, "location", plmn)
                self.emit(t + 1, "auth", plmn)
            while True:
                step = t + rng.expovariate(1 / (2 * H))
                if step >= stop:
                    # leave when the stay ends, or on arrival when the journey took longer
                    t = max(t, stop)
                    break
                t = step
                if t > swap_at:
                    self.imei = str(Imei.from_tac_snr(self.tac, f"{rng.randrange(10**6):06d}"))
                    swap_at = math.inf
                if t > resync_at:
                    self.emit(t, "auth-sync-failure", plmn)
                    resync_at = math.inf
                self.emit(t, "auth", plmn)
                if t > next_session and session_end < t:
                    session_n += 1
                    sid = f"{self.imsi}-{session_n}"
                    self.emit(t + 0.5, "session-start", plmn, session=sid)
                    length = rng.uniform(1, 6) * H
                    for k in range(1, int(length // H) + 1):
                        self.emit(t + k * H, "session-update", "", "", session=sid)
                    session_end = t + length
                    if rng.random() >= 0.02:
                        self.emit(session_end, "session-stop", "", "", session=sid)
                    next_session = t + rng.uniform(0.5, 1.5) * DAY
        self.pos, self.plmn = pos, plmn


def _far(geo: _Geo, rng: random.Random, iso: str) -> str:
    here = geo.by_iso[iso]
    far = [c for c in geo.isos
           if great_circle_km(here[0], here[1], geo.by_iso[c][0], geo.by_iso[c][1]) >= 1500]
    return rng.choice(far)


def _clone(sim: _Sim, rng: random.Random, geo: _Geo) -> tuple[str, float]:
    kind = rng.choices(("device", "remote", "twin", "resync"), (40, 30, 20, 10))[0]
    onset = T0 + rng.uniform(0.5, sim.days - 1.0) * DAY
    home_plmn = geo.plmn(rng, sim.home, sim.net)
    if kind == "device":
        plmn = geo.plmn(rng, sim.home, rng.randint(1, 3))
        imei = str(Imei.from_tac_snr(rng.choice(_TACS), f"{rng.randrange(10**6):06d}"))
    elif kind == "remote":
        plmn = geo.plmn(rng, _far(geo, rng, sim.home), rng.randint(1, 3))
        imei = str(Imei.from_tac_snr(rng.choice(_TACS), f"{rng.randrange(10**6):06d}"))
    elif kind == "twin":
        plmn = geo.plmn(rng, sim.home, sim.net % 3 + 1)
        imei = sim.imei
    else:
        plmn, imei = home_plmn, sim.imei
    t, end = onset, onset + rng.uniform(6, 24) * H
    first = True
    failures = rng.randint(3, 8) if kind == "resync" else 0
    while t < end:
        if kind == "resync" and failures:
            sim.emit(t, "auth-sync-failure", plmn, imei=imei)
            failures -= 1
        sim.emit(t, "auth", plmn, imei=imei)
        if first and kind in ("device", "twin"):
            sid = f"{sim.imsi}-clone"
            sim.emit(t + 1, "session-start", plmn, imei=imei, session=sid)
            sim.emit(end, "session-stop", "", "", session=sid)
        first = False
        t += rng.expovariate(1 / H)
    return kind, onset


def _travel(sim: _Sim, rng: random.Random, geo: _Geo) -> float:
    # the last home event before a random time, then the impossible use
    pivot = T0 + rng.uniform(0.5, sim.days - 0.5) * DAY
    before = [e for e in sim.events if e.at <= pivot and e.plmn]
    last = before[-1] if before else sim.events[0]
    here = geo.by_iso[sim.home]
    iso = _far(geo, rng, sim.home)
    pos = geo.point(rng, iso)
    km = great_circle_km(here[0], here[1], pos[0], pos[1])
    limit = max(300.0, km / 1500.0 * H)
    t = last.at + rng.uniform(300.0, limit)
    plmn = geo.plmn(rng, iso, rng.randint(1, 3))
    imei = str(Imei.from_tac_snr(rng.choice(_TACS), f"{rng.randrange(10**6):06d}"))
    for _ in range(rng.randint(1, 3)):
        sim.emit(t, "auth", plmn, imei=imei)
        t += rng.uniform(60, 600)
    return last.at


_USAGE_KINDS = (("volume", "cohort", "destinations", "sessions"), (30, 20, 25, 25))
_EQUIPMENT_KINDS = ("invalid", "tac", "blocklisted", "churn")


def generate(seed: int, sims: int, days: float = 7.0, benign_share: float = 0.8,
             prefix: str = "99999", usage_share: float = 0.0, phone_share: float = 0.0,
             ) -> Iterator[Scenario]:
    """``sims`` labelled scenarios of ``days`` days each, fixed by ``seed``."""
    rng = random.Random(seed)
    geo = _Geo()
    for n in range(sims):
        imsi = f"{prefix}{seed % 1000:03d}{n:07d}"[:15]
        home = rng.choice(HOMES)
        sim = _Sim(rng, geo, imsi, home, days)
        if rng.random() < benign_share:
            roams = rng.random() < 0.4
            sim.run(roams)
            scenario = Scenario(imsi, "benign", "roaming" if roams else "home", days)
        elif rng.random() < 0.5:
            sim.run(False)
            kind, onset = _clone(sim, rng, geo)
            scenario = Scenario(imsi, "clone", kind, days, onset)
        else:
            sim.run(False)
            onset = _travel(sim, rng, geo)
            scenario = Scenario(imsi, "travel", "impossible-travel", days, onset)
        sim.events.sort(key=lambda e: e.at)
        scenario.events = sim.events
        scenario.model_tac = sim.tac
        if usage_share > 0:
            _usage(scenario, sim, random.Random(f"usage-{seed}-{n}"),
                   usage_share / benign_share)
        if phone_share > 0 and usage_share > 0 and scenario.label == "benign":
            events, label, kind, onset = add_phone(
                scenario.events, random.Random(f"phone-{seed}-{n}"), imsi, T0, sim.end,
                phone_share / benign_share)
            scenario.events = events
            if label:
                scenario.label, scenario.kind, scenario.onset = label, kind, onset
        yield scenario


def _usage(scenario: Scenario, sim: _Sim, rng: random.Random, convert: float) -> None:
    fraud, kind, onset = "", "", math.inf
    if scenario.label == "benign" and rng.random() < convert:
        if rng.random() < 0.5:
            fraud, kind = "usage", rng.choices(*_USAGE_KINDS)[0]
            late = 3.5 if kind in ("volume", "sessions") else 3.0
            onset = T0 + rng.uniform(late, max(late, scenario.days - 1.0)) * DAY
        else:
            fraud, kind = "equipment", rng.choice(_EQUIPMENT_KINDS)
            onset = T0 + rng.uniform(0.5, scenario.days - 1.0) * DAY
    events, onset, blocked = add_usage(scenario.events, rng, scenario.imsi, sim.tac,
                                       sim.end, fraud, kind, onset)
    scenario.events, scenario.blocked = events, blocked
    if fraud:
        scenario.label, scenario.kind, scenario.onset = fraud, kind, onset


def merged(scenarios: list[Scenario]) -> list[SimEvent]:
    """All events of ``scenarios`` in one time-ordered stream (as a core network sees them)."""
    out = [e for s in scenarios for e in s.events]
    out.sort(key=lambda e: e.at)
    return out
