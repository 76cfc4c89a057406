"""Usage and equipment detail for generated SIMs, and the usage-fraud and equipment scenarios.

:func:`simtrust.testing.fraud.scenarios.generate` with ``usage_share > 0``
calls :func:`add_usage` for every SIM with a random generator of its own
(seeded from the run's seed and the SIM's number), so the roaming and
cloning events of a seed stay exactly what they are without it.

Benign behaviour (rates per SIM):

* a cohort (its tenant): meters 0.05 MB a day, trackers 2 MB, vending
  machines 15 MB, cameras 400 MB, gateways 1.5 GB (typical volume per SIM-day
  with traffic, uniform share); the SIM's own mean is the cohort's times a
  log-normal factor (σ 0.5), each session moves the SIM's mean times a
  log-normal factor (σ 0.6); 1 % of sessions carry a firmware download of
  5–30 MB on top; accounting records carry the session's cumulative octets;
* one flow summary per hourly interim record, reaching 1–4 of the SIM's
  usual destination prefixes (its cohort's six cloud prefixes and one of its
  own); 3 % of the summaries reach one never-seen prefix too (a CDN, an NTP
  pool).

Fraud mix (``usage`` and ``equipment`` labels, half each of the converted
SIMs), from ``onset`` on:

* ``usage`` — ``volume`` (30 %: sessions move 30–300 × the SIM's mean, at
  least 80–400 MB; onset after day 3.5), ``cohort`` (20 %: a new SIM that
  moves 50–500 × its cohort's typical volume, at least 80–400 MB, from its
  first session: it has no past of its own), ``destinations`` (25 %: 10–40
  never-seen prefixes per flow summary and a summary every 10–30 minutes for
  6–24 h: a phone or a router behind the SIM; onset after day 3),
  ``sessions`` (25 %: a new short session every 10–40 minutes for 12–36 h;
  onset after day 3.5);
* ``equipment`` — the SIM moves for good to a device with an IMEI failing its
  check digit (``invalid``, 25 %), with a TAC outside its registered model
  (``tac``, 25 %), on the operator's blocklist (``blocklisted``, 25 %), or
  to four devices of its model in turn, 4–12 h each (``churn``, 25 %).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from simtrust.detect import SimEvent
from simtrust.domain import Imei, imsi_digits

__all__ = ["COHORTS", "add_usage"]

H = 3600.0
DAY = 86_400.0

#: cohort → typical octets per SIM-day with traffic.
COHORTS: dict[str, float] = {
    "meters": 0.05e6, "trackers": 2e6, "vending": 15e6, "cameras": 400e6, "gateways": 1.5e9,
}
_OTHER_TAC = "35999902"  # a model no generated SIM is registered with


def _prefix(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24"


def _sessions(events: list[SimEvent]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        if e.session:
            out.setdefault(e.session, []).append(i)
    return out


def add_usage(events: list[SimEvent], rng: random.Random, imsi: str, tac: str, end: float,
              fraud: str, kind: str, onset: float) -> tuple[list[SimEvent], float, str]:
    """``events`` (time-ordered) with volume, destinations and cohort filled in.

    ``fraud`` is ``""`` (benign detail only), ``usage`` or ``equipment`` with its
    ``kind``; returns the events, the onset (may change: a new SIM's first
    session) and the blocklisted IMEI of a ``blocklisted`` scenario (else ``""``).
    """
    cohort = rng.choice(sorted(COHORTS))
    tenant = "tenant-" + cohort
    mean = COHORTS[cohort] * math.exp(rng.gauss(0.0, 0.5))
    crng = random.Random(cohort)
    usual_pool = [_prefix(crng) for _ in range(6)] + [_prefix(rng)]
    usual = rng.sample(usual_pool, rng.randint(1, 4))
    out = [replace(e, tenant=tenant) for e in events]
    if fraud == "usage" and kind == "cohort":
        first = next((e.at for e in out if e.kind == "session-start"), out[0].at)
        onset = first
    blocked = ""
    extra: list[SimEvent] = []
    for idx in _sessions(out).values():
        start_at = out[idx[0]].at
        volume = mean * math.exp(rng.gauss(0.0, 0.6))
        if rng.random() < 0.01:
            volume += rng.uniform(5e6, 30e6)
        if fraud == "usage" and start_at >= onset:
            if kind == "volume":
                volume = max(volume * rng.uniform(30, 300), rng.uniform(80e6, 400e6))
            elif kind == "cohort":
                volume = max(COHORTS[cohort] * rng.uniform(50, 500), rng.uniform(80e6, 400e6))
        n = len(idx) - 1
        for k, i in enumerate(idx):
            e = out[i]
            if e.kind == "session-start":
                continue
            out[i] = replace(e, octets=max(1, int(volume * k / max(n, 1))))
            if e.kind == "session-update":
                reached = rng.sample(usual, rng.randint(1, len(usual)))
                if rng.random() < 0.03:
                    reached.append(_prefix(rng))
                extra.append(SimEvent(e.at + 1, imsi_digits(imsi), "flow", tenant=tenant,
                                      destinations=tuple(sorted(set(reached)))))
    if fraud == "usage":
        extra += _usage_fraud(rng, imsi, tenant, kind, onset, end)
    elif fraud == "equipment":
        out, blocked = _equipment(out, rng, imsi, tac, kind, onset, end)
    out += [e for e in extra if e.at < end]
    out.sort(key=lambda e: e.at)
    return out, onset, blocked


def _usage_fraud(rng: random.Random, imsi: str, tenant: str, kind: str, onset: float,
                 end: float) -> list[SimEvent]:
    digits = imsi_digits(imsi)
    out: list[SimEvent] = []
    if kind == "destinations":
        t, stop = onset, onset + rng.uniform(6, 24) * H
        while t < stop:
            reached = tuple(sorted({_prefix(rng) for _ in range(rng.randint(10, 40))}))
            out.append(SimEvent(t, digits, "flow", tenant=tenant, destinations=reached))
            t += rng.uniform(10, 30) * 60
    elif kind == "sessions":
        t, stop, n = onset, onset + rng.uniform(12, 36) * H, 0
        while t < stop:
            n += 1
            sid = f"{imsi}-burst-{n}"
            octets = int(rng.uniform(0.2e6, 3e6))
            out.append(SimEvent(t, digits, "session-start", session=sid, tenant=tenant))
            out.append(SimEvent(t + rng.uniform(5, 15) * 60, digits, "session-stop",
                                session=sid, tenant=tenant, octets=octets))
            t += rng.uniform(10, 40) * 60
    return [e for e in out if e.at < end]


def _equipment(events: list[SimEvent], rng: random.Random, imsi: str, tac: str, kind: str,
               onset: float, end: float) -> tuple[list[SimEvent], str]:
    snr = f"{rng.randrange(10**6):06d}"
    if kind == "invalid":
        good = str(Imei.from_tac_snr(tac, snr))
        devices = [good[:14] + str((int(good[14]) + rng.randint(1, 9)) % 10)]
    elif kind == "tac":
        devices = [str(Imei.from_tac_snr(_OTHER_TAC, snr))]
    elif kind == "blocklisted":
        devices = [str(Imei.from_tac_snr(tac, snr))]
    else:  # churn: four devices of the model in turn
        devices = [str(Imei.from_tac_snr(tac, f"{rng.randrange(10**6):06d}")) for _ in range(4)]
    spans = [onset]
    for _ in devices[1:]:
        spans.append(spans[-1] + rng.uniform(4, 12) * H)
    spans.append(end)
    out = []
    for e in events:
        if e.at >= onset and e.imei[:8] == tac:
            k = max(i for i in range(len(devices)) if spans[i] <= e.at)
            out.append(replace(e, imei=devices[k]))
        else:
            out.append(e)
    # the SIM is heard from each new device at once
    for k, device in enumerate(devices):
        if spans[k] < end:
            out.append(SimEvent(spans[k], imsi_digits(imsi), "auth", imei=device,
                                tenant=events[0].tenant))
    out.sort(key=lambda e: e.at)
    return out, devices[0] if kind == "blocklisted" else ""
