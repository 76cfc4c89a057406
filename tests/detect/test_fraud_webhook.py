"""Fraud alerts reach the tenant's webhook (the policy's alert target) through the
runtime's detection service, off the caller's thread, as well as the audit log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from simtrust.detect import SimEvent
from simtrust.domain import imsi_digits
from simtrust.runtime import Runtime


class _Hook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fraud"
    finally:
        server.shutdown()


def test_a_fraud_alert_goes_to_the_tenants_webhook(hook: str, tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        rt.tenants.create_tenant("acme", "Acme")
        rt.policy.store.set_webhook("acme", hook, actor="test")
        rt.detect.observe_sim(SimEvent(1_000.0, imsi_digits("001010000000001"),
                                       "auth-sqn-ahead", tenant="acme"))
        rt.detect.observe_sim(SimEvent(1_000.0, imsi_digits("001010000000002"),
                                       "auth-sqn-ahead"))  # no tenant: no webhook
        deadline = time.monotonic() + 20
        while not _Hook.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [("sim-clone", "001010000000001", "acme")] == [
            (b["kind"], b["imsi"], b["tenant"]) for b in _Hook.bodies]
        assert 2 == len(rt.fraud_cases.alerts(kind="sim-clone"))
    finally:
        rt.close()
