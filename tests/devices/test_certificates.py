"""LwM2M X.509 certificate mode: device certificates issued by a tenant CA (EST store of
``simtrust.bootstrap``) authenticate devices on the management server over DTLS 1.2
(ECDHE-ECDSA). Independent peers: libcoap's coap-client, OpenSSL and GnuTLS builds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simtrust.bootstrap import DeviceClaims
from simtrust.devices import CF_SENML_JSON, X509_PREFIX, Lwm2mClient, new_endpoint_name

from .conftest import IMEI1, IMEI2, TENANT, Env, iccid, imsi
from .test_peers import CLIENTS, coap_client

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def _issue(env: Env, n: int, imei: str | None) -> tuple[x509.Certificate, bytes]:
    cas = env.boot.cas
    try:
        ca = cas.find(TENANT, "devices")
    except Exception:  # noqa: BLE001 - first use in this test creates it
        ca = cas.create_hosted(TENANT, "devices", common_name="Acme device CA", actor="test")
    cert, key = cas.generate_key_and_issue(
        ca, DeviceClaims(TENANT, iccid(n).value, imsi(n).value, imei=imei), actor="test")
    assert env.devices.run_sync(env.devices.refresh_certificates) in (True, False)
    return cert, key


def _files(tmp: Path, cert: x509.Certificate, key_der: bytes, env: Env) -> list[str]:
    key = serialization.load_der_private_key(key_der, password=None)
    (tmp / "dev.pem").write_bytes(cert.public_bytes(PEM))
    (tmp / "dev.key").write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    (tmp / "server-ca.pem").write_bytes(env.boot.cas.operator_ca().certificate.public_bytes(PEM))
    return ["-c", str(tmp / "dev.pem"), "-j", str(tmp / "dev.key"),
            "-R", str(tmp / "server-ca.pem")]


@pytest.mark.parametrize("binary", CLIENTS)
def test_coap_client_registers_with_a_tenant_device_certificate(
        env: Env, binary: str, tmp_path: Path) -> None:
    cert, key = _issue(env, 2, IMEI2)
    args = _files(tmp_path, cert, key, env)
    base = f"coaps://127.0.0.1:{env.devices.dm_port}"
    name = new_endpoint_name(IMEI2, imsi(2).value)
    done = coap_client(binary, "-m", "post", *args, "-t", "40", "-e", "</3/0>,</5/0>",
                       f"{base}/rd?ep={name}&lt=120&lwm2m=1.1&b=U")
    assert 0 == done.returncode, done.stderr
    reg = env.devices.run_sync(lambda: env.devices.manager.get(name))
    assert (imsi(2).value, iccid(2).value, TENANT) == (reg.imsi, reg.iccid, reg.tenant_id)
    assert reg.peer.identity == X509_PREFIX + format(cert.serial_number, "x")
    done = coap_client(binary, "-m", "post", *args, f"{base}/rd/{reg.reg_id}?lt=300")
    assert 0 == done.returncode, done.stderr
    assert 300 == env.devices.run_sync(lambda: env.devices.manager.get(name).lifetime)
    # The certificate binds the endpoint name: another IMEI or another SIM is refused.
    for other in (new_endpoint_name(IMEI1, imsi(2).value), new_endpoint_name(IMEI2, imsi(3).value)):
        done = coap_client(binary, "-m", "post", *args, "-t", "40", "-e", "</3/0>",
                           f"{base}/rd?ep={other}")
        assert "endpoint-mismatch" in done.stdout + done.stderr
    done = coap_client(binary, "-m", "delete", *args, f"{base}/rd/{reg.reg_id}")
    assert 0 == done.returncode, done.stderr
    assert 0 == env.devices.run_sync(lambda: len(env.devices.manager))


@pytest.mark.parametrize("binary", CLIENTS)
def test_revoked_or_foreign_certificates_get_no_session(
        env: Env, binary: str, tmp_path: Path) -> None:
    cert, key = _issue(env, 2, IMEI2)
    args = _files(tmp_path, cert, key, env)
    env.boot.cas.revoke(format(cert.serial_number, "x"), reason="keyCompromise", actor="test")
    base = f"coaps://127.0.0.1:{env.devices.dm_port}"
    name = new_endpoint_name(IMEI2, imsi(2).value)
    counters = env.devices.manager.endpoint.counters
    refused = counters.cert_refused
    coap_client(binary, "-B", "3", "-m", "post", *args, f"{base}/rd?ep={name}")
    assert counters.cert_refused > refused
    assert env.devices.certificates is not None
    assert env.devices.certificates.refused.get("revoked", 0) >= 1

    # A CA the tenant never registered: mbed TLS's path validation fails the handshake.
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    dev_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme device CA")])
    foreign = (x509.CertificateBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, iccid(2).value)]))
        .issuer_name(ca_name).public_key(dev_key.public_key())
        .serial_number(cert.serial_number + 1).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    args = _files(tmp_path, foreign, dev_key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), env)
    failures = counters.handshake_failures
    coap_client(binary, "-B", "3", "-m", "post", *args, f"{base}/rd?ep={name}")
    assert counters.handshake_failures > failures
    assert 0 == env.devices.run_sync(lambda: len(env.devices.manager))


def test_own_client_registers_with_certificate_and_is_read(env: Env) -> None:
    cert, key = _issue(env, 1, IMEI1)
    server_ca = env.boot.cas.operator_ca().certificate.public_bytes(DER)
    name = new_endpoint_name(IMEI1, imsi(1).value)

    async def scenario() -> None:
        dev = Lwm2mClient(name)
        try:
            peer = await dev.connect_certificate(
                f"coaps://127.0.0.1:{env.devices.dm_port}", [cert.public_bytes(DER)], key,
                server_trust=[server_ca])
            await dev.register(peer=peer)
            m = env.devices.manager
            values = await m.read(name, (3, 0), fmt=CF_SENML_JSON)
            assert "1.0.0" == values[(3, 0, 3)]
            assert m.get(name).peer.identity == X509_PREFIX + format(cert.serial_number, "x")
            assert 0x42 == await dev.deregister()
        finally:
            dev.close()

    env.devices.call(scenario())


def test_gba_bootstrap_provisions_certificate_mode_for_a_tenant_with_an_lwm2m_ca(
        env: Env) -> None:
    ca = env.boot.cas.create_hosted(TENANT, "lwm2m", common_name="Acme LwM2M CA", actor="test")
    identity, key = env.gba(3)
    name = new_endpoint_name(IMEI1, imsi(3).value)

    async def scenario() -> str | None:
        dev = Lwm2mClient(name)
        try:
            await dev.bootstrap(env.bs_uri, identity, key)
            assert 2 == dev.values[(0, 1, 2)]  # Security Mode: Certificate
            await dev.register()
            m = env.devices.manager
            values = await m.read(name, (3, 0), fmt=CF_SENML_JSON)
            assert "1.0.0" == values[(3, 0, 3)]
            return m.get(name).peer.identity
        finally:
            dev.close()

    identity_used = env.devices.call(scenario())
    assert identity_used is not None
    assert identity_used.startswith(X509_PREFIX)
    issued = env.boot.cas.certificate(identity_used[len(X509_PREFIX):])
    assert (iccid(3).value, ca.ca_id, "good") == (issued.iccid, issued.ca_id, issued.status)
    assert "finished" == env.devices.bootstrap.status[name]


def test_revocation_ends_the_sims_certificate_session(env: Env) -> None:
    cert, key = _issue(env, 1, IMEI1)
    server_ca = env.boot.cas.operator_ca().certificate.public_bytes(DER)
    name = new_endpoint_name(IMEI1, imsi(1).value)
    dev = Lwm2mClient(name)

    async def connect() -> None:
        peer = await dev.connect_certificate(
            f"coaps://127.0.0.1:{env.devices.dm_port}", [cert.public_bytes(DER)], key,
            server_trust=[server_ca])
        await dev.register(peer=peer)

    link = env.devices.dm_link
    assert link is not None
    try:
        env.devices.call(connect())
        assert 1 == env.devices.run_sync(lambda: link.sessions)
        env.boot.cas.revoke(format(cert.serial_number, "x"), reason="keyCompromise",
                            actor="test")
        # The revocation listener hands the close to the servers' loop; this runs after it.
        assert 0 == env.devices.run_sync(lambda: link.sessions)
    finally:
        dev.close()
