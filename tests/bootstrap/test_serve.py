"""``simtrust serve`` runs the bootstrap listener; what it answered survives kill -9."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from simtrust.alerts import MemorySink
from simtrust.bootstrap import CertProfile, DeviceClient, NafId, SimApplet, impi_from_imsi
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import build_services
from simtrust.subscriber.auc import Milenage, Usim

from .conftest import K1, OPC1, TENANT, add_sim, iccid, imsi


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PROBE = ssl.create_default_context()
_PROBE.check_hostname = False
_PROBE.verify_mode = ssl.CERT_NONE  # a readiness probe only; the device client verifies


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "simtrust", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while True:
        try:
            # Ready means a TLS handshake completes: the port accepts connections as soon
            # as it is bound, while the listener's worker processes may still be starting.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    _PROBE.wrap_socket(raw, server_hostname="localhost"):
                return proc
        except OSError:
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
            assert time.monotonic() < deadline, "the bootstrap listener did not come up"
            time.sleep(0.05)


@pytest.mark.slow
def test_serve_bootstraps_and_survives_kill_9(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SIMTRUST_HOME": str(tmp_path / "home"),
           "SIMTRUST_API_BIND": f"127.0.0.1:{_free_port()}",
           "SIMTRUST_BOOTSTRAP_BIND": f"127.0.0.1:{port}",
           "SIMTRUST_BOOTSTRAP_NAF_FQDN": "localhost",
           "SIMTRUST_MQTT_URL": "mqtt://127.0.0.1:1",
           "SIMTRUST_ANCHOR_INTERVAL_S": "0"}
    subprocess.run([sys.executable, "-m", "simtrust", "init", "--json"], env=env, check=True,
                   capture_output=True, timeout=120)
    rt = Runtime.open(load_settings(env=env))
    try:
        rt.tenants.create_tenant(TENANT, "Acme Meters")
        subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
        rt.subscriber = subs
        add_sim(subs, 1)
        rt.bootstrap.cas.create_hosted(TENANT, "acme", common_name="Acme CA",
                                       profile=CertProfile(), actor="test")
        trust = rt.bootstrap.cas.operator_ca().certificate.public_bytes(
            serialization.Encoding.PEM)
    finally:
        rt.close()
    proc = _serve(env, port)
    applet = SimApplet(iccid(1).value, Usim(Milenage(K1, OPC1)),
                       impi=impi_from_imsi(imsi(1).value, 2), supi=f"imsi-{imsi(1).value}")
    try:
        with DeviceClient(applet, base_url=f"https://127.0.0.1:{port}", trust_pem=trust,
                          naf_id=NafId("localhost"), clock=lambda: datetime.now(UTC)) as dev:
            dev.bootstrap()
            cert = dev.enroll("acme", "tls")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Everything the killed server acknowledged is in the store.
    rt = Runtime.open(load_settings(env=env))
    try:
        issued = rt.bootstrap.cas.certificate(format(cert.serial_number, "x"))
        assert ("good", iccid(1).value) == (issued.status, issued.iccid)
        assert applet.b_tid is not None
        assert rt.bootstrap.bsf.naf_key(applet.b_tid, NafId("localhost")).imsi == imsi(1).value
        assert "pki.issue" in [e.action for e in rt.audit.query(limit=1000)]
    finally:
        rt.close()
    # And a restarted server serves the same device with the same B-TID.
    proc = _serve(env, port)
    try:
        with DeviceClient(applet, base_url=f"https://127.0.0.1:{port}", trust_pem=trust,
                          naf_id=NafId("localhost"), clock=lambda: datetime.now(UTC)) as dev:
            again = dev.enroll("acme", "tls2")
        assert again.issuer == cert.issuer
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
