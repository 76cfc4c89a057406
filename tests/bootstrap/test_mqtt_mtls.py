"""mTLS for real: a Mosquitto broker trusting only the tenant CA (and its CRL) accepts an
enrolled device and refuses a revoked and an expired one."""

from __future__ import annotations

import getpass
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.bootstrap import CertProfile, SimApplet

from .conftest import EST_LABEL, LABEL, Env, iccid

pytestmark = [
    pytest.mark.mqtt,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is needed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def start_broker(env: Env, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    chain, key = env.boot.cas.server_certificate(["127.0.0.1"])
    ca = env.boot.cas.get(EST_LABEL).certificate
    crl = x509.load_der_x509_crl(env.boot.cas.crl(EST_LABEL))
    (tmp / "server.pem").write_bytes(chain)
    (tmp / "server.key").write_bytes(key)
    (tmp / "tenant-ca.pem").write_bytes(pem(ca))
    (tmp / "tenant.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    port = free_port()
    (tmp / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {tmp / 'tenant-ca.pem'}\ncertfile {tmp / 'server.pem'}\n"
        f"keyfile {tmp / 'server.key'}\ncrlfile {tmp / 'tenant.crl'}\n"
        "require_certificate true\nuse_identity_as_username true\n"
        "allow_anonymous false\npersistence false\nlog_type error\n"
        # Started as root, mosquitto would switch to its own user, who cannot read tmp_path.
        f"user {getpass.getuser()}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(tmp / "mosquitto.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read() if proc.stdout else b"") from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("mosquitto did not listen")


def publish(env: Env, port: int, applet: SimApplet, cert: x509.Certificate, tmp: Path,
            name: str) -> bool:
    """Connect with the device certificate; True when the broker acknowledged a QoS 1 publish."""
    (tmp / f"{name}.pem").write_bytes(pem(cert))
    key_file = tmp / f"{name}.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(applet.tls_key_pem("tls"))
    (tmp / "trust.pem").write_bytes(env.listener.trust_pem)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    client.tls_set(ca_certs=str(tmp / "trust.pem"), certfile=str(tmp / f"{name}.pem"),
                   keyfile=str(key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    connected = threading.Event()
    ended = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: (connected.set() if not rc.is_failure
                                               else ended.set())
    client.on_disconnect = lambda c, u, f, rc, p: ended.set()
    try:
        client.connect("127.0.0.1", port)
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        for _ in range(200):
            if connected.is_set() or ended.is_set():
                break
            time.sleep(0.05)
        if not connected.is_set():
            return False
        info = client.publish(f"meters/{name}/reading", b"42.1", qos=1)
        info.wait_for_publish(timeout=10)
        return info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_enrolled_device_publishes_revoked_and_expired_are_refused(
        env: Env, tmp_path: Path) -> None:
    devices: dict[str, tuple[SimApplet, x509.Certificate]] = {}
    for n, name in ((1, "good"), (2, "revoked")):
        applet = env.applet(n)
        with env.client(applet) as client:
            client.bootstrap()
            devices[name] = (applet, client.enroll(LABEL, "tls"))
    # A certificate that ran out: issued with the clock two days back and a one-hour profile.
    env.boot.cas.set_profile(EST_LABEL, CertProfile(lifetime_s=3600), actor="test")
    real = env.clock.now
    env.clock.now = real - timedelta(days=2)
    applet = env.applet(3)
    with env.client(applet) as client:
        client.bootstrap()
        devices["expired"] = (applet, client.enroll(LABEL, "tls"))
    env.clock.now = real
    env.boot.cas.revoke(format(devices["revoked"][1].serial_number, "x"),
                        reason="keyCompromise", actor="test")
    proc, port = start_broker(env, tmp_path)
    try:
        results = {name: publish(env, port, a, c, tmp_path, name)
                   for name, (a, c) in devices.items()}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert {"good": True, "revoked": False, "expired": False} == results
    assert iccid(1).value in devices["good"][1].subject.rfc4514_string()
