"""Phone-like use of data-only SIMs: calls, SMS and voice-like flows against baselines.

A data-only cohort's SIM that bursts into calls or SMS alerts once a day with
its evidence; mobile-terminated SMS (OTA, device triggers) never make a
burst; a cohort that uses voice is not judged; a SIM without a cohort is
judged by its own data history; the SIM's own voice past raises its bar;
flow summaries' voice-like flows count; the flow classifier tells SIP and
bidirectional RTP-like media from telemetry and video; the evaluation scores
the phone-like scenarios beside benign alarm panels.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import (
    Alert,
    FraudDetector,
    FraudThresholds,
    SimEvent,
    VoiceTally,
    voice_flow_kind,
)
from simtrust.detect._voice import RTP, SIP
from simtrust.domain import FlowRecord
from simtrust.errors import InvalidInput
from simtrust.testing.fraud.evaluation import evaluate
from simtrust.testing.fraud.scenarios import generate

DAY = 86_400.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % DAY
SIM = "001019999999999"


def _phone(found: list[Alert]) -> list[Alert]:
    return [a for a in found if a.evidence.get("feature") == "phone_like_use"]


def _cohort(det: FraudDetector, days: int = 2, sims: int = 120, tenant: str = "acme",
            voice_every: int = 0) -> None:
    """``sims`` SIMs with a data session a day; every ``voice_every``-th one sends an SMS."""
    for day in range(days):
        for n in range(sims):
            imsi = f"0010100000{n:05d}"
            at = T0 + day * DAY + 3600 + n
            sid = f"{imsi}-{day}"
            det.observe(SimEvent(at, imsi, "session-start", session=sid, tenant=tenant,
                                 apn="iot"))
            det.observe(SimEvent(at + 60, imsi, "session-stop", session=sid, tenant=tenant,
                                 apn="iot", octets=2_000_000))
            if voice_every and n % voice_every == 0:
                det.observe(SimEvent(at + 90, imsi, "sms", tenant=tenant, direction="mo"))
    # the SIM under test belongs to the cohort too
    for day in range(days):
        at = T0 + day * DAY + 7200
        det.observe(SimEvent(at, SIM, "session-start", session=f"x{day}", tenant=tenant,
                             apn="iot"))
        det.observe(SimEvent(at + 60, SIM, "session-stop", session=f"x{day}", tenant=tenant,
                             apn="iot", octets=2_000_000))


def _calls(det: FraudDetector, day: int, n: int, kind: str = "voice",
           direction: str = "mo", imsi: str = SIM) -> list[Alert]:
    out: list[Alert] = []
    for k in range(n):
        at = T0 + day * DAY + 8 * 3600 + k * 900
        duration = 120.0 if kind == "voice" else 0.0
        out += det.observe(SimEvent(at, imsi, kind, direction=direction, duration=duration,
                                    tenant="acme"))
    return out


def test_a_data_only_sim_making_calls_is_phone_like_use_once_a_day() -> None:
    det = FraudDetector()
    _cohort(det)
    # five calls are within the floor; the sixth makes the burst
    assert [] == _phone(_calls(det, 2, 5))
    found = _phone(_calls(det, 2, 1))
    assert len(found) == 1
    alert = found[0]
    assert alert.kind == "usage-fraud"
    ev = alert.evidence
    assert (ev["observed"], ev["calls"], ev["sms_mo"], ev["data_only_by"]) == (6, 6, 0, "cohort")
    assert ev["cohort"] == "acme/iot"
    assert ev["cohort_sim_days"] >= 100
    assert ev["cohort_voice_share"] == 0.0
    assert ev["talk_s"] == 720.0
    assert ev["mobile_originated"] == 6
    assert ev["threshold"] == 5.0
    assert "data-only SIM" in alert.summary
    # more calls the same day: no second alert; the next day's burst alerts again
    assert [] == _phone(_calls(det, 2, 10))
    assert len(_phone(_calls(det, 3, 30))) == 1


def test_mobile_terminated_sms_never_make_a_burst() -> None:
    det = FraudDetector()
    _cohort(det)
    # an OTA campaign: 40 SMS to the SIM in a day
    assert [] == _phone(_calls(det, 2, 40, kind="sms", direction="mt"))
    # SMS the SIM sends do
    found = _phone(_calls(det, 2, 6, kind="sms", direction="mo"))
    assert [(6, 40)] == [(a.evidence["sms_mo"], a.evidence["sms_mt"]) for a in found]


def test_a_cohort_that_uses_voice_is_not_judged() -> None:
    det = FraudDetector()
    # every 5th SIM of the cohort sends an SMS each day: 20 % of SIM-days
    _cohort(det, days=3, voice_every=5)
    assert [] == _phone(_calls(det, 3, 30))


def test_a_young_cohort_falls_back_on_the_sims_own_history() -> None:
    # a cohort of 10 SIMs is not judged; the SIM's own 3 days of data use without
    # calls make it data-only
    det = FraudDetector()
    _cohort(det, days=2, sims=10)
    assert [] == _phone(_calls(det, 2, 20))  # 2 days of history: not enough
    det = FraudDetector()
    _cohort(det, days=3, sims=10)
    found = _phone(_calls(det, 3, 20))
    assert ["own-history"] == [a.evidence["data_only_by"] for a in found]
    # a SIM never seen using data is not known to be data-only
    assert [] == _phone(_calls(det, 3, 20, imsi="001018888888888"))
    # nor is one that sent an SMS on an earlier day
    det = FraudDetector()
    _cohort(det, days=3, sims=10)
    assert [] == _phone(_calls(det, 2, 1, kind="sms"))
    assert [] == _phone(_calls(det, 3, 20))


def test_the_sims_own_voice_past_raises_its_bar() -> None:
    det = FraudDetector()
    _cohort(det, days=18)
    # 14 days of 4 calls a day (under the floor) teach the SIM's baseline
    for day in range(2, 16):
        assert [] == _phone(_calls(det, day, 4))
    # its own past is ~4 a day: 15 is not 5 times that; then (~7 a day) 40 is
    assert [] == _phone(_calls(det, 16, 15))
    found = _phone(_calls(det, 17, 40))
    assert len(found) == 1
    assert found[0].evidence["baseline"] > 3.0


def test_voice_like_flows_in_flow_summaries_count() -> None:
    det = FraudDetector()
    _cohort(det)
    at = T0 + 2 * DAY + 10 * 3600
    assert [] == _phone(det.observe(SimEvent(at, SIM, "flow", voice_flows=3)))
    found = _phone(det.observe(SimEvent(at + 600, SIM, "flow", voice_flows=4)))
    assert [(7, 7)] == [(a.evidence["observed"], a.evidence["voice_flows"]) for a in found]


def test_a_call_of_a_suspended_sim_is_usage_while_suspended() -> None:
    det = FraudDetector()
    det.suspended = lambda imsi: imsi == SIM
    found = det.observe(SimEvent(T0, SIM, "voice", direction="mo", duration=30.0))
    assert [("used_while_suspended", "voice")] == [
        (a.evidence["feature"], a.evidence["event"]) for a in found]


def test_thresholds_are_the_detectors() -> None:
    det = FraudDetector(FraudThresholds(voice_floor=20))
    _cohort(det)
    assert [] == _phone(_calls(det, 2, 20))
    assert len(_phone(_calls(det, 2, 1))) == 1


# -- events ------------------------------------------------------------------------------

def test_voice_events_round_trip_through_json() -> None:
    ev = SimEvent(T0, SIM, "voice", tenant="acme", direction="mt", duration=61.5)
    assert SimEvent.from_json(ev.to_json()) == ev
    flow = SimEvent(T0, SIM, "flow", voice_flows=3)
    assert SimEvent.from_json(flow.to_json()) == flow
    assert "direction" not in SimEvent(T0, SIM, "auth").to_json()


@pytest.mark.parametrize("doc", [
    {"direction": "out"},
    {"duration": -1},
    {"duration": 86_401},
    {"duration": 10**400},
    {"duration": "60"},
    {"voice_flows": -1},
    {"voice_flows": True},
])
def test_malformed_voice_fields_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SimEvent.from_json({"at": T0, "imsi": SIM, "kind": "voice", **doc})


def test_only_a_call_has_a_duration() -> None:
    with pytest.raises(InvalidInput, match="only a voice event"):
        SimEvent(T0, SIM, "sms", duration=3.0)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["at", "imsi", "kind", "direction", "duration",
                                        "voice_flows", "tenant"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=8), st.sampled_from(["voice", "sms", "mo",
                                                                       "mt", SIM])),
                       max_size=7))
def test_event_decoder_fuzz_with_voice_fields(doc: dict[str, object]) -> None:
    try:
        ev = SimEvent.from_json(doc)
    except InvalidInput:
        return
    assert SimEvent.from_json(ev.to_json()) == ev


# -- flows -------------------------------------------------------------------------------

def _flow(proto: int, sport: int, dport: int, seconds: float, pps: float,
          size: int) -> FlowRecord:
    packets = int(seconds * pps)
    return FlowRecord(1000.0, 1000.0 + seconds, "10.0.0.1", "198.51.100.9", sport, dport,
                      proto, packets, packets * size)


def test_the_flow_classifier_tells_voice_from_telemetry_and_video() -> None:
    assert voice_flow_kind(_flow(17, 40000, 5060, 1, 3, 600)) == SIP
    assert voice_flow_kind(_flow(6, 5061, 40000, 30, 1, 800)) == SIP
    assert voice_flow_kind(_flow(1, 5060, 5060, 1, 1, 64)) == 0  # ICMP is not SIP
    assert voice_flow_kind(_flow(17, 16384, 30000, 60, 50, 200)) == RTP  # G.711 20 ms
    assert voice_flow_kind(_flow(17, 16384, 30000, 60, 25, 120)) == RTP  # AMR 40 ms
    assert voice_flow_kind(_flow(17, 16384, 30000, 60, 50, 1200)) == 0  # video
    assert voice_flow_kind(_flow(17, 16384, 30000, 60, 2, 200)) == 0  # telemetry
    assert voice_flow_kind(_flow(17, 16384, 30000, 60, 200, 200)) == 0  # bulk
    assert voice_flow_kind(_flow(17, 16384, 30000, 5, 50, 200)) == 0  # too short
    assert voice_flow_kind(_flow(17, 40000, 123, 60, 50, 90)) == 0  # privileged port
    assert voice_flow_kind(_flow(6, 16384, 30000, 60, 50, 200)) == 0  # TCP


def test_the_tally_pairs_media_by_direction() -> None:
    tally = VoiceTally()
    rtp = _flow(17, 16384, 30000, 60, 50, 200)
    tally.add("a", rtp, True)
    tally.add("a", rtp, True)
    assert tally.count("a") == 0  # one-way: a stream, not a conversation
    tally.add("a", rtp, False)
    tally.add("a", _flow(17, 40000, 5060, 1, 3, 600), True)
    tally.add("a", _flow(6, 40000, 443, 60, 50, 200), True)  # not voice
    assert tally.count("a") == 2
    assert tally.count("b") == 0


# -- evaluation --------------------------------------------------------------------------

def test_the_evaluation_scores_phone_like_use_without_false_alarms() -> None:
    figures = evaluate(7, 300, days=5.0, usage_share=0.1, phone_share=0.08)
    assert figures.recall["phone"] >= 0.8
    assert figures.precision["phone-like-use"] == 1.0
    assert "phone-like-use" not in figures.false_alarm_kinds
    assert figures.alerts_by_kind["phone-like-use"] >= 10


def test_phone_scenarios_leave_the_other_events_of_a_seed_alone() -> None:
    plain = {s.imsi: s for s in generate(12, 80, days=4, usage_share=0.2)}
    rich = list(generate(12, 80, days=4, usage_share=0.2, phone_share=0.2))
    voice = {"voice", "sms"}
    phones = [s for s in rich if s.label == "phone"]
    alarms = [s for s in rich if s.label == "benign" and any(e.kind in voice for e in s.events)]
    assert phones
    assert alarms
    for s in rich:
        mine = [e for e in s.events if e.kind not in voice and not e.voice_flows]
        assert [(e.at, e.kind) for e in mine] == [(e.at, e.kind) for e in plain[s.imsi].events]
    assert all(e.tenant == "tenant-alarms" for s in alarms for e in s.events)
