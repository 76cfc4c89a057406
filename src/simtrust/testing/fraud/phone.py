"""Voice and SMS for generated SIMs: benign alarm panels, and data-only SIMs used like phones.

:func:`simtrust.testing.fraud.scenarios.generate` with ``phone_share > 0``
calls :func:`add_phone` for every SIM with a random generator of its own
(seeded from the run's seed and the SIM's number), so the roaming, cloning,
usage and equipment events of a seed stay what they are without it.

Benign voice (rates per SIM): 15 % of the SIMs of the ``meters`` and
``trackers`` cohorts are **alarm panels** of their own tenant
(``tenant-alarms``, a cohort that uses voice): each day 0–3 SMS alarm
reports (mobile originated), a 1–4 minute call on 5 % of days, and an alarm
storm of 8–20 SMS within an hour on 3 % of days. The other cohorts are
data-only.

Fraud mix (``phone`` label, ``phone_share`` of all SIMs, taken from the
benign ones of data-only cohorts): from ``onset`` (day 2.5 to one day before
the end) the SIM is in a phone for 1–3 days:

* ``calls`` (50 %) — the mediation's usage records: each day 4–15 calls
  (70 % mobile originated, 30 s to 10 min) and 3–20 SMS, between 07:00 and
  23:00 UTC;
* ``voip`` (50 %) — no usage record (a VoIP client over the data session):
  each day 4–12 calls, each seen as one flow summary counting its SIP flow
  and one RTP pair per started minute (the meter's 60 s active timeout), at
  most 10 minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits

__all__ = ["PHONE_KINDS", "add_phone"]

H = 3600.0
DAY = 86_400.0
PHONE_KINDS = ("calls", "voip")
_VOICE_COHORTS = ("tenant-meters", "tenant-trackers")


def _day_times(rng: random.Random, day0: float, n: int, start: float) -> list[float]:
    times = [day0 + rng.uniform(7 * H, 23 * H) for _ in range(n)]
    return sorted(t for t in times if t >= start)


def add_phone(events: list[SimEvent], rng: random.Random, imsi: str, start: float, end: float,
              convert: float) -> tuple[list[SimEvent], str, str, float]:
    """``events`` with benign voice or a phone-like fraud added.

    Returns the events, the label (``""``: unchanged, ``phone``), its kind and onset.
    """
    tenant = events[0].tenant if events else ""
    digits = imsi_digits(imsi)
    days = math.ceil((end - start) / DAY)
    if tenant in _VOICE_COHORTS and rng.random() < 0.15:
        out = [replace(e, tenant="tenant-alarms") for e in events]
        for d in range(days):
            day0 = start + d * DAY
            extra: list[SimEvent] = [
                SimEvent(t, digits, "sms", tenant="tenant-alarms", direction="mo")
                     for t in _day_times(rng, day0, rng.randint(0, 3), start)]
            if rng.random() < 0.05:
                extra.append(SimEvent(day0 + rng.uniform(8 * H, 20 * H), digits, "voice",
                                      tenant="tenant-alarms", direction="mo",
                                      duration=rng.uniform(60, 240)))
            if rng.random() < 0.03:
                t0 = day0 + rng.uniform(0, 23 * H)
                extra += [SimEvent(t0 + rng.uniform(0, H), digits, "sms", tenant="tenant-alarms",
                                   direction="mo") for _ in range(rng.randint(8, 20))]
            out += [e for e in extra if e.at < end]
        out.sort(key=lambda e: e.at)
        return out, "", "", math.inf
    if rng.random() >= convert:
        return events, "", "", math.inf
    kind = rng.choice(PHONE_KINDS)
    onset = start + rng.uniform(2.5, max(2.5, (end - start) / DAY - 1.0)) * DAY
    stop = onset + rng.uniform(1, 3) * DAY
    extra = []
    day = math.floor(onset / DAY) * DAY
    while day < min(stop, end):
        if kind == "calls":
            for t in _day_times(rng, day, rng.randint(4, 15), onset):
                extra.append(SimEvent(t, digits, "voice", tenant=tenant,
                                      direction="mo" if rng.random() < 0.7 else "mt",
                                      duration=rng.uniform(30, 600)))
            for t in _day_times(rng, day, rng.randint(3, 20), onset):
                extra.append(SimEvent(t, digits, "sms", tenant=tenant,
                                      direction="mo" if rng.random() < 0.5 else "mt"))
        else:
            for t in _day_times(rng, day, rng.randint(4, 12), onset):
                minutes = math.ceil(rng.uniform(0.5, 10))
                extra.append(SimEvent(t + minutes * 60, digits, "flow", tenant=tenant,
                                      voice_flows=1 + minutes))
        day += DAY
    out = events + [e for e in extra if e.at < min(stop, end)]
    out.sort(key=lambda e: e.at)
    first = min((e.at for e in extra if e.at < end), default=math.inf)
    return out, "phone", kind, first
