"""Fraud detectors over one per-SIM event stream: impossible travel, cloned SIM, equipment.

Pure logic: no I/O, no clock; every decision uses the events' own time
(``SimEvent.at``, UNIX seconds), so the same code runs live and over recorded
or generated streams. Inputs (issue 19 §1) are one :class:`SimEvent` per
authentication (TS 33.501 §6.1 / TS 29.272 §5.2.3.1 Authentication-Information
answers; a synchronisation failure carries AUTS, TS 33.102 §6.3.5), location
update (serving PLMN, TS 23.003 §12.1, optionally the cell or tracking area and
its position), RADIUS accounting session (RFC 2866 Start/Interim/Stop) and
flow summary.

Detectors (each :class:`~simtrust.detect.Alert` names what was seen, when, and
the threshold it crossed in ``evidence``):

* ``impossible-travel`` — the great-circle distance between the last place a
  SIM was seen and the new one, less the uncertainty of both positions, over
  the time between them exceeds a plausible speed (default 1,000 km/h: faster
  than any airliner's block speed). Places are the serving country's centroid
  (``data/mcc_centroids.json``, MCC → country, sources named there) with an
  uncertainty radius of ``radius_factor ×`` the radius of a disc of the
  country's area, or a cell position given by the caller with
  ``cell_radius_km``. An MCC without a position never yields a distance.
* ``sim-clone`` — the same IMSI alternating between two serving networks that
  cannot both be reached in the time between (A → B → A), or between two
  devices (IMEI A → B → A) within ``imei_alternation_s``; ``auts_failures``
  synchronisation failures within ``auts_window_s``; a re-sync whose SQN_MS is
  beyond the AuC's SEQ_HE (``auth-sqn-ahead``); two accounting sessions
  open at once from different devices or serving networks.
* ``equipment`` — an IMEI failing the Luhn check of TS 23.003 Annex B (or not
  15/16 digits), a TAC in no allocated range (:mod:`._tac`: the reporting
  bodies of GSMA TS.06, or exactly the imported GSMA TAC database), a TAC
  outside those of the device model registered for the
  SIM, a blocklisted IMEI or TAC, and IMEI churn (more than ``churn_imeis``
  distinct IMEIs within ``churn_window_s``); an IMEI on a partner's shared
  blocklist (``shared_blocklist``, :mod:`simtrust.fraudshare._sharing`).
* ``usage-fraud`` — a day's data volume far over the SIM's own baseline or its
  cohort's (tenant and APN), more new destinations in a day than the SIM's usual
  set allows, more session starts in a day than its own past
  (:mod:`simtrust.detect._usage`); a data-only SIM used like a phone — a burst
  of calls, SMS or voice-like flows (:mod:`simtrust.detect._voice`); a session,
  flow, call or SMS of a SIM its home side has suspended (``suspended``: the
  inventory's word, asked only for those events).

The detectors stay together in this module: they share one per-SIM state
object and one dispatch in :meth:`FraudDetector.observe`, which is what keeps
memory under 1 KiB per SIM and the event rate over 100,000/s; split across
modules they would each keep their own map of SIMs. The event value itself,
:class:`SimEvent`, and its kinds are in :mod:`._events`.

State per tracked SIM is one ``__slots__`` object: the last place (a shared
tuple from the table), times, the current and previous IMEI, a bounded tuple of
recent IMEIs and of open sessions, and a lazily created cooldown map; strings
for PLMNs come from the events and are interned. The work per event is a dict
look-up and a few comparisons; distances are computed only when the place
changes, the Luhn check only when the IMEI changes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from simtrust.detect._events import (
    EVENT_KINDS,
    FLOW,
    LOCATION,
    SESSION_KINDS,
    SESSION_START,
    SESSION_STOP,
    SQN_AHEAD,
    SYNC_FAILURE,
    USAGE_KINDS,
    VOICE_KINDS,
    SessionRow,
    SimEvent,
    session_event,
)
from simtrust.detect._fraud_params import FraudThresholds, Place, country_places, great_circle_km
from simtrust.detect._model import Alert
from simtrust.detect._tac import TacAllocations
from simtrust.detect._usage import UsageBaselines, UsageFinding
from simtrust.detect._voice import VoiceBaselines
from simtrust.domain import ImsiDigits, luhn_check_digit
from simtrust.errors import InvalidInput

__all__ = [
    "EVENT_KINDS", "FRAUD_ALERT_KINDS", "FraudDetector", "FraudThresholds", "Place",
    "SessionRow", "SimEvent", "country_places", "great_circle_km",
]

FRAUD_ALERT_KINDS = ("equipment", "impossible-travel", "shared-report", "sim-clone",
                     "usage-fraud")

_DIGITS = frozenset("0123456789")


class _Sim:
    """Per-SIM state (kept compact: see the module docstring)."""

    __slots__ = (
        "at",
        "auts",
        "auts_from",
        "flip_from",
        "flips",
        "hop_bad",
        "imei",
        "imei_left",
        "imeis",
        "place",
        "plmn",
        "prev_imei",
        "prev_place",
        "prev_plmn",
        "quiet",
        "sessions",
        "since",
    )

    def __init__(self) -> None:
        self.plmn = ""
        self.place: Place | None = None
        self.at = 0.0  # last time seen at ``place``
        self.since = 0.0  # first time seen at ``place``
        self.prev_plmn = ""
        self.prev_place: Place | None = None
        self.hop_bad = False  # reaching ``place`` was an impossible hop
        self.flips = 0  # returns to the previous network within the flap window
        self.flip_from = 0.0
        self.imei = ""
        self.prev_imei = ""
        self.imei_left = 0.0
        self.imeis: tuple[tuple[str, float], ...] = ()
        self.auts = 0
        self.auts_from = 0.0
        self.sessions: tuple[tuple[str, str, str, float], ...] = ()
        self.quiet: dict[str, float] | None = None


def _imei_problem(imei: str) -> str:
    """Why an IMEI/IMEISV is malformed (TS 23.003 §6.2, Annex B), or ``""``."""
    if not _DIGITS.issuperset(imei):
        return "non-digit"
    if len(imei) == 16:
        return "svn-reserved" if imei.endswith("99") else ""
    if len(imei) != 15:
        return "length"
    if ord(imei[-1]) - 48 != luhn_check_digit(imei[:-1]):
        return "check-digit"
    return ""


class FraudDetector:
    """Impossible travel, cloned-SIM and equipment detectors over :class:`SimEvent` streams.

    ``models`` maps an IMSI to the TACs of the device model registered for it
    (share one frozenset per model); ``blocked`` holds blocklisted IMEIs
    (14-digit payload or full) and TACs (8 digits). ``places`` overrides the
    MCC table (tests, operator-specific tables).
    """

    def __init__(
        self,
        thresholds: FraudThresholds | None = None,
        models: Mapping[str, frozenset[str]] | None = None,
        blocked: Iterable[str] = (),
        places: Mapping[str, Place] | None = None,
    ) -> None:
        self.thresholds = th = thresholds or FraudThresholds()
        self._places = places if places is not None else country_places(th.radius_factor)
        self._models: dict[str, frozenset[str]] = dict(models or {})
        self._blocked = frozenset(blocked)
        #: IMEI → id of the partner report that blocklists it (shared intelligence), or None.
        self.shared_blocklist: Callable[[str], str | None] | None = None
        #: IMSI → whether its home side has suspended it (the inventory), or None.
        self.suspended: Callable[[str], bool] | None = None
        self._sims: dict[str, _Sim] = {}
        self._usage = UsageBaselines(th)
        self._voice = VoiceBaselines(th, self._usage.history, self._usage.cohort_days)
        shipped = TacAllocations.shipped()
        #: The TAC allocation in force (the shipped reporting bodies, or an imported
        #: GSMA TAC database: :class:`~simtrust.detect.TacDatabaseFile`), asked when an
        #: IMEI changes.
        self.tac_allocations: Callable[[], TacAllocations] = lambda: shipped
        self.events = 0
        self.alerts = 0

    def __repr__(self) -> str:
        return f"FraudDetector(sims={len(self._sims)}, events={self.events}, alerts={self.alerts})"

    def __len__(self) -> int:
        return len(self._sims)

    def register_model(self, imsi: ImsiDigits, tacs: frozenset[str]) -> None:
        """The TACs of the device model registered for ``imsi`` (inventory)."""
        self._models[imsi] = tacs

    # -- entry point ---------------------------------------------------------------------

    def observe_location(self, at: float, imsi: ImsiDigits, plmn: str, imei: str,
                         tenant: str) -> list[Alert]:
        """:meth:`observe` of a ``location`` event (an attach decision); a tracked SIM's
        on its network with its equipment (or none) only moves ``sim.at``, no event made."""
        sim = self._sims.get(imsi)
        if sim is None or not plmn or plmn != sim.plmn or (imei and imei != sim.imei) \
                or not math.isfinite(at):
            return self.observe(SimEvent(at, imsi, LOCATION, plmn, imei, tenant=tenant))
        self.events += 1
        sim.at = at
        return []

    def observe(self, ev: SimEvent) -> list[Alert]:
        """Account one event; the alerts it raises (usually none)."""
        self.events += 1
        sim = self._sims.get(ev.imsi)
        if sim is None:
            sim = self._sims[ev.imsi] = _Sim()
        out: list[Alert] | None = None
        kind = ev.kind
        if ev.plmn or ev.lat is not None:
            if ev.plmn == sim.plmn and ev.lat is None:
                sim.at = ev.at
            else:
                out = self._move(sim, ev)
        if ev.imei and ev.imei != sim.imei:
            found = self._equipment(sim, ev)
            if found:
                out = found if out is None else out + found
        if kind in (SYNC_FAILURE, SQN_AHEAD):
            found = self._sync_failure(sim, ev)
            if kind == SQN_AHEAD:
                found += self._alert(
                    sim, ev, "sim-clone", "sqn",
                    f"SIM {ev.imsi}: the USIM's sequence number is beyond any the home AuC "
                    "issued (see the AuC's auc.resync audit record)",
                    {"feature": "sqn_out_of_window", "reason": "sqn-ahead-of-home",
                     "rule": "TS 33.102 §6.3.5, Annex C"}, ev.at)
            if found:
                out = found if out is None else out + found
        elif kind in VOICE_KINDS:
            found = self._usage_alerts(sim, ev.imsi, ev.tenant, ev.at, self._voice.observe(
                ev.imsi, kind, ev.at, ev.cohort, direction=ev.direction, duration=ev.duration))
            if found:
                out = found if out is None else out + found
        elif kind[0] == "s":  # session-start / -update / -stop
            found = self._session_work(sim, ev.imsi, kind, ev.session, ev.octets, ev.imei,
                                       ev.plmn, ev.tenant, ev.cohort, ev.at)
            if found:
                out = found if out is None else out + found
        elif kind == FLOW:
            found = self._usage_alerts(sim, ev.imsi, ev.tenant, ev.at, self._usage.destinations(
                ev.imsi, ev.destinations, ev.at, ev.cohort)) if ev.destinations else []
            if ev.voice_flows:
                found += self._usage_alerts(sim, ev.imsi, ev.tenant, ev.at, self._voice.observe(
                    ev.imsi, kind, ev.at, ev.cohort, flows=ev.voice_flows))
            if found:
                out = found if out is None else out + found
        if self.suspended is not None and kind in USAGE_KINDS and self.suspended(ev.imsi):
            found = self._suspended_alert(sim, ev.imsi, ev.tenant, ev.at, kind, ev.plmn,
                                          ev.session)
            if found:
                out = found if out is None else out + found
        if out:
            self.alerts += len(out)
            return out
        return []

    def observe_sessions(self, at: float, rows: Iterable[SessionRow]) -> list[Alert]:
        """A burst of session events seen at ``at`` (accounting records committed
        together), in order: the same alerts and state as :meth:`observe` of
        ``session_event(at, row)`` for each row. A row of a SIM already tracked whose
        network and equipment are unchanged (the steady Interim-Update) is taken without
        an event object: no place or equipment check applies to it; any other row is
        made the event and observed. :class:`InvalidInput` where the event would raise it.
        """
        if not math.isfinite(at):
            raise InvalidInput("SIM event time must be finite")
        out: list[Alert] = []
        sims = self._sims
        suspended = self.suspended
        for row in rows:
            imsi, kind, session, octets, plmn, imei, tenant, apn, _cell = row
            sim = sims.get(imsi)
            if (sim is None or kind not in SESSION_KINDS or not session
                    or (plmn and plmn != sim.plmn) or (imei and imei != sim.imei)
                    or not 0 <= octets < 2**64):
                found = self.observe(session_event(at, row))
                if found:
                    out += found
                continue
            self.events += 1
            if plmn:
                sim.at = at
            found = self._session_work(sim, imsi, kind, session, octets, imei, plmn, tenant,
                                       tenant + "/" + apn if apn else tenant, at)
            if suspended is not None and kind != SESSION_STOP and suspended(imsi):
                found += self._suspended_alert(sim, imsi, tenant, at, kind, plmn, session)
            if found:
                self.alerts += len(found)
                out += found
        return out

    def observe_many(self, events: Iterable[SimEvent]) -> list[Alert]:
        out: list[Alert] = []
        observe = self.observe
        for ev in events:
            found = observe(ev)
            if found:
                out += found
        return out

    # -- helpers -------------------------------------------------------------------------

    def _alert(
        self, sim: _Sim, ev: SimEvent, kind: str, key: str, summary: str,
        evidence: dict[str, Any], at: float,
    ) -> list[Alert]:
        return self._raise(sim, ev.imsi, ev.tenant, ev.at, kind, key, summary, evidence, at)

    def _raise(
        self, sim: _Sim, imsi: ImsiDigits, tenant: str, now: float, kind: str, key: str,
        summary: str, evidence: dict[str, Any], at: float,
    ) -> list[Alert]:
        """An alert of the event seen at ``now``, unless its cooldown is running."""
        quiet = sim.quiet
        if quiet is None:
            quiet = sim.quiet = {}
        name = kind + ":" + key
        if quiet.get(name, -math.inf) > now:
            return []
        # drop expired cooldowns so the map stays as small as the live alerts
        for k in [k for k, until in quiet.items() if until <= now]:
            del quiet[k]
        quiet[name] = now + self.thresholds.cooldown_s
        return [Alert(kind=kind, imsi=imsi, at=at, raised_at=now, summary=summary,
                      evidence=evidence, tenant=tenant)]

    def _suspended_alert(self, sim: _Sim, imsi: ImsiDigits, tenant: str, now: float,
                         kind: str, plmn: str, session: str) -> list[Alert]:
        return self._raise(
            sim, imsi, tenant, now, "usage-fraud", "suspended",
            f"SIM {imsi} used ({kind}) while its home operator has it suspended",
            {"feature": "used_while_suspended", "event": kind, "plmn": plmn,
             "session": session, "reason": "suspended"}, now)

    def _place(self, ev: SimEvent) -> Place | None:
        if ev.lat is not None and ev.lon is not None:
            return (ev.lat, ev.lon, self.thresholds.cell_radius_km, ev.cell or ev.plmn)
        return self._places.get(ev.plmn[:3])

    def _gap_km(self, a: Place, b: Place) -> float:
        """Distance that must have been covered at least: centre distance less both radii."""
        if a is b:
            return 0.0
        return max(0.0, great_circle_km(a[0], a[1], b[0], b[1]) - a[2] - b[2])

    def _move(self, sim: _Sim, ev: SimEvent) -> list[Alert] | None:
        th = self.thresholds
        plmn = sys.intern(ev.plmn) if ev.plmn else sim.plmn
        place = self._place(ev)
        old, old_plmn, left = sim.place, sim.plmn, sim.at
        out: list[Alert] | None = None
        bad = False
        if old is not None and place is not None and ev.at >= left:
            gap = self._gap_km(old, place)
            if gap > th.min_distance_km:
                # a journey of that length needs the flight and the time to board and
                # leave the aircraft (min_transfer_s) at the least
                hours = (ev.at - left) / 3600.0
                speed = gap / hours if hours > 0 else math.inf
                bad = ev.at - left < gap / th.max_speed_kmh * 3600.0 + th.min_transfer_s
            if bad:
                out = self._alert(
                    sim, ev, "impossible-travel", old[3] + ">" + place[3],
                    f"SIM {ev.imsi} seen in {place[3]} ({plmn}) "
                    f"{ev.at - left:.0f} s after {old[3]} ({old_plmn}): "
                    f"at least {gap:.0f} km, faster than {th.max_speed_kmh:.0f} km/h "
                    f"with {th.min_transfer_s / 60:.0f} min to board",
                    {
                        "feature": "travel_speed_kmh",
                        "from": {"plmn": old_plmn, "place": old[3], "last_seen": left},
                        "to": {"plmn": plmn, "place": place[3], "cell": ev.cell},
                        "min_distance_km": round(gap, 1),
                        "elapsed_s": round(ev.at - left, 3),
                        "observed": round(speed, 1) if math.isfinite(speed) else "inf",
                        "threshold": th.max_speed_kmh,
                        "min_transfer_s": th.min_transfer_s,
                        "event": ev.kind,
                    },
                    left,
                )
                # Out impossibly and straight back impossibly (A → B → A): the SIM
                # is in two places at once.
                prev = sim.prev_place
                if (
                    sim.hop_bad
                    and prev is not None
                    and self._gap_km(prev, place) <= th.min_distance_km
                    and ev.at - sim.since <= th.network_alternation_s
                ):
                    found = self._alert(
                        sim, ev, "sim-clone", "networks",
                        f"SIM {ev.imsi} alternates between {old_plmn} ({old[3]}) and "
                        f"{plmn} ({place[3]}), {gap:.0f} km apart at least",
                        {
                            "feature": "serving_network_alternation",
                            "networks": [sim.prev_plmn, old_plmn, plmn],
                            "min_distance_km": round(gap, 1),
                            "other_network_seen": [sim.since, left],
                            "returned_at": ev.at,
                            "threshold_kmh": th.max_speed_kmh,
                            "threshold_s": th.network_alternation_s,
                        },
                        sim.since,
                    )
                    out = found if out is None else out + found
        if plmn != old_plmn and plmn == sim.prev_plmn and old_plmn:
            found = self._flap(sim, ev, plmn, old_plmn)
            if found:
                out = found if out is None else out + found
        if place is not None or not sim.place:
            sim.prev_place, sim.prev_plmn = sim.place, sim.plmn
            sim.place, sim.plmn = place, plmn
            sim.since = sim.at = ev.at
            sim.hop_bad = bad
        else:
            # a network without a known position: keep the last fix, note the network
            sim.prev_plmn, sim.plmn = sim.plmn, plmn
            sim.at = ev.at
        return out

    def _flap(self, sim: _Sim, ev: SimEvent, plmn: str, other: str) -> list[Alert]:
        """Back and forth between two networks for hours: two SIMs on two networks.

        A device at a border or in poor coverage flaps for minutes; a clone on
        another network keeps the alternation going for hours.
        """
        th = self.thresholds
        if sim.flips == 0 or ev.at - sim.flip_from > th.flap_window_s:
            sim.flips, sim.flip_from = 1, ev.at
            return []
        sim.flips += 1
        if sim.flips < th.flap_returns or ev.at - sim.flip_from < th.flap_min_span_s:
            return []
        return self._alert(
            sim, ev, "sim-clone", "flapping",
            f"SIM {ev.imsi} returned {sim.flips} times between networks {plmn} and {other} "
            f"over {(ev.at - sim.flip_from) / 3600:.1f} h",
            {"feature": "serving_network_flapping", "networks": [plmn, other],
             "observed": sim.flips, "first_return_at": sim.flip_from, "returned_at": ev.at,
             "threshold": th.flap_returns, "window_s": th.flap_window_s,
             "min_span_s": th.flap_min_span_s},
            sim.flip_from,
        )

    def _equipment(self, sim: _Sim, ev: SimEvent) -> list[Alert]:
        th = self.thresholds
        imei = ev.imei
        out: list[Alert] = []
        problem = _imei_problem(imei)
        if problem:
            out += self._alert(
                sim, ev, "equipment", "invalid:" + imei,
                f"SIM {ev.imsi} in equipment with an invalid IMEI {imei!r} ({problem})",
                {"feature": "imei_valid", "observed": imei, "reason": problem,
                 "rule": "TS 23.003 §6.2 and Annex B (Luhn)"},
                ev.at,
            )
        tac = imei[:8]
        unallocated = "" if problem else self.tac_allocations().problem(tac)
        if unallocated:
            out += self._alert(
                sim, ev, "equipment", "tac-range:" + tac,
                f"SIM {ev.imsi} in equipment {imei} whose TAC {tac} is not allocated "
                f"({unallocated})",
                {"feature": "tac_allocated", "observed": imei, "tac": tac,
                 "reporting_body": tac[:2], "reason": unallocated,
                 "rule": "TS 23.003 §6.2.1; GSMA TS.06 Appendix A"
                         + ("; GSMA TAC database" if unallocated == "unallocated-tac" else "")},
                ev.at,
            )
        if imei in self._blocked or imei[:14] in self._blocked or tac in self._blocked:
            out += self._alert(
                sim, ev, "equipment", "blocked:" + imei,
                f"SIM {ev.imsi} in blocklisted equipment {imei}",
                {"feature": "imei_blocklist", "observed": imei, "tac": tac,
                 "reason": "blocklisted"},
                ev.at,
            )
        shared = self.shared_blocklist
        report = shared(imei) if shared is not None and not problem else None
        if report is not None:
            out += self._alert(
                sim, ev, "equipment", "shared:" + imei,
                f"SIM {ev.imsi} in equipment {imei} blocklisted by a partner's fraud report",
                {"feature": "imei_shared_blocklist", "observed": imei, "tac": tac,
                 "report": report, "reason": "partner-blocklisted"},
                ev.at,
            )
        model = self._models.get(ev.imsi)
        if model is not None and tac not in model and not problem:
            out += self._alert(
                sim, ev, "equipment", "tac:" + tac,
                f"SIM {ev.imsi} in a device of TAC {tac}, not the registered model",
                {"feature": "tac_matches_model", "observed": tac, "expected": sorted(model),
                 "reason": "tac-mismatch"},
                ev.at,
            )
        # IMEI alternation A → B → A: two devices share the SIM.
        if sim.imei and imei == sim.prev_imei and ev.at - sim.imei_left <= th.imei_alternation_s:
            out += self._alert(
                sim, ev, "sim-clone", "devices",
                f"SIM {ev.imsi} alternates between devices {imei} and {sim.imei}",
                {"feature": "imei_alternation", "devices": [imei, sim.imei],
                 "left_first_device_at": sim.imei_left, "returned_at": ev.at,
                 "threshold_s": th.imei_alternation_s},
                sim.imei_left,
            )
        # churn: distinct IMEIs within the window (bounded list, newest last)
        horizon = ev.at - th.churn_window_s
        recent = tuple(e for e in sim.imeis if e[1] >= horizon and e[0] != imei)
        recent = (*recent[-th.churn_imeis:], (imei, ev.at))
        sim.imeis = recent
        if len(recent) > th.churn_imeis:
            out += self._alert(
                sim, ev, "equipment", "churn",
                f"SIM {ev.imsi} used in {len(recent)} devices within "
                f"{th.churn_window_s / 86400:.0f} days",
                {"feature": "imei_churn", "observed": len(recent),
                 "devices": [e[0] for e in recent], "first_seen": [e[1] for e in recent],
                 "threshold": th.churn_imeis, "window_s": th.churn_window_s},
                recent[0][1],
            )
        if sim.imei:
            sim.prev_imei = sim.imei
            sim.imei_left = ev.at
        sim.imei = sys.intern(imei) if len(imei) <= 16 else imei
        return out

    def _usage_alerts(self, sim: _Sim, imsi: ImsiDigits, tenant: str, now: float,
                      found: list[UsageFinding]) -> list[Alert]:
        out: list[Alert] = []
        for key, summary, evidence in found:
            out += self._raise(sim, imsi, tenant, now, "usage-fraud", key, summary, evidence,
                               now)
        return out

    def _sync_failure(self, sim: _Sim, ev: SimEvent) -> list[Alert]:
        th = self.thresholds
        if sim.auts == 0 or ev.at - sim.auts_from > th.auts_window_s:
            sim.auts, sim.auts_from = 1, ev.at
        else:
            sim.auts += 1
        if sim.auts < th.auts_failures:
            return []
        return self._alert(
            sim, ev, "sim-clone", "auts",
            f"SIM {ev.imsi}: {sim.auts} synchronisation failures (AUTS) since "
            f"{ev.at - sim.auts_from:.0f} s",
            {"feature": "auts_resync_failures", "observed": sim.auts,
             "first_at": sim.auts_from, "threshold": th.auts_failures,
             "window_s": th.auts_window_s, "rule": "TS 33.102 §6.3.5"},
            sim.auts_from,
        )

    def _session_work(self, sim: _Sim, imsi: ImsiDigits, kind: str, sid: str, octets: int,
                      imei: str, plmn: str, tenant: str, cohort: str, at: float
                      ) -> list[Alert]:
        """A session event's concurrent-session check and usage baselines."""
        found = self._session(sim, imsi, tenant, kind, sid, imei, plmn, at)
        start = kind == SESSION_START
        if octets or start:
            found += self._usage_alerts(sim, imsi, tenant, at, self._usage.session(
                imsi, sid, octets, at, start=start, cohort=cohort))
        return found

    def _session(self, sim: _Sim, imsi: ImsiDigits, tenant: str, kind: str, sid: str,
                 imei: str, plmn: str, at: float) -> list[Alert]:
        sessions = sim.sessions
        if len(sessions) == 1 and kind != SESSION_STOP and sessions[0][0] == sid:
            only = sessions[0]  # its only session: the path below with nothing else live
            sim.sessions = ((sid, imei or only[1], plmn or only[2], at),)
            return []
        return self._sessions_checked(sim, imsi, tenant, kind, sid, imei, plmn, at)

    def _sessions_checked(self, sim: _Sim, imsi: ImsiDigits, tenant: str, kind: str,
                          sid: str, imei: str, plmn: str, at: float) -> list[Alert]:
        th = self.thresholds
        live = tuple(s for s in sim.sessions if s[0] != sid and at - s[3] <= th.session_stale_s)
        if kind == SESSION_STOP:
            sim.sessions = live
            return []
        mine = next((s for s in sim.sessions if s[0] == sid), None)
        imei = imei or (mine[1] if mine else sim.imei)
        plmn = plmn or (mine[2] if mine else sim.plmn)
        sim.sessions = (*live[-3:], (sid, imei, plmn, at))
        if mine is not None:
            return []
        # RFC 2866 Stops get lost: a new session of the same device on the same
        # network replaces the old one; another device or network means two SIMs.
        others = [s for s in live if s[1] != imei or s[2] != plmn]
        if not others:
            return []
        other = others[-1]
        return self._raise(
            sim, imsi, tenant, at, "sim-clone", "sessions",
            f"SIM {imsi} has two sessions at once: {sid} and {other[0]}",
            {"feature": "concurrent_sessions",
             "sessions": [{"id": sid, "imei": imei, "plmn": plmn, "seen": at},
                          {"id": other[0], "imei": other[1], "plmn": other[2],
                           "seen": other[3]}],
             "stale_after_s": th.session_stale_s},
            other[3],
        )
