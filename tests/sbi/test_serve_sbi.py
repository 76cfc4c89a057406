"""``simtrust serve`` starts the HTTP/2 SBI and registers at the NRF when configured."""

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
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.alerts import MemorySink
from simtrust.config import load_settings
from simtrust.errors import ConfigError
from simtrust.runtime import Runtime
from simtrust.sbi import SbiServer
from simtrust.subscriber import build_services

from ..subscriber.conftest import TENANT, imsi, spec
from .conftest import NRF_ID, UDM_ID
from .nrf import SpecNrf

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
AUSF = "6f1c0c64-3d6f-4a3e-9a62-2d7b5f3f1e10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_serve_runs_the_sbi_and_registers_at_the_nrf(tmp_path: Path, shared_dir: Path) -> None:
    spec_nrf = SpecNrf(shared_dir / "specs" / "3gpp", NRF_ID,
                       ec.generate_private_key(ec.SECP256R1()), heartbeat_s=1)
    nrf = SbiServer(spec_nrf.app(), "127.0.0.1", 0, lab_mode=True)
    _, nrf_port = nrf.start()
    sbi_port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home"),
           "SIMTRUST_API_BIND": f"127.0.0.1:{_free_port()}",
           "SIMTRUST_SBI_BIND": f"127.0.0.1:{sbi_port}",
           "SIMTRUST_SBI_WORKERS": "2",  # the master deals connections to two workers
           "SIMTRUST_NRF_URL": f"http://127.0.0.1:{nrf_port}",
           "SIMTRUST_UDM_INSTANCE_ID": UDM_ID,
           "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    cli = [sys.executable, "-m", "simtrust"]
    subprocess.run([*cli, "init", "--json"], env=env, check=True, capture_output=True,
                   timeout=120)
    rt = Runtime.open(load_settings(env=env))
    try:
        rt.tenants.create_tenant(TENANT, "Acme Meters")
        services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
        services.inventory.add_sim(TENANT, spec(1), actor="test")
        services.close()
    finally:
        rt.close()
    proc = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: UDM_ID in spec_nrf.profiles, "NF registration", proc)
        service = spec_nrf.profiles[UDM_ID]["nfServices"][0]
        assert sbi_port == service["ipEndPoints"][0]["port"]
        # Registration comes from the master; a worker that is still importing on a busy
        # machine answers its first connection late, so the client waits for it.
        with httpx.Client(http1=False, http2=True, timeout=90) as client:
            r = client.post(f"http://127.0.0.1:{sbi_port}/nudm-ueau/v1/{imsi(1).supi}/"
                            "security-information/generate-auth-data",
                            json={"servingNetworkName": SNN, "ausfInstanceId": AUSF})
        assert 200 == r.status_code
        assert "HTTP/2" == r.http_version
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        nrf.stop()
    assert UDM_ID not in spec_nrf.profiles  # deregistered on shutdown
    assert [] == spec_nrf.invalid


def test_sbi_settings(tmp_path: Path) -> None:


    key = tmp_path / "nrf.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n", encoding="utf-8")
    settings = load_settings(env={"SIMTRUST_SBI_BIND": "127.0.0.1:29503",
                                  "SIMTRUST_NRF_URL": "http://127.0.0.1:8000/",
                                  "SIMTRUST_NRF_PUBLIC_KEY": str(key),
                                  "SIMTRUST_UDM_INSTANCE_ID": UDM_ID.upper()}, home=tmp_path)
    assert "127.0.0.1:29503" == settings.sbi_bind
    assert "http://127.0.0.1:8000" == settings.nrf_url
    assert UDM_ID == settings.udm_instance_id
    for var, value in (("SIMTRUST_NRF_URL", "nrf.local"), ("SIMTRUST_TLS_CERT", "/nonexistent"),
                       ("SIMTRUST_UDM_INSTANCE_ID", "udm-1"), ("SIMTRUST_SBI_BIND", "x")):
        with pytest.raises(ConfigError):
            load_settings(env={var: value}, home=tmp_path)
