"""Alert sinks: the audit log records alerts; MQTT delivers them on
``simtrust/alerts/<tenant>/<imsi>`` through the real broker."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.alerts import (
    AlertDeliveryError,
    AuditSink,
    FanoutSink,
    MemorySink,
    MqttSink,
    alert_topic,
)
from simtrust.detect import Alert, AttachEvent, DetectionService, DeviceRef
from simtrust.errors import ConfigError
from simtrust.flows import decode_packet, meter_packets
from simtrust.runtime import Runtime
from simtrust.testing.detect import attacks

T0 = 1_700_000_000.0


def _alert(imsi: str = "001010000000001", tenant: str = "acme") -> Alert:
    return Alert(
        "scan",
        imsi,
        T0,
        T0 + 2,
        "unanswered SYNs to 40 hosts",
        {"feature": "scan_score_60s", "observed": 80.0},
        "camera",
        tenant,
    )


def test_topic_is_sanitised() -> None:
    assert alert_topic(_alert()) == "simtrust/alerts/acme/001010000000001"
    assert alert_topic(_alert(tenant="a/b#")) == "simtrust/alerts/a_b_/001010000000001"
    assert alert_topic(_alert(tenant="")) == "simtrust/alerts/-/001010000000001"


def test_audit_sink_appends_an_event(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    try:
        AuditSink(rt.audit).send(_alert(tenant=""))
        events = rt.db.query("SELECT action, subject, outcome FROM audit_events")
        assert ("detect.alert.scan", "sim:001010000000001", "alert") in [tuple(e) for e in events]
    finally:
        rt.close()


def test_fanout_reaches_every_sink() -> None:
    a, b = MemorySink(), MemorySink()
    FanoutSink([a, b]).send(_alert())
    assert len(a.alerts) == len(b.alerts) == 1


def test_bad_url_and_unreachable_broker() -> None:
    with pytest.raises(ConfigError):
        MqttSink("http://127.0.0.1:1883")
    sink = MqttSink("mqtt://127.0.0.1:1")
    with pytest.raises(AlertDeliveryError):
        sink.send(_alert())


@pytest.mark.mqtt
def test_mqtt_delivers_alert_json(require_service: Callable[[str], None]) -> None:
    require_service("mqtt")
    tenant = f"t{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, dict[str, object]]] = []
    ready, done = threading.Event(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_subscribe = lambda *_a: ready.set()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, json.loads(msg.payload)))
        done.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"simtrust/alerts/{tenant}/#", qos=1)
    sub.loop_start()
    try:
        assert ready.wait(5)
        sink = MqttSink("mqtt://127.0.0.1:1883")
        try:
            sink.send(_alert(tenant=tenant))
        finally:
            sink.close()
        assert done.wait(5), "alert not delivered"
    finally:
        sub.loop_stop()
        sub.disconnect()
    topic, payload = got[0]
    assert topic == f"simtrust/alerts/{tenant}/001010000000001"
    assert payload["kind"] == "scan"
    assert payload["evidence"] == {"feature": "scan_score_60s", "observed": 80.0}
    assert payload["at"] == "2023-11-14T22:13:20.000Z"


class _Broken:
    name = "broken"

    def send(self, alert: Alert) -> None:
        raise AlertDeliveryError("receiver down")

    def close(self) -> None:
        pass


def test_service_delivers_and_survives_a_failing_sink() -> None:
    memory: MemorySink[Alert] = MemorySink()
    service = DetectionService([_Broken(), memory], {"192.0.2.5": DeviceRef("1", "g", "acme")})
    traffic = attacks.mirai_scan("192.0.2.5", T0, duration=20, rate=50)
    cap = meter_packets(decode_packet(t, 1, f) for t, f in traffic.frames)
    alerts = service.observe_many(cap.records)
    assert [a.kind for a in alerts] == ["scan"]
    assert memory.alerts == alerts
    assert (service.delivered, service.failed) == (1, 1)


def test_runtime_service_writes_the_audit_log(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    try:
        service = rt.detect
        assert rt.detect is service
        service.observe_attach(AttachEvent(T0, "001010000000001", "356938035643809"))
        alerts = service.observe_attach(AttachEvent(T0 + 9e5, "001010000000001", "490154203237518"))
        assert [a.kind for a in alerts] == ["sim-swap"]
        actions = [r[0] for r in rt.db.query("SELECT action FROM audit_events")]
        assert "detect.alert.sim-swap" in actions
    finally:
        rt.close()
