"""The engine end to end: address mapping, inline decisions, ingestion, actions, audit."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.alerts import MemorySink, MqttSink, WebhookSink
from simtrust.domain import DeviceContext, FlowRecord
from simtrust.errors import Conflict, NotFound
from simtrust.policy import (
    ActionDispatcher,
    AddressMap,
    AddressPoolExhausted,
    PolicyEngine,
    PolicySet,
    RecordingRemoveAction,
    StaticDirectory,
    policy_from_dict,
)

T = "acme"
IMSI = "001010000000001"


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def append(self, **fields: Any) -> object:
        with self.lock:
            self.events.append(fields)
        return fields

    def actions(self) -> list[str]:
        return [e["action"] for e in self.events]


def make_engine(*rules: dict[str, Any], sinks: list[Any] | None = None) -> tuple[
        PolicyEngine, FakeAudit, RecordingRemoveAction, AddressMap]:
    policy = policy_from_dict({"tenant_id": T, "scope": "group:meters", "rules": list(rules)})
    addresses = AddressMap()
    addresses.add_pool("iot.acme", "10.64.0.0/29")
    addresses.attach(IMSI, "iot.acme")
    directory = StaticDirectory([DeviceContext(IMSI, T, apn="iot.acme", group="meters")])
    audit = FakeAudit()
    remover = RecordingRemoveAction()
    dispatcher = ActionDispatcher(audit, sinks=sinks or [], removers=[remover])
    engine = PolicyEngine(PolicySet([policy]), addresses, directory, dispatcher,
                          clock=lambda: 1_700_000_000.0)
    return engine, audit, remover, addresses


ALLOW_HTTPS = {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"], "ports": [443]}]}


def test_address_map_pools_static_and_release() -> None:
    am = AddressMap()
    am.add_pool("a", "10.0.0.0/30")  # two hosts
    am.assign_static("a", "001010000000009", "10.0.0.2")
    assert "10.0.0.1" == am.attach("001010000000001", "a")
    assert "10.0.0.2" == am.attach("001010000000009", "a")
    with pytest.raises(AddressPoolExhausted):
        am.attach("001010000000002", "a")
    assert "001010000000001" == am.lookup("10.0.0.1")
    assert "001010000000001" == am.lookup("10.0.0.1", apn="a")
    assert am.lookup("10.0.0.1", apn="b") is None
    am.detach("001010000000001")
    assert am.lookup("10.0.0.1") is None
    assert "10.0.0.1" == am.attach("001010000000002", "a")
    with pytest.raises(NotFound):
        am.attach("001010000000003", "nopool")
    am.attach("001010000000004", "b", "10.0.0.2")  # same private address, other APN
    am.add_pool("c", "10.1.0.0/30")
    am.attach("001010000000006", "c", "10.1.0.1")  # explicit address leaves the pool
    assert "10.1.0.2" == am.attach("001010000000007", "c")
    with pytest.raises(Conflict):
        am.attach("001010000000005", "b", "10.0.0.2")


def test_inline_decide_by_address_and_unknown_device() -> None:
    engine, audit, _, addresses = make_engine(ALLOW_HTTPS)
    src = addresses.address_of(IMSI)
    assert engine.decide(src_addr=src, dst_addr="192.0.2.5", dst_port=443, protocol=6).allowed
    d = engine.decide(src_addr=src, dst_addr="192.0.2.5", dst_port=23, protocol=6)
    assert (False, "destination") == (d.allowed, d.reason)
    unknown = engine.decide(src_addr="10.99.0.1", dst_addr="192.0.2.5", dst_port=443,
                            protocol=6)
    assert (False, "unknown-device") == (unknown.allowed, unknown.reason)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    assert ["policy.violation", "policy.block"] == audit.actions()
    violation = audit.events[0]
    assert f"imsi:{IMSI}" == violation["subject"]
    assert T == violation["tenant_id"]
    assert "destination" == violation["reason"]


def test_repeated_violations_are_acted_on_once_and_counted() -> None:
    engine, audit, _, addresses = make_engine(ALLOW_HTTPS)
    src = addresses.address_of(IMSI)
    for _ in range(5):
        engine.decide(src_addr=src, dst_addr="203.0.113.9", dst_port=23, protocol=6)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    assert 1 == audit.actions().count("policy.violation")
    (count,) = engine.dispatcher.violation_counts().values()
    assert 5 == count


def test_a_scanner_is_audited_per_rule_within_a_budget() -> None:
    engine, audit, _, addresses = make_engine(ALLOW_HTTPS)
    src = addresses.address_of(IMSI)
    for i in range(200):
        engine.decide(src_addr=src, dst_addr=f"198.51.100.{i}", dst_port=23, protocol=6)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    assert 180 == engine.dispatcher.suppressed
    violations = [e for e in audit.events if e["action"] == "policy.violation"]
    assert 21 == len(violations), "20 acted on, then one summary of the rest"
    summary = violations[-1]
    assert ("info", 200, 180) == (summary["outcome"], summary["details"]["distinct_violations"],
                                  summary["details"]["not_acted_on"])
    assert 200 == len(engine.dispatcher.violation_counts())


def test_remove_cuts_the_device_off_and_calls_the_remover() -> None:
    scan_guard = {"kind": "destination", "allow": [{"cidrs": ["192.0.2.0/24"]}],
                  "actions": ["block", "alert", "remove"]}
    sink = MemorySink()
    engine, audit, remover, addresses = make_engine(scan_guard, sinks=[sink])
    src = addresses.address_of(IMSI)
    assert engine.decide(src_addr=src, dst_addr="192.0.2.1", dst_port=80, protocol=6).allowed
    engine.decide(src_addr=src, dst_addr="198.51.100.1", dst_port=23, protocol=6)
    after = engine.decide(src_addr=src, dst_addr="192.0.2.1", dst_port=80, protocol=6)
    assert (False, "removed") == (after.allowed, after.reason)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    assert [IMSI] == [imsi for imsi, _ in remover.removed]
    assert 1 == len(sink.alerts)
    assert "destination" == sink.alerts[0].violation.kind
    assert {"policy.violation", "policy.block", "policy.alert", "policy.remove"} == set(
        audit.actions())
    engine.restore(IMSI)
    assert engine.decide(src_addr=src, dst_addr="192.0.2.1", dst_port=80, protocol=6).allowed


def test_ingest_maps_both_directions_and_counts_volume() -> None:
    cap = {"kind": "volume", "period": "hour", "max_bytes": 5000}
    engine, _audit, _, addresses = make_engine(ALLOW_HTTPS, cap)
    dev = addresses.address_of(IMSI)
    assert dev is not None
    t = 1_700_000_000.0
    up = FlowRecord(t, t + 1, dev, "192.0.2.5", 40000, 443, 6, 10, 3000)
    down = FlowRecord(t, t + 1, "192.0.2.5", dev, 443, 40000, 6, 10, 3000)
    stray = FlowRecord(t, t + 1, "198.51.100.1", "198.51.100.2", 1, 2, 17, 1, 10)
    verdicts = engine.ingest([up, down, stray])
    assert [(IMSI, True, True), (IMSI, False, True)] == [
        (v.imsi, v.uplink, v.decision.allowed) for v in verdicts]  # a volume cap only alerts
    assert [] == list(verdicts[0].decision.violations)
    assert ["volume"] == [v.kind for v in verdicts[1].decision.violations]
    assert 1 == engine.unmapped


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_webhook_alert_is_posted() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        rule = {**ALLOW_HTTPS, "actions": ["alert"]}
        engine, audit, _, addresses = make_engine(rule, sinks=[WebhookSink(url)])
        engine.decide(src_addr=addresses.address_of(IMSI), dst_addr="203.0.113.1",
                      dst_port=443, protocol=6)
        assert engine.dispatcher is not None
        engine.dispatcher.flush()
    finally:
        server.shutdown()
    assert 1 == len(_Hook.received)
    assert IMSI == _Hook.received[0]["imsi"]
    assert "203.0.113.1" == _Hook.received[0]["flow"]["dst"]
    alert_audits = [e for e in audit.events if e["action"] == "policy.alert"]
    assert ["success"] == [e["outcome"] for e in alert_audits]


def test_unreachable_broker_fails_delivery_not_construction() -> None:
    sink = MqttSink("mqtt://127.0.0.1:9", timeout=0.5)
    engine, audit, _, addresses = make_engine({**ALLOW_HTTPS, "actions": ["alert"]},
                                              sinks=[sink])
    engine.decide(src_addr=addresses.address_of(IMSI), dst_addr="203.0.113.1", dst_port=443,
                  protocol=6)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    (event,) = [e for e in audit.events if e["action"] == "policy.alert"]
    assert ("failure", True) == (event["outcome"], "unreachable" in event["reason"])


def test_unreachable_webhook_is_audited_as_failure() -> None:
    rule = {**ALLOW_HTTPS, "actions": ["alert"]}
    engine, audit, _, addresses = make_engine(
        rule, sinks=[WebhookSink("http://127.0.0.1:9/none", timeout=0.5)])
    engine.decide(src_addr=addresses.address_of(IMSI), dst_addr="203.0.113.1", dst_port=443,
                  protocol=6)
    assert engine.dispatcher is not None
    engine.dispatcher.flush()
    assert ["failure"] == [e["outcome"] for e in audit.events if e["action"] == "policy.alert"]


@pytest.mark.mqtt
def test_mqtt_alert_reaches_the_real_broker(require_service: Any) -> None:
    require_service("mqtt")
    prefix = f"simtrust-test/{uuid.uuid4().hex[:8]}"
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    arrived = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_subscribe = lambda *a: subscribed.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got.append(msg)
        arrived.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    sink = MqttSink("mqtt://127.0.0.1:1883", prefix=prefix)
    try:
        sub.subscribe(f"{prefix}/#", qos=1)
        assert subscribed.wait(5)
        engine, _audit, _, addresses = make_engine({**ALLOW_HTTPS, "actions": ["alert"]},
                                                   sinks=[sink])
        engine.decide(src_addr=addresses.address_of(IMSI), dst_addr="203.0.113.1",
                      dst_port=443, protocol=6)
        assert arrived.wait(5)
    finally:
        sink.close()
        sub.loop_stop()
        sub.disconnect()
    assert f"{prefix}/{T}/{IMSI}" == got[0].topic
    assert "destination" == json.loads(got[0].payload)["violation"]["kind"]
