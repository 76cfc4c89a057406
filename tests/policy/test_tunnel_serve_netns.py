"""``simtrust serve`` with ``SIMTRUST_TUNNEL_VICI`` follows the gateway's real charon: the
operator stores an APN's tunnel over the API, ``simtrust tunnels apply --stored`` (another
process) brings it up on the gateway, and when the IKE SA is terminated the serving process
records a ``tunnel-down`` alert that the enterprise tenant reads from its audit trail.

Needs what tests/policy/test_tunnels_netns.py needs (root, ip, nft, charon, swanctl)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from simtrust.config import load_settings
from simtrust.policy import parse_list_sas, render_swanctl
from simtrust.runtime import Runtime

from .test_tunnels_netns import NS, SPEC, lab, swanctl  # noqa: F401 - lab is a fixture


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(condition: Callable[[], bool], what: str, bound: float = 120.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _prepare(home: Path) -> tuple[str, str]:
    rt = Runtime.initialise(load_settings(env={}, home=home))
    try:
        rt.tenants.create_tenant(SPEC.tenant_id, "Acme")
        rt.subscriber.inventory.create_apn(SPEC.tenant_id, SPEC.apn, actor="test",
                                           pool=SPEC.apn_pool[0])
        operator = rt.tenants.create_key("operator-admin", "tunnels")
        tenant = rt.tenants.create_key("tenant-admin", "acme", SPEC.tenant_id)
        return operator.secret, tenant.secret
    finally:
        rt.close()


@pytest.mark.slow
def test_serve_alerts_when_a_stored_tunnel_goes_down(lab: Path) -> None:  # noqa: F811
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    home = lab / "home"
    operator, tenant = _prepare(home)
    vici = lab / "gw" / "charon.vici"
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0",
           "SIMTRUST_TUNNEL_VICI": f"unix://{vici}"}
    log_path = home / "serve.log"
    with log_path.open("w+b") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            def listening() -> bool:
                assert server.poll() is None, log_path.read_text()
                try:
                    return httpx.get(base + "/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            _wait_until(listening, "the API")
            _wait_until(lambda: "tunnel events from charon" in log_path.read_text(),
                        "the VICI watch")
            put = httpx.put(
                f"{base}/v1/apns/{SPEC.apn}/tunnel", params={"tenant_id": SPEC.tenant_id},
                headers={"Authorization": f"Bearer {operator}"}, timeout=30,
                json={"name": SPEC.name, "local_address": SPEC.local_address,
                      "remote_address": SPEC.remote_address, "local_id": SPEC.local_id,
                      "remote_id": SPEC.remote_id,
                      "enterprise_prefixes": list(SPEC.enterprise_prefixes),
                      "psk_hex": bytes(range(32)).hex()})
            assert 200 == put.status_code, put.text
            applied = subprocess.run(
                [sys.executable, "-m", "simtrust", "tunnels", "apply", "--stored",
                 "--dir", str(lab / "swanctl-gw"), "--uri", f"unix://{vici}",
                 "--netns", NS["gw"]], env=env, capture_output=True, text=True, timeout=120,
                check=False)
            assert 0 == applied.returncode, applied.stderr
            assert f"added {SPEC.name}" in applied.stdout
            _wait_until(lambda: "ESTABLISHED" == parse_list_sas(
                swanctl(lab, "gw", "--list-sas")).get(SPEC.name, {}).get("ike"),
                "the tunnel to come up")
            swanctl(lab, "gw", "--terminate", "--ike", SPEC.name, check=False)

            def alerted() -> list[dict[str, object]]:
                got = httpx.get(f"{base}/v1/audit/events",
                                params={"action": "policy.alert.tunnel-down"},
                                headers={"Authorization": f"Bearer {tenant}"}, timeout=30)
                assert 200 == got.status_code, got.text
                events: list[dict[str, object]] = got.json()["events"]
                return events

            _wait_until(lambda: bool(alerted()), "the tunnel-down alert")
            [event] = alerted()
            assert SPEC.tenant_id == event["tenant_id"]
            details = event["details"]
            assert isinstance(details, dict)
            assert (SPEC.name, SPEC.apn) == (details["tunnel"], details["apn"])
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
