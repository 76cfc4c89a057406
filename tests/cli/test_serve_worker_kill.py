"""``simtrust serve`` worker tier: SIGINT stops everything, kill -9 of workers loses nothing.

A real ``simtrust serve --workers 2`` is started. SIGINT (Ctrl-C) to the master
leaves no worker behind and frees the port. Then, under attach-decision
traffic from several clients, both API workers are killed with SIGKILL: every
decision a client had been answered is in the audit trail (acknowledged means
durable, whichever process answered it), the audit chain verifies, and the
master replaces the killed workers, which answer again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imei, decision_history
from tests.cli.test_serve_workers import _alive, _children, _wait_until
from tests.subscriber.conftest import TENANT, imsi
from tests.subscriber.test_attach_durability import SIMS, _free_port, _prepare

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc needed")

CLIENTS = 6
#: Acknowledged decisions to wait for before the workers are killed (clients keep sending).
BEFORE_KILL = 150


def _start(home: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"], env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(up, "the API")
    _wait_until(lambda: len(_children(proc.pid)) == 2, "two workers")
    return proc, base


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_sigint_stops_master_and_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _prepare(home)
    port = _free_port()
    proc, _ = _start(home, port, tmp_path / "serve.log")
    try:
        workers = _children(proc.pid)
        assert 2 == len(workers)
        proc.send_signal(signal.SIGINT)
        assert 0 == proc.wait(timeout=60)
        assert [] == [pid for pid in workers if _alive(pid)]
        assert _port_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.slow
def test_acknowledged_decisions_survive_sigkill_of_the_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = _prepare(home)
    proc, base = _start(home, _free_port(), tmp_path / "serve.log")
    acknowledged: set[tuple[str, str]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        k = 0
        while not stop.is_set():
            # A new connection every few requests, so both workers take traffic.
            with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                for _ in range(5):
                    k += 1
                    pair = (imsi(k % SIMS).value,
                            Imei.from_tac_snr(f"3577{c:04d}", f"{k:06d}").value)
                    try:
                        response = http.post("/v1/attach/decisions", json={
                            "imsi": pair[0], "imei": pair[1], "serving_plmn": "00101"})
                    except httpx.HTTPError:
                        return  # its worker is gone: this request was never answered
                    assert 200 == response.status_code, response.text
                    assert response.json()["allowed"]
                    with lock:
                        acknowledged.add(pair)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    try:
        workers = _children(proc.pid)
        for thread in threads:
            thread.start()
        _wait_until(lambda: len(acknowledged) >= BEFORE_KILL or not any(
            t.is_alive() for t in threads), "acknowledged decisions")
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert len(acknowledged) >= BEFORE_KILL
        # The master replaces both workers and the tier answers again.
        _wait_until(lambda: len([p for p in _children(proc.pid)
                                 if p not in workers and _alive(p)]) == 2, "new workers")
        again = httpx.post(base + "/v1/attach/decisions", timeout=30,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"imsi": imsi(0).value,
                                 "imei": Imei.from_tac_snr("35779999", "000001").value,
                                 "serving_plmn": "00101"})
        assert 200 == again.status_code
        proc.send_signal(signal.SIGTERM)
        assert 0 == proc.wait(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        stored = {(row["imsi"], row["imei"]) for row in decision_history(
            rt.audit, tenant_id=TENANT, limit=1_000_000)}
        assert [] == rt.audit.verify()
    finally:
        rt.close()
    lost = acknowledged - stored
    print(f"workers killed: acknowledged={len(acknowledged)} lost={len(lost)}")
    assert set() == lost
