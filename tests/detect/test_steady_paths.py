"""The steady-state shortcuts of the fraud detectors are the general path, exactly.

Two shortcuts skip work for the events a busy AAA server sees most: the location event
of an attach decision of a SIM already tracked on the same network with the same
equipment (:meth:`FraudDetector.observe_location`: no :class:`SimEvent` is made), and
the update of a SIM's only open session (:meth:`FraudDetector._session`: no search of
the other sessions). A reference detector takes the general path of both (the event
made and observed; every session through ``_sessions_checked``); generated streams of
location events and session bursts, with thresholds low enough that the travel,
equipment, concurrent-session, usage and suspended alerts fire, must give the same
alerts and leave the same state in both.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.detect import DetectionService, FraudDetector, SimEvent
from simtrust.detect._events import LOCATION
from simtrust.domain import ImsiDigits
from simtrust.errors import InvalidInput

from .test_session_burst import DAY, IMEIS, IMSIS, LOW, PLMNS, _state, rows


class _Reference(FraudDetector):
    """The detector without the shortcuts."""

    def observe_location(self, at: float, imsi: ImsiDigits, plmn: str, imei: str,
                         tenant: str) -> list[Any]:
        return self.observe(SimEvent(at, imsi, LOCATION, plmn=plmn, imei=imei, tenant=tenant))

    def _session(self, sim: Any, imsi: ImsiDigits, tenant: str, kind: str, sid: str,
                 imei: str, plmn: str, at: float) -> list[Any]:
        # the general path, which the only-session shortcut must agree with
        return self._sessions_checked(sim, imsi, tenant, kind, sid, imei, plmn, at)


def _pair(suspended: frozenset[str]) -> tuple[FraudDetector, FraudDetector]:
    new, ref = FraudDetector(LOW), _Reference(LOW)
    new.suspended = ref.suspended = suspended.__contains__
    return new, ref


locations = st.tuples(st.just("location"), st.sampled_from(IMSIS), st.sampled_from(PLMNS),
                      st.sampled_from(IMEIS), st.sampled_from(["", "acme"]))
steps_of = st.lists(
    st.tuples(st.sampled_from([0.0, 1.0, 60.0, 1_000.0, 20_000.0, DAY]),
              st.one_of(locations, st.lists(rows, max_size=6))),
    max_size=16,
)


def _run(detector: FraudDetector, steps: list[tuple[float, Any]]) -> list[Any]:
    at = 1_700_000_000.0
    out: list[Any] = []
    for gap, step in steps:
        at += gap
        if isinstance(step, tuple):
            _kind, imsi, plmn, imei, tenant = step
            out += detector.observe_location(at, imsi, plmn, imei, tenant)
        else:
            out += detector.observe_sessions(at, step)
    return out


@settings(max_examples=400, deadline=None)
@given(steps_of, st.sets(st.sampled_from(IMSIS)))
def test_generated_streams_agree_with_the_general_path(
        steps: list[tuple[float, Any]], suspended: set[str]) -> None:
    new, ref = _pair(frozenset(suspended))
    assert _run(ref, steps) == _run(new, steps)
    assert _state(ref) == _state(new)


def test_a_steady_stream_takes_the_shortcuts_and_still_alerts_on_change() -> None:
    imsi = IMSIS[0]
    steps: list[tuple[float, Any]] = [
        (0.0, ("location", imsi, "23415", IMEIS[1], "acme")),
        (1.0, [(imsi, "session-start", "1:a", 0, "23415", IMEIS[1], "acme", "acme.iot", "")]),
    ]
    steps += [(60.0, ("location", imsi, "23415", IMEIS[1], "acme")) for _ in range(3)]
    steps += [(60.0, [(imsi, "session-update", "1:a", 10 * n, "", "", "acme", "", "")])
              for n in range(1, 4)]
    # another device, then a session from it while the first is open: two SIMs at once
    steps.append((60.0, ("location", imsi, "23415", IMEIS[2], "acme")))
    steps.append((1.0, [(imsi, "session-start", "1:b", 5, "23415", IMEIS[2], "acme", "", "")]))
    # far away within minutes: impossible travel
    steps.append((60.0, ("location", imsi, "310260", IMEIS[2], "acme")))
    new, ref = _pair(frozenset())
    got = _run(new, steps)
    assert _run(ref, steps) == got
    assert {"sim-clone"} <= {a.kind for a in got}
    assert "impossible-travel" in {a.kind for a in got}
    assert _state(ref) == _state(new)


def test_a_location_no_event_could_carry_is_refused_as_the_event_would_be() -> None:
    detector = FraudDetector(LOW)
    detector.observe_location(1.0, IMSIS[0], "00101", IMEIS[1], "acme")
    with pytest.raises(InvalidInput):
        detector.observe_location(float("nan"), IMSIS[0], "00101", IMEIS[1], "acme")
    with pytest.raises(InvalidInput):
        detector.observe_location(2.0, ImsiDigits(""), "00101", "", "acme")


def test_the_service_observes_a_location_here_and_forwards_its_event_when_forwarding() -> None:
    class Log:
        def __init__(self) -> None:
            self.events: list[SimEvent] = []

        def append(self, event: SimEvent) -> None:
            self.events.append(event)

    here = DetectionService([])
    here.observe_location(5.0, IMSIS[0], "00101", IMEIS[1], "acme")
    here.observe_location(6.0, IMSIS[0], "00101", IMEIS[1], "acme")
    assert 2 == here.fraud.events
    assert 6.0 == here.fraud._sims[IMSIS[0]].at
    worker = DetectionService([])
    log = Log()
    worker.forward_to(log)  # type: ignore[arg-type]
    assert [] == worker.observe_location(5.0, IMSIS[0], "00101", IMEIS[1], "acme")
    assert [SimEvent(5.0, IMSIS[0], LOCATION, plmn="00101", imei=IMEIS[1],
                     tenant="acme")] == log.events
    assert 0 == worker.fraud.events
