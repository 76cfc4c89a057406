"""SIM-swap alerts reach a real webhook (HTTP server on 127.0.0.1) and the MQTT broker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.alerts import AlertDispatcher, MqttSink, WebhookSink
from simtrust.runtime import Runtime
from simtrust.subscriber import AttachPolicy, BindingMode, Plmn, SwapAlert, build_services

from .conftest import TENANT, imei, imsi, spec


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail_first: ClassVar[int] = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()


def alert(**kwargs: Any) -> SwapAlert:
    base: dict[str, Any] = {
        "kind": "sim-in-new-device", "tenant_id": TENANT, "imsi": imsi(1).value,
        "iccid": "8988", "imei": imei(2).value, "bound_to": [imei(1).value],
        "serving_plmn": "00101", "action": "deny", "reason": "sim-in-new-device",
        "at": "2026-01-01T00:00:00+00:00",
    }
    base.update(kwargs)
    return SwapAlert(**base)  # type: ignore[arg-type]


def test_webhook_retries_then_delivers(webhook: str) -> None:
    _Hook.fail_first = 1
    sink = WebhookSink(timeout=2)
    try:
        sink.send(alert(webhook_url=webhook))
    finally:
        sink.close()
    assert 1 == len(_Hook.received)
    assert "simtrust.attach.sim-swap" == _Hook.received[0]["type"]


def test_swap_alert_end_to_end(webhook: str, sqlite_runtime: Runtime,
                               require_service: Any) -> None:
    require_service("mqtt")

    tenant = f"t{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.append((msg.topic, json.loads(msg.payload)))
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"simtrust/alerts/{tenant}/#", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        sqlite_runtime.tenants.create_tenant(tenant, "Alerts Ltd")
        sinks = [WebhookSink(timeout=2), MqttSink("mqtt://127.0.0.1:1883")]
        services = build_services(sqlite_runtime.db, sqlite_runtime.keyring, sqlite_runtime.audit, sqlite_runtime.clock, sinks=sinks)
        try:
            services.inventory.set_policy(
                AttachPolicy(tenant, binding_mode=BindingMode.EXACT_PAIR, webhook_url=webhook),
                actor="test",
            )
            services.inventory.add_sim(tenant, spec(1), actor="test")
            home = Plmn("001", "01")
            assert services.attach.decide(imsi(1), imei(1), home).allowed
            swapped = services.attach.decide(imsi(1), imei(2), home)
            assert (False, "sim-swap") == (swapped.allowed, swapped.reason)
            assert services.alerts.flush(10)
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (2, 0) == (services.alerts.delivered, services.alerts.failed)
        finally:
            services.close()
    finally:
        client.loop_stop()
        client.disconnect()
    assert [f"simtrust/alerts/{tenant}/{imsi(1)}"] == [topic for topic, _ in got]
    assert [imei(1).value] == got[0][1]["bound_to"]
    assert 1 == len(_Hook.received)
    assert (tenant, imei(2).value, "deny") == (
        _Hook.received[0]["tenant_id"], _Hook.received[0]["imei"], _Hook.received[0]["action"])


def test_failed_sink_is_counted_not_raised() -> None:
    class Broken(WebhookSink):
        def send(self, alert: SwapAlert) -> None:
            raise OSError("down")

    dispatcher = AlertDispatcher([Broken()])
    dispatcher.submit(alert())
    assert dispatcher.flush(5)
    assert (0, 1) == (dispatcher.delivered, dispatcher.failed)
    dispatcher.close()
