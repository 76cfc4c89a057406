"""Acknowledged means durable: every attach decision answered by a real
`simtrust serve` process is in the audit trail after the process is killed
with SIGKILL while clients are still sending (five rounds, none lost)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import (
    AttachPolicy,
    BindingMode,
    Imei,
    UnknownDevice,
    build_services,
    decision_history,
)
from tests.subscriber.conftest import TENANT, imsi, spec

ROUNDS = 5
SIMS = 8
CLIENTS = 6
#: Acknowledged decisions to wait for in a round before the kill (clients keep sending).
PER_ROUND = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(condition: object, what: str, bound: float = 300.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _prepare(home: Path) -> str:
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(TENANT, "Acme")
        key = rt.tenants.create_key("operator-admin", "durability")
        services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        services.inventory.set_policy(
            AttachPolicy(TENANT, binding_mode=BindingMode.NONE,
                         unknown_device=UnknownDevice.ALLOW), actor="test")
        for n in range(SIMS):
            services.inventory.add_sim(TENANT, spec(n), actor="test")
        services.close()
        return key.secret
    finally:
        rt.close()


def _round(home: Path, key: str, round_no: int) -> set[tuple[str, str]]:
    """Run a server, collect acknowledged (IMSI, IMEI) pairs, SIGKILL it mid-traffic."""
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    log = (home / f"server-{round_no}.log").open("w+b")
    server = subprocess.Popen(
        [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    acknowledged: set[tuple[str, str]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def up() -> bool:
        assert server.poll() is None, "server exited before it listened"
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def client(c: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            k = 0
            while not stop.is_set():
                k += 1
                pair = (imsi(k % SIMS).value,
                        Imei.from_tac_snr(f"35{round_no:02d}{c:04d}", f"{k:06d}").value)
                try:
                    response = http.post("/v1/attach/decisions", json={
                        "imsi": pair[0], "imei": pair[1], "serving_plmn": "00101"})
                except httpx.HTTPError:
                    return  # the server is gone: this request was never answered
                assert 200 == response.status_code, response.text
                assert response.json()["allowed"]
                with lock:
                    acknowledged.add(pair)

    try:
        _wait_until(up, "the server to listen")
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: len(acknowledged) >= PER_ROUND or not any(
            t.is_alive() for t in threads), "acknowledged decisions")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        log.close()
    assert -signal.SIGKILL == server.returncode
    with lock:
        return set(acknowledged)


def test_acknowledged_attach_decisions_survive_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = _prepare(home)
    acknowledged: set[tuple[str, str]] = set()
    lost: set[tuple[str, str]] = set()
    for round_no in range(ROUNDS):
        answered = _round(home, key, round_no)
        assert len(answered) >= PER_ROUND
        rt = Runtime.open(load_settings(env={}, home=home))
        try:
            stored = {(row["imsi"], row["imei"]) for row in decision_history(
                rt.audit, tenant_id=TENANT, limit=1_000_000)}
            assert [] == rt.audit.verify()
        finally:
            rt.close()
        acknowledged |= answered
        lost |= answered - stored
    print(f"kill -9 rounds={ROUNDS} acknowledged={len(acknowledged)} lost={len(lost)}")
    assert set() == lost
