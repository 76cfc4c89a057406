"""A burst of session rows through the fraud detectors is the per-event path, exactly.

:meth:`FraudDetector.observe_sessions` takes the steady rows (a SIM already tracked,
network and equipment unchanged) without building a :class:`SimEvent`; every alert,
every counter and every piece of per-SIM state (places, equipment, sessions, usage
baselines, cohorts, cooldowns) must be what :meth:`FraudDetector.observe` gives for
``session_event(at, row)`` of each row, in order — checked on hand-made streams and on
generated ones (hypothesis) with thresholds low enough that the usage, concurrent-session,
suspended, travel and equipment alerts all fire.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.detect import (
    DetectionService,
    FraudDetector,
    FraudThresholds,
    SessionRow,
    SimEvent,
    session_event,
)
from simtrust.domain import ImsiDigits, imsi_digits
from simtrust.errors import InvalidInput

IMSIS = [imsi_digits(f"00101{n:010d}") for n in range(3)]
# valid IMEISVs of two devices, one IMEI failing the Luhn check, none
IMEIS = ["", "3520990000000101", "3520990000000201", "352099000000019"]
PLMNS = ["", "00101", "23415", "310260", "99999"]  # home, UK, US, no known position
LOW = FraudThresholds(volume_floor_octets=1_000, volume_min_days=1, session_floor=1,
                      session_min_days=1, cohort_min_days=1, cohort_factor=1.5, cohort_z=0.5,
                      cooldown_s=600.0, session_stale_s=900.0)
DAY = 86_400.0


def _detector(suspended: frozenset[str] = frozenset()) -> FraudDetector:
    detector = FraudDetector(LOW)
    detector.suspended = suspended.__contains__
    return detector


def _state(detector: FraudDetector) -> dict[str, Any]:
    """Everything the detector keeps, as comparable values."""
    sims = {imsi: {slot: getattr(sim, slot) for slot in type(sim).__slots__}
            for imsi, sim in detector._sims.items()}
    usage = detector._usage
    baselines = {imsi: {slot: _plain(getattr(u, slot)) for slot in type(u).__slots__}
                 for imsi, u in usage._sims.items()}
    cohorts = {name: (c.n, c.mean, c.var) for name, c in usage._cohorts.items()}
    return {"sims": sims, "usage": baselines, "cohorts": cohorts,
            "events": detector.events, "alerts": detector.alerts}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if hasattr(value, "__slots__"):
        return {slot: _plain(getattr(value, slot)) for slot in type(value).__slots__}
    return value


def _per_event(detector: FraudDetector, bursts: list[tuple[float, list[SessionRow]]]
               ) -> list[Any]:
    out = []
    for at, rows in bursts:
        for row in rows:
            out += detector.observe(session_event(at, row))
    return out


def _burst(detector: FraudDetector, bursts: list[tuple[float, list[SessionRow]]]
           ) -> list[Any]:
    out = []
    for at, rows in bursts:
        out += detector.observe_sessions(at, rows)
    return out


def _row(imsi: ImsiDigits, kind: str, session: str, octets: int, *, plmn: str = "",
         imei: str = "", tenant: str = "acme", apn: str = "acme.iot") -> SessionRow:
    return (imsi, kind, session, octets, plmn, imei, tenant, apn, "")


def test_a_steady_stream_raises_the_same_alerts_and_keeps_the_same_state() -> None:
    imsi = IMSIS[0]
    other = IMSIS[1]
    bursts: list[tuple[float, list[SessionRow]]] = [
        (1_000.0, [_row(imsi, "session-start", "1:a", 0, plmn="00101", imei=IMEIS[1]),
                   _row(other, "session-start", "1:b", 10, plmn="00101")]),
    ]
    # three quiet days, then a day moving far more than the baseline: a volume alert
    for day in range(4):
        octets = 2_000 if day < 3 else 5_000_000
        bursts += [(1_000.0 + day * DAY + step, [
            _row(imsi, "session-update", "1:a", octets * (step + 1), plmn="00101"),
            _row(other, "session-update", "1:b", 10 + step)]) for step in range(3)]
    # a second session from another device while the first is open: two SIMs
    bursts.append((1_000.0 + 3 * DAY + 10, [_row(imsi, "session-start", "1:c", 5,
                                                 imei=IMEIS[2])]))
    bursts.append((1_000.0 + 3 * DAY + 20, [_row(imsi, "session-stop", "1:a", 0),
                                            _row(other, "session-stop", "1:b", 99)]))
    per_event, burst = _detector(frozenset({other})), _detector(frozenset({other}))
    expected = _per_event(per_event, bursts)
    got = _burst(burst, bursts)
    assert expected == got
    assert {"usage-fraud", "sim-clone"} <= {a.kind for a in got}
    assert any(a.evidence.get("reason") == "suspended" for a in got)
    assert _state(per_event) == _state(burst)


rows = st.builds(
    lambda imsi, kind, session, octets, plmn, imei, tenant, apn: (
        imsi, kind, session, octets, plmn, imei, tenant, apn, ""),
    st.sampled_from(IMSIS),
    st.sampled_from(["session-start", "session-update", "session-update", "session-stop"]),
    st.sampled_from(["1:a", "1:b", "2:a"]),
    st.one_of(st.just(0), st.integers(1, 10_000_000), st.just(2**64 - 1)),
    st.sampled_from(PLMNS),
    st.sampled_from(IMEIS),
    st.sampled_from(["", "acme", "beta"]),
    st.sampled_from(["", "acme.iot"]),
)
bursts_of = st.lists(
    st.tuples(st.sampled_from([0.0, 1.0, 60.0, 1_000.0, 20_000.0, DAY]),
              st.lists(rows, max_size=8)),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(bursts_of, st.sets(st.sampled_from(IMSIS)))
def test_generated_bursts_agree_with_the_per_event_path(
        steps: list[tuple[float, list[SessionRow]]], suspended: set[str]) -> None:
    at = 1_700_000_000.0
    bursts = []
    for gap, burst_rows in steps:
        at += gap
        bursts.append((at, burst_rows))
    per_event, burst = _detector(frozenset(suspended)), _detector(frozenset(suspended))
    assert _per_event(per_event, bursts) == _burst(burst, bursts)
    assert _state(per_event) == _state(burst)


def test_a_row_no_event_could_carry_is_refused_as_the_event_would_be() -> None:
    detector = _detector()
    detector.observe_sessions(1.0, [_row(IMSIS[0], "session-start", "1:a", 1)])
    for bad in (_row(IMSIS[0], "session-update", "", 1),  # no session id
                _row(IMSIS[0], "session-update", "1:a", 2**64),  # octets out of range
                _row(IMSIS[0], "bogus", "1:a", 1)):
        with pytest.raises(InvalidInput):
            session_event(2.0, bad)
        with pytest.raises(InvalidInput):
            detector.observe_sessions(2.0, [bad])
    with pytest.raises(InvalidInput):
        detector.observe_sessions(math.nan, [_row(IMSIS[0], "session-update", "1:a", 1)])


def test_the_service_detects_a_burst_here_and_forwards_each_event_when_forwarding() -> None:
    class Log:
        def __init__(self) -> None:
            self.events: list[SimEvent] = []

        def append(self, event: SimEvent) -> None:
            self.events.append(event)

    rows_ = [_row(IMSIS[0], "session-start", "1:a", 0, imei=IMEIS[1]),
             _row(IMSIS[0], "session-start", "1:b", 0, imei=IMEIS[2])]
    here = DetectionService([])
    assert ["sim-clone"] == [a.kind for a in here.observe_sessions(5.0, rows_)]
    assert 2 == here.fraud.events
    worker = DetectionService([])
    log = Log()
    worker.forward_to(log)  # type: ignore[arg-type]
    assert [] == worker.observe_sessions(5.0, rows_)
    assert [session_event(5.0, r) for r in rows_] == log.events
    assert 0 == worker.fraud.events
