"""Usage-fraud baselines: cohort volume, new destinations, session pattern; their inputs.

Each rule alerts on the behaviour it names, explains itself in the evidence,
stays silent on the ordinary variation next to it, and alerts at most once a
day; the events carry APN and destinations through their JSON form; the flow
pipeline names the destination prefixes and the tenant of each SIM's flows;
the scored evaluation includes usage and equipment scenarios.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.detect import MAX_DESTINATIONS, FraudDetector, SimEvent, prefix_of
from simtrust.errors import InvalidInput
from simtrust.testing.fraud import evaluation
from simtrust.testing.fraud.scenarios import generate

DAY = 86_400.0
T0 = 1_790_000_000.0


def _usage(found: list[object]) -> list[str]:
    return [a.evidence["feature"] for a in found if a.kind == "usage-fraud"]  # type: ignore[attr-defined]


def _day_of_volume(det: FraudDetector, imsi: str, day: int, octets: int, tenant: str,
                   apn: str = "iot") -> list[object]:
    at = T0 + day * DAY + 3600
    sid = f"{imsi}-{day}"
    found: list[object] = []
    found += det.observe(SimEvent(at, imsi, "session-start", session=sid, tenant=tenant, apn=apn))
    found += det.observe(SimEvent(at + 600, imsi, "session-stop", session=sid, tenant=tenant,
                                  apn=apn, octets=octets))
    return found


def test_a_new_sim_far_above_its_cohort_is_usage_fraud_on_day_one() -> None:
    det = FraudDetector()
    # 200 meters of one tenant and APN, ~2 MB a day each, over two days
    for day in range(2):
        for n in range(200):
            assert [] == _usage(_day_of_volume(det, f"0010100000{n:05d}", day,
                                               2_000_000 + 10_000 * n, "acme"))
    # a SIM of another APN of the tenant is another cohort: not judged yet
    assert [] == _usage(_day_of_volume(det, "001019999999998", 2, 900_000_000, "acme", "cam"))
    found = _day_of_volume(det, "001019999999999", 2, 900_000_000, "acme")
    assert ["cohort_daily_volume"] == _usage(found)
    evidence = found[-1].evidence  # type: ignore[attr-defined]
    assert evidence["cohort"] == "acme/iot"
    assert evidence["cohort_sim_days"] >= 100
    assert 1_900_000 < evidence["cohort_typical"] < 4_500_000
    # the same day again: no second alert
    assert [] == _usage(_day_of_volume(det, "001019999999999", 2, 1_900_000_000, "acme"))


def test_a_cohort_needs_enough_sim_days_and_the_floor() -> None:
    det = FraudDetector()
    for n in range(50):  # 50 SIM-days: too few to judge by
        _day_of_volume(det, f"0010100000{n:05d}", 0, 2_000_000, "acme")
    assert [] == _usage(_day_of_volume(det, "001019999999999", 1, 900_000_000, "acme"))
    for n in range(200):
        _day_of_volume(det, f"0010100001{n:05d}", 1, 100_000, "tiny")
    # 400 x its cohort but under the 50 MB floor (a firmware download)
    assert [] == _usage(_day_of_volume(det, "001019999999997", 2, 40_000_000, "tiny"))


def _flows(det: FraudDetector, imsi: str, at: float, prefixes: list[str]) -> list[object]:
    return det.observe(SimEvent(at, imsi, "flow", destinations=tuple(prefixes)))


def test_many_new_destinations_after_learning_are_usage_fraud() -> None:
    det = FraudDetector()
    imsi = "001010000000001"
    usual = ["52.1.2.0/24", "52.1.3.0/24", "34.9.9.0/24"]
    for h in range(48):  # two days of learning
        assert [] == _usage(_flows(det, imsi, T0 + h * 3600, usual[: 1 + h % 3]))
    # a few new endpoints a day are accepted, and become usual after a quiet day
    assert [] == _usage(_flows(det, imsi, T0 + 2 * DAY + 60, [f"8.8.{k}.0/24" for k in range(5)]))
    found: list[object] = []
    for k in range(30):  # then a phone's browsing: 30 new prefixes in a day
        found += _flows(det, imsi, T0 + 3 * DAY + k * 60, [f"100.{k}.1.0/24", usual[0]])
    assert ["new_destinations_per_day"] == _usage(found)
    evidence = found[0].evidence  # type: ignore[attr-defined]
    assert evidence["observed"] == 21
    assert evidence["usual"] == 8  # 3 learnt + 5 accepted on a quiet day
    assert "8.8.0.0/24" not in evidence["examples"]


def test_a_diverse_sim_is_not_judged_by_destinations() -> None:
    det = FraudDetector()
    imsi = "001010000000002"
    _flows(det, imsi, T0, [f"10.{k}.0.0/24" for k in range(65)])  # a router: > 64 usual
    found = _flows(det, imsi, T0 + 3 * DAY, [f"11.{k}.0.0/24" for k in range(100)])
    assert [] == _usage(found)


def test_session_starts_far_over_the_sims_pattern_are_usage_fraud() -> None:
    det = FraudDetector()
    imsi = "001010000000003"
    n = 0
    for day in range(4):
        for k in range(2):  # two sessions a day
            n += 1
            det.observe(SimEvent(T0 + day * DAY + k * 7200, imsi, "session-start",
                                 session=f"s{n}"))
    found: list[object] = []
    for k in range(20):  # then a short session every 20 minutes
        n += 1
        found += det.observe(SimEvent(T0 + 4 * DAY + k * 1200, imsi, "session-start",
                                      session=f"s{n}"))
    assert ["session_starts_per_day"] == _usage(found)
    evidence = found[0].evidence  # type: ignore[attr-defined]
    assert evidence["observed"] == 13  # over max(5 x 2, 12)
    assert evidence["baseline"] == pytest.approx(2.0)


def test_events_carry_apn_and_destinations_through_json() -> None:
    ev = SimEvent(T0, "001010000000001", "flow", tenant="acme", apn="iot",
                  destinations=("1.2.3.0/24", "2001:db8:1::/48"))
    assert SimEvent.from_json(ev.to_json()) == ev
    assert ev.cohort == "acme/iot"
    assert SimEvent(T0, "001010000000001", "auth", tenant="acme").cohort == "acme"
    with pytest.raises(InvalidInput):
        SimEvent(T0, "001010000000001", "flow", destinations=("x",) * (MAX_DESTINATIONS + 1))
    with pytest.raises(InvalidInput):
        SimEvent.from_json({"at": T0, "imsi": "001010000000001", "kind": "flow",
                            "destinations": [1, 2]})
    assert prefix_of("192.0.2.77") == "192.0.2.0/24"


@given(st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=8),
       st.text(max_size=8))
def test_destinations_and_apn_decode_or_refuse(dests: list[object], apn: str) -> None:
    doc = {"at": T0, "imsi": "001010000000001", "kind": "flow", "destinations": dests,
           "apn": apn}
    try:
        ev = SimEvent.from_json(doc)
    except InvalidInput:
        assert not all(isinstance(d, str) for d in dests)
        return
    assert list(ev.destinations) == dests
    assert ev.apn == apn


def test_scored_evaluation_includes_usage_and_equipment() -> None:
    figures = evaluation.evaluate(12, 400, days=5, usage_share=0.2).to_json()
    assert {"usage", "equipment"} <= set(figures["recall"])
    assert figures["recall"]["usage"] > 0.8
    assert figures["recall"]["equipment"] > 0.8
    assert figures["precision"]["usage-fraud"] > 0.8
    # without usage detail the roaming and cloning events of a seed are unchanged
    plain = [s for s in generate(12, 50, days=5) if s.label != "benign"]
    rich = {s.imsi: s for s in generate(12, 50, days=5, usage_share=0.2)}
    for s in plain:
        assert [(e.at, e.kind, e.plmn) for e in s.events] == [
            (e.at, e.kind, e.plmn) for e in rich[s.imsi].events if e.kind != "flow"]
