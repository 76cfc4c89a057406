"""State every process on one store shares: NAF Digest replay cache and nonce key, tenant CA trust.

A second ``python`` process opens the same data directory: a Digest answer used in
this process is refused there as a replay (and a fresh one on the same nonce is
accepted there, the nonce key being shared); a CA that process registers is
trusted for client certificates by this process's running listener, no restart.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simtrust.bootstrap import EstRequest, format_credentials, parse_digest

from .conftest import EST_LABEL, LABEL, OTHER, Env

_OTHER_PROCESS = """
import json, sys
from pathlib import Path
from simtrust.alerts import MemorySink
from simtrust.bootstrap import EstRequest
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import build_services
job = json.loads(sys.stdin.read())
rt = Runtime.open(load_settings(env={}, home=Path(job["home"])))
subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[MemorySink()])
rt.subscriber = subs
out = {}
if "ca" in job:
    rt.bootstrap.cas.import_hosted(job["tenant"], job["label"], cert_pem=job["ca"].encode(),
                                   key_pem=job["key"].encode(), actor="other-process")
for name, (method, path, auth) in job.get("requests", {}).items():
    answer = rt.bootstrap.server.handle(EstRequest(method, path, {"authorization": auth}))
    out[name] = [answer.status, answer.body.decode("utf-8", "replace")]
subs.close()
rt.close()
print(json.dumps(out))
"""


def other_process(job: dict[str, object]) -> dict[str, list[object]]:
    done = subprocess.run([sys.executable, "-c", _OTHER_PROCESS], input=json.dumps(job),
                          capture_output=True, text=True, timeout=120, check=False)
    assert 0 == done.returncode, done.stderr[-2000:]
    result: dict[str, list[object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_digest_replay_is_refused_by_another_process(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
    server = env.boot.server
    path = f"/.well-known/est/{LABEL}/serverkeygen"
    challenge = parse_digest(server.challenge())
    now = env.clock()

    def credentials(nc: str) -> str:
        params = {"username": applet.naf_username("gba", server.naf_id, now),
                  "realm": challenge["realm"], "nonce": challenge["nonce"], "uri": path,
                  "algorithm": "SHA-256", "qop": "auth", "nc": nc, "cnonce": "abc"}
        params["response"] = applet.naf_digest(
            "gba", server.naf_id, now, algorithm="SHA-256", realm=challenge["realm"],
            method="POST", uri=path, nonce=challenge["nonce"], nc=nc, cnonce="abc", qop="auth")
        return format_credentials(params)

    used = credentials("00000001")
    assert 200 == server.handle(EstRequest("POST", path, {"authorization": used})).status
    out = other_process({"home": str(env.rt.settings.home), "requests": {
        "replay": ["POST", path, used],
        "fresh": ["POST", path, credentials("00000002")]}})
    assert 401 == out["replay"][0]
    assert "replayed" in str(out["replay"][1])
    # The nonce this process made verifies there: the nonce key is shared too.
    assert 200 == out["fresh"][0]
    # And what the other process accepted is a replay here.
    again = server.handle(EstRequest("POST", path, {"authorization": credentials("00000002")}))
    assert 401 == again.status
    assert b"replayed" in again.body
    assert 2 == len(env.boot.cas.certificates())


def _ca(tmp: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Globex Own CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _client_files(tmp: Path, ca_key: ec.EllipticCurvePrivateKey,
                  ca_cert: x509.Certificate) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "globex-meter")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = tmp / "client.pem", tmp / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _get_with_client_cert(env: Env, cert_file: Path, key_file: Path) -> bytes:
    """One GET over TLS with the client certificate; b"" when the server refused it."""
    ctx = ssl.create_default_context(cadata=env.listener.trust_pem.decode())
    ctx.load_cert_chain(cert_file, key_file)
    try:
        with socket.create_connection(("127.0.0.1", env.listener.port), timeout=30) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /.well-known/est/" + EST_LABEL.encode() + b"/cacerts HTTP/1.1\r\n"
                        b"Host: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return data
    except (ssl.SSLError, ConnectionError):
        return b""


def test_ca_registered_by_another_process_is_trusted_without_restart(
        env: Env, tmp_path: Path) -> None:
    ca_key, ca_cert = _ca(tmp_path)
    cert_file, key_file = _client_files(tmp_path, ca_key, ca_cert)
    # Not yet registered anywhere: the handshake refuses the client certificate.
    assert b"" == _get_with_client_cert(env, cert_file, key_file)
    before = env.boot.cas.generation
    other_process({
        "home": str(env.rt.settings.home), "tenant": OTHER, "label": "own-ca",
        "ca": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key": ca_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()})
    assert before == env.boot.cas.generation  # nothing registered by this process itself
    answer = _get_with_client_cert(env, cert_file, key_file)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
