"""``simtrust serve`` with ``SIMTRUST_TUNNEL_DIR`` applies stored tunnels by itself: the
operator stores an APN's tunnel over the API and the gateway's real charon (lab network
namespace) brings it up with no other command; deleting it over the API unloads it and
tears its SA down.

Needs what tests/policy/test_tunnels_netns.py needs (root, ip, nft, charon, swanctl)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simtrust.policy import parse_list_sas, render_swanctl

from .test_tunnel_serve_netns import _free_port, _prepare, _wait_until
from .test_tunnels_netns import NS, SPEC, lab, swanctl  # noqa: F401 - lab is a fixture


@pytest.mark.slow
def test_serve_loads_and_unloads_stored_tunnels(lab: Path) -> None:  # noqa: F811
    (lab / "ent.conf").write_text(render_swanctl([SPEC.mirrored()], start=False))
    swanctl(lab, "ent", "--load-all", "--file", str(lab / "ent.conf"))
    home = lab / "home"
    operator, _tenant = _prepare(home)
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(home), "SIMTRUST_ANCHOR_INTERVAL_S": "0",
           "SIMTRUST_TUNNEL_VICI": f"unix://{lab / 'gw' / 'charon.vici'}",
           "SIMTRUST_TUNNEL_DIR": str(lab / "swanctl-gw"), "SIMTRUST_TUNNEL_NETNS": NS["gw"]}
    log_path = home / "serve.log"
    url = f"http://127.0.0.1:{port}/v1/apns/{SPEC.apn}/tunnel"
    auth = {"Authorization": f"Bearer {operator}"}

    def state() -> str:
        return parse_list_sas(swanctl(lab, "gw", "--list-sas")).get(SPEC.name, {}).get(
            "ike", "none")

    with log_path.open("w+b") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "simtrust", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until(lambda: "applied 0 stored tunnels" in log_path.read_text(),
                        "the first apply at serve start")
            put = httpx.put(url, params={"tenant_id": SPEC.tenant_id}, headers=auth,
                            timeout=30,
                            json={"name": SPEC.name, "local_address": SPEC.local_address,
                                  "remote_address": SPEC.remote_address,
                                  "local_id": SPEC.local_id, "remote_id": SPEC.remote_id,
                                  "enterprise_prefixes": list(SPEC.enterprise_prefixes),
                                  "psk_hex": bytes(range(32)).hex()})
            assert 200 == put.status_code, put.text
            _wait_until(lambda: "ESTABLISHED" == state(), "the stored tunnel to come up")
            gone = httpx.delete(url, params={"tenant_id": SPEC.tenant_id}, headers=auth,
                                timeout=30)
            assert gone.status_code in (200, 204), gone.text
            _wait_until(lambda: SPEC.name not in swanctl(lab, "gw", "--list-conns"),
                        "the removed tunnel to be unloaded")
            _wait_until(lambda: "none" == state(), "the removed tunnel's SA to go")
            assert server.poll() is None, log_path.read_text()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
