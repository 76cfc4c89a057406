"""The fraud detectors: impossible travel, cloned SIM and equipment, with their edge cases."""

from __future__ import annotations

import pytest

from simtrust.detect import (
    EVENT_KINDS,
    FraudDetector,
    FraudThresholds,
    SimEvent,
    country_places,
    great_circle_km,
)
from simtrust.domain import Imei
from simtrust.errors import InvalidInput

IMSI = "262019876543210"
GOOD = str(Imei.from_tac_snr("35328611", "123456"))
OTHER = str(Imei.from_tac_snr("35328611", "654321"))
THIRD = str(Imei.from_tac_snr("86123404", "000001"))
FOURTH = str(Imei.from_tac_snr("86123404", "000002"))
H = 3600.0


def ev(at: float, kind: str = "auth", **kw: object) -> SimEvent:
    return SimEvent(at, kw.pop("imsi", IMSI), kind, **kw)  # type: ignore[arg-type]


def kinds(alerts: list) -> list[str]:  # type: ignore[type-arg]
    return [a.kind for a in alerts]


def test_great_circle_known_distance() -> None:
    # Paris (48.8566, 2.3522) to London (51.5074, -0.1278): about 344 km
    assert great_circle_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=2)
    assert great_circle_km(10, 20, 10, 20) == 0.0


def test_table_maps_mccs_and_names_sources() -> None:
    places = country_places()
    assert places["262"][3] == "DE"
    assert places["310"] is places["316"]
    assert places["234"][3] == "GB"
    assert "001" not in places  # test networks have no position


def test_event_validation() -> None:
    assert "auth-sync-failure" in EVENT_KINDS
    with pytest.raises(InvalidInput):
        SimEvent(0, IMSI, "teleport")
    with pytest.raises(InvalidInput):
        SimEvent(0, "", "auth")
    with pytest.raises(InvalidInput):
        SimEvent(float("nan"), IMSI, "auth")
    with pytest.raises(InvalidInput):
        SimEvent(0, IMSI, "location", lat=1.0)
    with pytest.raises(InvalidInput):
        SimEvent(0, IMSI, "location", lat=91.0, lon=0.0)
    with pytest.raises(InvalidInput):
        SimEvent(0, IMSI, "session-start")


class TestImpossibleTravel:
    def test_far_hop_too_fast_alerts_with_evidence(self) -> None:
        d = FraudDetector()
        assert d.observe(ev(0, plmn="26201")) == []
        assert d.observe(ev(1800, plmn="26201")) == []
        [alert] = d.observe(ev(1800 + 2 * H, plmn="310260"))
        assert alert.kind == "impossible-travel"
        e = alert.evidence
        assert e["from"]["place"] == "DE"
        assert e["to"]["place"] == "US"
        assert e["from"]["last_seen"] == 1800
        assert alert.at == 1800
        assert e["elapsed_s"] == 2 * H
        assert e["threshold"] == 1000.0
        assert e["observed"] > 1000.0
        assert e["min_distance_km"] > 2000

    def test_real_flight_is_not_alerted(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, plmn="26201"))
        assert d.observe(ev(9 * H, plmn="310260")) == []  # Frankfurt–Chicago block time

    def test_border_crossing_is_not_alerted(self) -> None:
        d = FraudDetector()
        for i, plmn in enumerate(["26201", "20801", "26201", "22801", "23201", "26202"]):
            assert d.observe(ev(i * 60.0, plmn=plmn)) == []

    def test_unknown_mcc_has_no_distance(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, plmn="26201"))
        assert d.observe(ev(1, plmn="00101")) == []
        # the last fix (DE) is kept; a hop to Brazil is measured from there
        assert kinds(d.observe(ev(2, plmn="72405"))) == ["impossible-travel"]

    def test_same_instant_far_apart(self) -> None:
        d = FraudDetector()
        d.observe(ev(100, plmn="26201"))
        [alert] = d.observe(ev(100, plmn="50501"))
        assert alert.evidence["observed"] == "inf"

    def test_out_of_order_event_is_not_a_hop(self) -> None:
        d = FraudDetector()
        d.observe(ev(1000, plmn="26201"))
        assert d.observe(ev(10, plmn="50501")) == []

    def test_cell_positions_are_precise(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, "location", plmn="26201", cell="c1", lat=52.52, lon=13.40))  # Berlin
        # Munich an hour later by cell: 504 km less the cell radii in 26 min + 30 min to board
        assert d.observe(ev(H, "location", plmn="26201", cell="c2", lat=48.14, lon=11.58)) == []
        [a] = d.observe(ev(H + 60, "location", plmn="26201", cell="c1", lat=52.52, lon=13.40))
        assert a.kind == "impossible-travel"
        assert a.evidence["to"]["cell"] == "c1"

    def test_cooldown_per_route(self) -> None:
        d = FraudDetector(FraudThresholds(cooldown_s=H))
        d.observe(ev(0, plmn="26201"))
        assert kinds(d.observe(ev(60, plmn="72405"))) == ["impossible-travel"]
        d.observe(ev(3 * H, plmn="26201"))
        assert kinds(d.observe(ev(3 * H + 60, plmn="72405"))) == ["impossible-travel"]


    def test_transfer_time_counts(self) -> None:
        # Germany to Spain: some 500 km provable, not 45 minutes door to door
        d = FraudDetector()
        d.observe(ev(0, plmn="26201"))
        [a] = d.observe(ev(2700, plmn="21401"))
        assert a.evidence["min_transfer_s"] == 1800
        assert a.evidence["observed"] < 1000


class TestClone:
    def test_sustained_flapping_between_networks(self) -> None:
        d = FraudDetector()
        out = []
        for i in range(12):
            out += d.observe(ev(i * 1800.0, plmn="26201" if i % 2 else "26202"))
        assert kinds(out) == ["sim-clone"]
        assert out[0].evidence["feature"] == "serving_network_flapping"

    def test_border_ping_pong_for_minutes_is_benign(self) -> None:
        d = FraudDetector()
        for i in range(20):
            assert d.observe(ev(i * 120.0, plmn="26201" if i % 2 else "20801")) == []

    def test_alternating_far_networks(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, plmn="26201"))
        assert kinds(d.observe(ev(300, plmn="72405"))) == ["impossible-travel"]
        alerts = d.observe(ev(600, plmn="26201"))
        assert "sim-clone" in kinds(alerts)
        clone = alerts[kinds(alerts).index("sim-clone")]
        assert clone.evidence["feature"] == "serving_network_alternation"

    def test_round_trip_by_air_is_not_a_clone(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, plmn="26201"))
        assert d.observe(ev(2 * H, plmn="23415")) == []  # FRA → LHR
        assert d.observe(ev(6 * H, plmn="26201")) == []  # and back

    def test_alternating_devices(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, imei=GOOD))
        assert d.observe(ev(60, imei=OTHER)) == []
        [a] = d.observe(ev(120, imei=GOOD))
        assert a.kind == "sim-clone"
        assert a.evidence["devices"] == [GOOD, OTHER]

    def test_device_swap_back_after_window_is_not_alternation(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, imei=GOOD))
        d.observe(ev(60, imei=OTHER))
        assert d.observe(ev(60 + 25 * H, imei=GOOD)) == []

    def test_repeated_sync_failures(self) -> None:
        d = FraudDetector()
        assert d.observe(ev(0, "auth-sync-failure")) == []
        assert d.observe(ev(H, "auth-sync-failure")) == []
        [a] = d.observe(ev(2 * H, "auth-sync-failure"))
        assert a.evidence["observed"] == 3
        assert a.evidence["threshold"] == 3
        assert a.at == 0

    def test_sync_failures_spread_out_are_benign(self) -> None:
        d = FraudDetector()
        for day in range(5):
            assert d.observe(ev(day * 25 * H, "auth-sync-failure")) == []

    def test_concurrent_sessions_from_two_devices(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, "session-start", session="a", imei=GOOD, plmn="26201"))
        d.observe(ev(600, "session-update", session="a"))
        [a] = d.observe(ev(900, "session-start", session="b", imei=OTHER, plmn="26201"))
        assert a.kind == "sim-clone"
        assert a.evidence["feature"] == "concurrent_sessions"

    def test_lost_stop_of_the_same_device_is_not_concurrency(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, "session-start", session="a", imei=GOOD, plmn="26201"))
        assert d.observe(ev(60, "session-start", session="b", imei=GOOD, plmn="26201")) == []

    def test_stopped_or_stale_sessions_do_not_count(self) -> None:
        d = FraudDetector()
        d.observe(ev(0, "session-start", session="a", imei=GOOD, plmn="26201"))
        d.observe(ev(10, "session-stop", session="a"))
        assert d.observe(ev(20, "session-start", session="b", imei=OTHER, plmn="26201")) == []
        d2 = FraudDetector()
        d2.observe(ev(0, "session-start", session="a", imei=GOOD, plmn="26201"))
        assert d2.observe(ev(3 * H, "session-start", session="b", imei=OTHER, plmn="26201")) == []


class TestEquipment:
    def test_luhn_invalid_imei(self) -> None:
        bad = GOOD[:-1] + str((int(GOOD[-1]) + 1) % 10)
        [a] = FraudDetector().observe(ev(0, imei=bad))
        assert a.kind == "equipment"
        assert a.evidence["reason"] == "check-digit"

    @pytest.mark.parametrize(("imei", "reason"), [("12345", "length"), ("35328611x234567", "non-digit"),
                                                  ("3532861112345699", "svn-reserved")])
    def test_malformed(self, imei: str, reason: str) -> None:
        [a] = FraudDetector().observe(ev(0, imei=imei))
        assert a.evidence["reason"] == reason

    def test_valid_imeisv_and_imei_pass(self) -> None:
        d = FraudDetector()
        assert d.observe(ev(0, imei=GOOD)) == []
        assert d.observe(ev(1, imei=GOOD)) == []
        assert FraudDetector().observe(ev(0, imei=GOOD[:14] + "01")) == []

    def test_tac_not_matching_registered_model(self) -> None:
        d = FraudDetector(models={IMSI: frozenset({"35328611"})})
        assert d.observe(ev(0, imei=GOOD)) == []
        [a] = d.observe(ev(1, imei=THIRD))
        assert a.evidence["reason"] == "tac-mismatch"
        assert a.evidence["expected"] == ["35328611"]
        d.register_model("001010000000001", frozenset({"86123404"}))
        assert d.observe(ev(0, imei=THIRD, imsi="001010000000001")) == []

    def test_blocklist(self) -> None:
        d = FraudDetector(blocked={"86123404"})
        [a] = d.observe(ev(0, imei=THIRD))
        assert a.evidence["reason"] == "blocklisted"

    def test_churn(self) -> None:
        d = FraudDetector()
        out = []
        for i, imei in enumerate([GOOD, OTHER, THIRD, FOURTH]):
            out += d.observe(ev(i * 30 * H, imei=imei))
        assert kinds(out) == ["equipment"]
        assert out[0].evidence["feature"] == "imei_churn"
        assert out[0].evidence["observed"] == 4

    def test_churn_outside_window_is_benign(self) -> None:
        d = FraudDetector()
        for i, imei in enumerate([GOOD, OTHER, THIRD, FOURTH]):
            assert d.observe(ev(i * 4 * 86400.0, imei=imei)) == []


def test_alert_json_and_counters() -> None:
    d = FraudDetector()
    d.observe(ev(0, plmn="26201", tenant="acme"))
    [a] = d.observe(ev(60, plmn="50501", tenant="acme"))
    doc = a.to_json()
    assert doc["kind"] == "impossible-travel"
    assert doc["tenant"] == "acme"
    assert doc["at"].endswith("Z")
    assert "km/h" in doc["summary"]
    assert len(d) == 1
    assert d.events == 2
    assert d.alerts == 1
    assert "sims=1" in repr(d)
    assert d.observe_many([ev(61, plmn="50501")]) == []


def test_a_sequence_number_beyond_the_home_auc_is_a_clone_at_once() -> None:
    det = FraudDetector()
    [alert] = det.observe(ev(100.0, "auth-sqn-ahead"))
    assert ("sim-clone", "sqn_out_of_window") == (alert.kind, alert.evidence["feature"])
    assert [] == det.observe(ev(200.0, "auth-sqn-ahead"))  # once per cooldown
    assert "auth-sqn-ahead" == SimEvent.from_json(ev(1.0, "auth-sqn-ahead").to_json()).kind


def test_usage_of_a_suspended_sim() -> None:
    det = FraudDetector()
    det.suspended = lambda imsi: imsi == IMSI
    assert [] == det.observe(ev(1.0, "auth"))
    assert [] == det.observe(ev(2.0, "session-stop", session="s"))
    [alert] = det.observe(ev(3.0, "session-start", session="s2", plmn="26201"))
    assert ("usage-fraud", "used_while_suspended") == (alert.kind, alert.evidence["feature"])


def test_a_day_far_over_the_sims_own_volume_baseline_is_usage_fraud() -> None:
    """Five days of about 2 MB, a day of twice that (no alert), then 400 MB in a day."""
    det = FraudDetector()
    day = 86_400.0
    alerts = []
    for n in range(6):
        total = 2_000_000 if n < 5 else 4_000_000
        alerts += det.observe(ev(n * day + 100.0, "session-start", session=f"s{n}"))
        alerts += det.observe(ev(n * day + 3_600.0, "session-update", session=f"s{n}",
                                 octets=total // 2))
        alerts += det.observe(ev(n * day + 7_200.0, "session-stop", session=f"s{n}",
                                 octets=total))
    assert [] == alerts
    found = det.observe(ev(6 * day + 100.0, "session-update", session="s6",
                           octets=400_000_000))
    assert [("usage-fraud", "daily_volume")] == [(a.kind, a.evidence["feature"]) for a in found]
    assert 6 == found[0].evidence["days_of_history"]
    # later records of the same day and session do not alert again
    assert [] == det.observe(ev(6 * day + 200.0, "session-update", session="s6",
                                octets=500_000_000))


def test_volume_needs_history_and_counts_each_octet_once() -> None:
    det = FraudDetector()
    # a new SIM's first heavy day is not compared with anything
    assert [] == det.observe(ev(100.0, "session-update", session="a", octets=900_000_000))
    # cumulative counters: the same total twice is no new traffic
    again = SimEvent.from_json(ev(200.0, "session-update", session="a",
                                  octets=900_000_000).to_json())
    assert 900_000_000 == again.octets
    assert [] == det.observe(again)
    with pytest.raises(InvalidInput):
        SimEvent.from_json({"at": 1.0, "imsi": IMSI, "kind": "flow", "octets": "many"})
    with pytest.raises(InvalidInput):
        ev(1.0, "flow", octets=-1)
