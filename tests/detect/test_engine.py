"""The streaming detector: each detector fires on its behaviour, explains itself, and stays
quiet on normal traffic; baselines learn the same features the detectors watch."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.detect import Alert, AttachEvent, Baseline, Detector, DeviceRef, Thresholds
from simtrust.detect._addresses import GROUP as _GROUP
from simtrust.detect._addresses import LOCAL as _LOCAL
from simtrust.detect._addresses import UNICAST as _UNICAST
from simtrust.detect._addresses import classify as _classify
from simtrust.domain import PROTO_TCP, PROTO_UDP, FlowRecord
from simtrust.flows import decode_packet, learn_baselines, meter_packets, read_pcap, replay
from simtrust.testing.detect import attacks

DEV = "192.0.2.50"
REF = DeviceRef("001010000000050", "camera", "acme")
T0 = 1_700_000_000.0


def _run(det: Detector, traffic: attacks.AttackTraffic) -> list[tuple[float, Alert]]:
    cap = meter_packets(decode_packet(t, 1, f) for t, f in traffic.frames)
    return replay(det, cap)


def _required_evidence(alert: Alert) -> None:
    ev = alert.evidence
    for key in ("feature", "baseline", "observed", "expected"):
        assert key in ev, f"{alert.kind} evidence lacks {key}"


@pytest.mark.parametrize("rate", [160.0, 20.0])
def test_mirai_scan_is_detected_with_telnet_evidence(rate: float) -> None:
    alerts = _run(Detector({DEV: REF}), attacks.mirai_scan(DEV, T0, duration=60, rate=rate))
    scans = [a for _, a in alerts if a.kind == "scan"]
    assert len(scans) == 1, "one alert per scan episode (cooldown)"
    a = scans[0]
    _required_evidence(a)
    assert a.imsi == REF.imsi
    assert a.tenant == "acme"
    assert a.evidence["signature"] == "mirai-telnet-scan"
    assert a.evidence["telnet_share"] > 0.8
    assert a.evidence["observed"] >= a.evidence["threshold"]
    assert T0 <= a.at <= a.raised_at


@pytest.mark.parametrize(
    ("kind", "vector"),
    [
        ("udp", "udp-flood"),
        ("syn", "syn-flood"),
        ("ack", "ack-flood"),
        ("gre", "gre-flood"),
        ("http", "http-flood"),
        ("dns", "dns-flood"),
        ("flood", "udp-flood"),
    ],
)
def test_flood_vectors_are_detected_as_ddos(kind: str, vector: str) -> None:
    traffic = attacks.generate(kind, DEV, T0, params={"duration": 12.0})
    alerts = _run(Detector({DEV: REF}), traffic)
    ddos = [a for _, a in alerts if a.kind == "ddos"]
    assert ddos, f"{kind} flood not detected"
    assert ddos[0].evidence["target"] == traffic.target
    assert ddos[0].evidence["vector"] == vector
    _required_evidence(ddos[0])
    assert not [a for _, a in alerts if a.kind == "scan"]


def test_beacon_to_new_destination_is_detected_and_jitter_matters() -> None:
    alerts = _run(Detector({DEV: REF}), attacks.beacon(DEV, T0, duration=600, period=30))
    beacons = [a for _, a in alerts if a.kind == "beacon"]
    assert len(beacons) == 1
    ev = beacons[0].evidence
    assert ev["destination"] == attacks.C2_ADDRESS
    assert 27 <= ev["period_s"] <= 33
    assert ev["jitter_cv"] < 0.2
    noisy = _run(
        Detector({DEV: REF}), attacks.beacon(DEV, T0, duration=1200, period=30, jitter=0.9)
    )
    assert not [a for _, a in noisy if a.kind == "beacon"], "random contact is not a beacon"


def test_beacon_to_a_baseline_destination_is_normal() -> None:
    base = Baseline("cohort", "camera")
    base.add_destination(attacks.C2_ADDRESS)
    det = Detector({DEV: REF}, [base])
    alerts = _run(det, attacks.beacon(DEV, T0, duration=600, period=30))
    assert not [a for _, a in alerts if a.kind == "beacon"]


def test_benign_capture_raises_nothing_without_training(hue_capture: Path) -> None:
    cap = read_pcap([hue_capture])
    talker = max(
        {r.src_addr for r in cap.records},
        key=lambda a: sum(r.packets for r in cap.records if r.src_addr == a),
    )
    det = Detector({talker: REF})
    assert replay(det, cap) == []


def test_learnt_baseline_raises_thresholds_and_round_trips(hue_capture: Path) -> None:
    cap = read_pcap([hue_capture])
    talker = "10.10.10.6"
    baselines = learn_baselines([cap], {talker: REF})
    device = next(b for b in baselines if b.scope == "device")
    cohort = next(b for b in baselines if b.scope == "cohort")
    assert device.key == REF.imsi
    assert cohort.key == "camera"
    assert device.windows > 0
    assert device.features["dst_packets_10s"] > 0
    assert device.names, "DNS names of the destinations are part of the baseline"
    again = Baseline.from_json(device.to_json())
    assert again.to_json() == device.to_json()


def _flow(
    t: float,
    dst: str,
    octets: int = 600,
    packets: int = 6,
    dport: int = 443,
    flags: int = 0x1B,
    proto: int = PROTO_TCP,
) -> FlowRecord:
    return FlowRecord(t, t + 1.0, DEV, dst, 40000, dport, proto, packets, octets, flags)


def _trained(days: int = 8, hours: range = range(8, 18)) -> Baseline:
    det = Detector({DEV: REF}, learn=True)
    for d in range(days):
        for h in hours:
            for m in range(0, 60, 10):
                det.observe(_flow(T0 + d * 86400 + h * 3600 + m * 60, "198.51.100.20"))
    return next(b for b in det.baselines() if b.scope == "device")


def test_volume_anomaly_against_trained_baseline() -> None:
    base = _trained(days=1)
    det = Detector({DEV: REF}, [base])
    day = T0 + 86400 * 10 + 9 * 3600
    alerts = []
    for i in range(40):
        alerts += det.observe(_flow(day + i, "198.51.100.20", octets=200_000, packets=140))
    vol = [a for a in alerts if a.kind == "volume"]
    assert len(vol) == 1
    assert vol[0].evidence["baseline"] == f"device:{REF.imsi}"
    assert vol[0].evidence["observed"] >= vol[0].evidence["threshold"]


def test_time_of_day_needs_seven_days_and_fires_off_hours() -> None:
    short = Detector({DEV: REF}, [_trained(days=3)])
    night = T0 - (T0 % 86400) + 86400 * 20 + 3 * 3600
    assert not short.observe(_flow(night, "198.51.100.20"))
    det = Detector({DEV: REF}, [_trained(days=8)])
    alerts = det.observe(_flow(night, "198.51.100.20"))
    assert [a.kind for a in alerts] == ["time"]
    assert alerts[0].evidence["observed"] == 3
    day = night + 9 * 3600 - 3 * 3600 + 7200
    assert not det.observe(_flow(day, "198.51.100.20"))


def test_new_destination_needs_a_mature_baseline() -> None:
    mature = _trained(days=8)
    assert mature.windows >= Thresholds().destination_min_windows
    det = Detector({DEV: REF}, [mature])
    t = T0 - (T0 % 86400) + 86400 * 20 + 10 * 3600
    assert not det.observe(_flow(t, "198.51.100.20"))
    assert not det.observe(_flow(t + 1, "198.51.100.21")), "same /24 as the baseline"
    alerts = det.observe(_flow(t + 2, "203.0.113.99"))
    assert [a.kind for a in alerts] == ["destination"]
    assert alerts[0].evidence["observed"] == "203.0.113.99"
    immature = Detector({DEV: REF}, [_trained(days=1, hours=range(9, 10))])
    assert not immature.observe(_flow(t + 3, "203.0.113.99"))


def test_multicast_and_local_traffic_is_never_a_destination_or_scan() -> None:
    det = Detector({DEV: REF})
    alerts = []
    for i in range(200):
        alerts += det.observe(
            _flow(
                T0 + i * 0.1,
                "239.255.255.250",
                packets=1,
                octets=300,
                dport=1900,
                flags=0,
                proto=PROTO_UDP,
            )
        )
        alerts += det.observe(
            _flow(T0 + i * 0.1, f"10.1.{i}.1", packets=1, octets=60, flags=0, proto=PROTO_UDP)
        )
    assert alerts == []


def test_sim_in_new_device_and_clone_pattern() -> None:
    det = Detector()
    imsi = "001010000000077"
    assert det.observe_attach(AttachEvent(T0, imsi, "356938035643809")) == []
    assert det.observe_attach(AttachEvent(T0 + 60, imsi, "356938035643809")) == []
    swap = det.observe_attach(AttachEvent(T0 + 200_000, imsi, "490154203237518"))
    assert [a.kind for a in swap] == ["sim-swap"]
    ev = swap[0].evidence
    assert ev["pattern"] == "swap"
    assert ev["tac_changed"] is True
    assert ev["expected"] == ["356938035643809"]
    clone = det.observe_attach(AttachEvent(T0 + 200_100, imsi, "356938035643817"))
    assert clone[0].evidence["pattern"] == "clone-suspected"


def test_sim_swap_against_stored_baseline() -> None:
    base = Baseline("device", "001010000000078")
    base.imeis.add("356938035643809")
    det = Detector(baselines=[Baseline.from_json(base.to_json())])
    alerts = det.observe_attach(AttachEvent(T0, "001010000000078", "490154203237518"))
    assert alerts
    assert alerts[0].evidence["baseline"] == "device:001010000000078"


def test_flows_of_unknown_addresses_are_ignored_and_imsi_records_are_used() -> None:
    det = Detector({DEV: REF})
    assert det.observe(_flow(T0, "198.51.100.1")) == []
    rec = FlowRecord(
        T0, T0, "192.0.2.200", "198.18.0.1", 1, 23, PROTO_TCP, 1, 40, 0x02, imsi="001010000000099"
    )
    det.observe(rec)
    assert "001010000000099" in det._by_imsi


def test_assign_binds_a_pooled_address_at_attach() -> None:
    det = Detector()
    scan = attacks.mirai_scan("192.0.2.77", T0, duration=20, rate=50)
    det.assign("192.0.2.77", DeviceRef("001010000000123", "meter", "acme"))
    alerts = _run(det, scan)
    assert [a.imsi for _, a in alerts if a.kind == "scan"] == ["001010000000123"]


def test_flush_finalises_learning_windows() -> None:
    det = Detector({DEV: REF}, learn=True)
    det.observe(_flow(T0, "198.51.100.20", octets=5000))
    det.flush(T0 + 600)
    base = next(b for b in det.baselines() if b.scope == "device")
    assert base.windows == 1
    assert base.features["bytes_60s"] == 5000
    assert 443 in base.ports


def test_address_classes() -> None:

    assert _classify("239.255.255.250") == _GROUP
    assert _classify("10.10.10.255") == _GROUP
    assert _classify("ff02::fb") == _GROUP
    assert _classify("192.168.1.4") == _LOCAL
    assert _classify("100.64.3.1") == _LOCAL
    assert _classify("fe80::1") == _LOCAL
    assert _classify("198.51.100.7") == _UNICAST
    assert _classify("2001:db8::7") == _UNICAST
    assert _classify("not-an-address") == _LOCAL
