"""Bootstrap: a smart meter gets an enterprise certificate from its SIM alone, publishes over mTLS.

The tenant registers its own issuing CA; the meter's SIM applet runs GBA over Ub
(Digest AKA), proves Ks_NAF to the certificate server and enrols a P-256 key made
in the SIM over EST; the meter then publishes to a Mosquitto broker that trusts
only the tenant CA (and its CRL). Suspending the SIM revokes the certificate:
OCSP says revoked, the CRL lists it and the broker refuses the meter.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from paho.mqtt.enums import CallbackAPIVersion

from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.bootstrap import CertProfile, DeviceClient, NafId, SimApplet, impi_from_imsi
from simtrust.subscriber import (
    Iccid,
    Imsi,
    OpKind,
    SimSecrets,
    SimSpec,
    SimState,
    luhn_check_digit,
)
from simtrust.subscriber.auc import Milenage, Usim

ORDER = 25
LABEL = "acme-meters-ca"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(tmp: Path, chain: bytes, key: bytes, ca: bytes, crl: bytes) -> tuple[Any, int]:
    for name, data in (("server.pem", chain), ("server.key", key), ("ca.pem", ca),
                       ("ca.crl", crl)):
        (tmp / name).write_bytes(data)
    port = _free_port()
    (tmp / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {tmp / 'ca.pem'}\ncertfile {tmp / 'server.pem'}\n"
        f"keyfile {tmp / 'server.key'}\ncrlfile {tmp / 'ca.crl'}\nrequire_certificate true\n"
        "use_identity_as_username true\nallow_anonymous false\npersistence false\n"
        f"log_type error\nuser {getpass.getuser()}\n")
    command = ["mosquitto", "-c", str(tmp / "mosquitto.conf")]
    proc = subprocess.Popen(command,  # noqa: S603 - the broker binary, a config this step wrote
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def _publish(port: int, tmp: Path, trust: bytes, cert: bytes, key: bytes) -> bool:

    for name, data in (("trust.pem", trust), ("meter.pem", cert), ("meter.key", key)):
        (tmp / name).write_bytes(data)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter")
    client.tls_set(ca_certs=str(tmp / "trust.pem"), certfile=str(tmp / "meter.pem"),
                   keyfile=str(tmp / "meter.key"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    connected, ended = threading.Event(), threading.Event()
    client.on_connect = lambda c, u, f, rc, p: (connected.set() if not rc.is_failure
                                               else ended.set())
    client.on_disconnect = lambda c, u, f, rc, p: ended.set()
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        return False
    client.loop_start()
    try:
        for _ in range(200):
            if connected.is_set() or ended.is_set():
                break
            time.sleep(0.05)
        if not connected.is_set():
            return False
        info = client.publish("meters/acme/reading", b'{"kWh": 1234.5}', qos=1)
        info.wait_for_publish(timeout=10)
        return info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def run(ctx: Any) -> dict[str, Any]:
    rt = ctx.rt
    tenant = ctx.data.get("tenant") or "acme-meters"
    if tenant not in {t.id for t in rt.tenants.list_tenants()}:
        rt.tenants.create_tenant(tenant, "Acme Smart Meters")
    subs = rt.subscriber
    body = "8988277000000000001"[:18]
    iccid = Iccid(body + str(luhn_check_digit(body)))
    imsi = Imsi("001019900000001", 2)
    k, opc = os.urandom(16), os.urandom(16)
    subs.inventory.add_sim(tenant, SimSpec(iccid, imsi, secrets=SimSecrets(k, opc, OpKind.OPC),
                                           state=SimState.ACTIVE), actor="demo")
    boot = rt.bootstrap
    ca = boot.cas.create_hosted(tenant, LABEL, common_name="Acme Meters Issuing CA",
                                profile=CertProfile(organization="Acme Smart Meters",
                                                    lifetime_s=86_400), actor="demo")
    ctx.say(f"tenant {tenant} registered its issuing CA '{LABEL}' (EST label {ca.est_label}, "
            "key sealed at rest)")
    listener = BootstrapListener(boot, "127.0.0.1", 0, hostnames=["localhost", "127.0.0.1"])
    listener.start()
    applet = SimApplet(iccid.value, Usim(Milenage(k, opc)), impi=impi_from_imsi(imsi.value, 2),
                       supi=f"imsi-{imsi.value}")
    try:
        with DeviceClient(applet, base_url=listener.base_url, trust_pem=listener.trust_pem,
                          naf_id=NafId(boot.server.naf_id.fqdn), clock=rt.clock) as client:
            info = client.bootstrap()
            ctx.say(f"meter {iccid} bootstrapped over Ub: B-TID {info.b_tid}")
            cert = client.enroll(LABEL, "tls", did="did:example:acme-meter-1")
            ctx.say(f"meter enrolled over EST: certificate {cert.serial_number:x} under "
                    f"{ca.certificate.subject.rfc4514_string()}")
    finally:
        listener.stop()
    result: dict[str, Any] = {"b_tid": info.b_tid, "serial": format(cert.serial_number, "x"),
                              "subject": cert.subject.rfc4514_string()}
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca.certificate.public_bytes(serialization.Encoding.PEM)
    chain, server_key = boot.cas.server_certificate(["127.0.0.1"])
    trust = boot.cas.operator_ca().certificate.public_bytes(serialization.Encoding.PEM)

    def broker_accepts() -> bool | None:
        if shutil.which("mosquitto") is None:
            return None
        crl = x509.load_der_x509_crl(boot.cas.crl(ca.est_label)).public_bytes(
            serialization.Encoding.PEM)
        with tempfile.TemporaryDirectory(prefix="simtrust-demo-mqtt-") as tmp:
            os.chmod(tmp, 0o755)  # noqa: S103 - the broker may run as its own user
            proc, port = _broker(Path(tmp), chain, server_key, ca_pem, crl)
            try:
                return _publish(port, Path(tmp), trust, cert_pem, applet.tls_key_pem("tls"))
            finally:
                proc.terminate()
                proc.wait(timeout=10)

    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.certificate, hashes.SHA256()) \
        .build().public_bytes(serialization.Encoding.DER)

    def ocsp_status() -> str:
        answer = ocsp.load_der_ocsp_response(boot.cas.ocsp_response(request))
        return answer.certificate_status.name.lower()

    result["mtls_publish_before"] = broker_accepts()
    result["ocsp_before"] = ocsp_status()
    ctx.say(f"meter publishes over mTLS: {result['mtls_publish_before']}")
    subs.inventory.transition(iccid, SimState.SUSPENDED, actor="demo", reason="meter stolen")
    result["ocsp_after_suspend"] = ocsp_status()
    crl = x509.load_der_x509_crl(boot.cas.crl(ca.est_label))
    result["in_crl"] = crl.get_revoked_certificate_by_serial_number(cert.serial_number) \
        is not None
    result["mtls_publish_after"] = broker_accepts()
    ctx.say(f"SIM suspended: OCSP {result['ocsp_after_suspend']}, in CRL {result['in_crl']}, "
            f"broker accepts {result['mtls_publish_after']}")
    expected_mqtt = result["mtls_publish_before"] is None or (
        result["mtls_publish_before"] and not result["mtls_publish_after"])
    if not (expected_mqtt and result["ocsp_before"] == "good"
            and result["ocsp_after_suspend"] == "revoked" and result["in_crl"]):
        raise RuntimeError(f"bootstrap demo did not behave: {result}")
    return result
