"""The one alert stack: bounded webhook retries, every package's alert through every sink,
and the composition root that wires it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from simtrust.alerts import (
    AlertDeliveryError,
    AlertDispatcher,
    AuditSink,
    MemorySink,
    WebhookSink,
    alert_topic,
)
from simtrust.detect import Alert
from simtrust.errors import ConfigError
from simtrust.policy import PolicyAlert, Violation, build_policy_service
from simtrust.runtime import Runtime
from simtrust.subscriber import SwapAlert


class _Hook(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        status = type(self).answers.pop(0) if type(self).answers else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.answers, _Hook.bodies = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()


def _detect_alert(tenant: str = "acme") -> Alert:
    return Alert("scan", "001010000000001", 1.0, 2.0, "scan of 40 hosts", {"x": 1}, "g", tenant)


def _swap_alert(url: str | None = None) -> SwapAlert:
    return SwapAlert("sim-in-new-device", "acme", "001010000000001", "8949000000000000001",
                     "356938035643809", ["490154203237518"], "00101", "allow-and-alert",
                     "sim-swap", "2026-01-01T00:00:00Z", webhook_url=url)


def _policy_alert() -> PolicyAlert:
    v = Violation("destination", "r1", "acme/tenant", 1, "203.0.113.1:23 not allowed", (), "k")
    return PolicyAlert("001010000000001", "acme", 1.0, v, {"dst": "203.0.113.1"})


def test_webhook_retries_a_bounded_number_of_times(hook: str) -> None:
    _Hook.answers = [503, 502]
    sink = WebhookSink(hook, attempts=3, backoff=0.0, timeout=5.0)
    sink.send(_detect_alert())
    assert 3 == len(_Hook.bodies)  # two refusals, then delivered
    _Hook.answers = [500, 500, 500, 500]
    with pytest.raises(AlertDeliveryError, match="HTTP 500"):
        sink.send(_detect_alert())
    assert 6 == len(_Hook.bodies)  # gave up after three more attempts, not four
    sink.close()
    with pytest.raises(ConfigError):
        WebhookSink(hook, attempts=0)


def test_unreachable_webhook_fails_within_its_bounds() -> None:
    sink = WebhookSink("http://127.0.0.1:9/none", attempts=2, backoff=0.0, timeout=0.5)
    with pytest.raises(AlertDeliveryError, match="unreachable"):
        sink.send(_detect_alert())
    sink.close()


def test_every_package_alert_goes_through_the_same_sinks(hook: str, tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    try:
        sinks = [WebhookSink(hook, backoff=0.0), AuditSink(rt.audit)]
        for alert in (_detect_alert(), _swap_alert(), _policy_alert()):
            for sink in sinks:
                sink.send(alert)
        kinds = [b.get("kind") or b.get("type") for b in _Hook.bodies]
        assert ["scan", "sim-in-new-device", "policy-violation"] == kinds
        actions = [r[0] for r in rt.db.query("SELECT action FROM audit_events ORDER BY seq")]
        assert ["detect.alert.scan", "attach.alert.sim-in-new-device",
                "policy.alert.destination"] == actions
    finally:
        rt.close()


def test_the_alert_names_its_own_receiver_first(hook: str) -> None:
    sink = WebhookSink("http://127.0.0.1:9/never", lookup=lambda _t: "http://127.0.0.1:9/no")
    sink.send(_swap_alert(url=hook))
    assert 1 == len(_Hook.bodies)
    sink.close()


def test_topic_levels_are_sanitised() -> None:
    assert "simtrust/alerts/a_b_/001010000000001" == alert_topic(_detect_alert("a/b#"))
    assert "p/-/001010000000001" == alert_topic(_detect_alert(""), "p")


def test_dispatcher_counts_failures_and_keeps_delivering() -> None:
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> None:
            raise AlertDeliveryError("down")

        def close(self) -> None:
            pass

    memory: MemorySink[Alert] = MemorySink()
    dispatcher: AlertDispatcher[Alert] = AlertDispatcher([Broken(), memory])
    dispatcher.submit(_detect_alert())
    dispatcher.submit(_detect_alert())
    assert dispatcher.flush(10)
    assert (2, 2, 2) == (dispatcher.delivered, dispatcher.failed, len(memory.alerts))
    dispatcher.close()


def test_composition_root_installs_before_use_and_refuses_after(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path)
    try:
        assert not hasattr(rt, "extension")
        mine = build_policy_service(rt.db, rt.audit, rt.clock)
        rt.policy = mine
        assert rt.policy is mine
        assert rt.flows.policy is mine  # the pipeline is built on the installed service
        with pytest.raises(ConfigError):
            rt.policy = build_policy_service(rt.db, rt.audit, rt.clock)
        assert rt.subscriber is rt.subscriber
    finally:
        rt.close()
