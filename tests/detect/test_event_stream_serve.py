"""A real ``simtrust serve --workers 2``: attach decisions answered by the API worker
processes reach the serving process's fraud detectors.

The master answers no HTTP itself, so an alert for decisions made through the
API can only come from events the workers forwarded through the store's
shared event stream. A SIM attaches in Germany and, a moment later, in the
United States, over separate connections: one ``impossible-travel`` alert (not
one per worker) is in the audit trail, the fraud status of the serving process
counts the forwarded events, and a SIM seen by no worker raises nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simtrust.subscriber import Imei
from tests.cli.test_serve_workers import _children, _wait_until
from tests.subscriber.conftest import imsi
from tests.subscriber.test_attach_durability import _free_port, _prepare

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc needed")


def test_worker_attach_decisions_reach_the_serving_detectors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = _prepare(home)
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "2"], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_until(up, "the API", bound=300)
        _wait_until(lambda: len(_children(proc.pid)) == 2, "two workers", bound=300)
        sim, device = imsi(1).value, Imei.from_tac_snr("35123456", "000001").value
        for plmn in ("26201", "31041"):  # Germany, then the United States
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                answer = http.post("/v1/attach/decisions",
                                   json={"imsi": sim, "imei": device, "serving_plmn": plmn})
                assert 200 == answer.status_code, answer.text

        def alerts() -> list[dict[str, object]]:
            response = httpx.get(base + "/v1/fraud/alerts", headers=headers, timeout=30,
                                 params={"kind": "impossible-travel"})
            assert 200 == response.status_code, response.text
            found: list[dict[str, object]] = response.json()["alerts"]
            return found

        _wait_until(lambda: bool(alerts()), "the impossible-travel alert", bound=300)

        def counted() -> bool:
            status = httpx.get(base + "/v1/fraud/status", headers=headers, timeout=30).json()
            serving = status["serving"] or {}
            stream = serving.get("workers_stream") or {}
            return int(stream.get("applied", 0)) >= 2

        _wait_until(counted, "the serving process's counters", bound=300)
        found = alerts()
        assert 1 == len(found), found
        assert sim in str(found[0])
        # the other SIMs were never seen: nothing about them
        other = httpx.get(base + "/v1/fraud/alerts", headers=headers, timeout=30,
                          params={"imsi": imsi(2).value}).json()["alerts"]
        assert [] == other
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
