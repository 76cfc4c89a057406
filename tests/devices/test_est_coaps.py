"""Device-side enrolment through the LwM2M bootstrap server (EST over secure CoAP, RFC
9148, inside the bootstrap DTLS session; LwM2M Security Mode 4): libcoap's coap-client
(OpenSSL and GnuTLS builds) posts a CSR whose key OpenSSL made and gets a certificate of
the tenant's ``lwm2m`` CA bound to the SIM, which OpenSSL verifies; the package's client
enrols its own key over GBA, is bootstrapped into Mode 4 without any secret key written,
and registers with that certificate; refusals for a tenant without the CA, a CSR with a
broken signature and the wrong content format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from simtrust.devices import CF_SENML_JSON, X509_PREFIX, Lwm2mClient, new_endpoint_name

from .conftest import IMEI1, TENANT, Env, iccid, imsi
from .test_peers import CLIENTS, coap_client

PEM = serialization.Encoding.PEM


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert 0 == done.returncode, done.stderr


def _csr(tmp: Path) -> Path:
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(tmp / "dev.key"), "-subj", "/CN=whatever-the-device-says",
             "-outform", "DER", "-out", str(tmp / "dev.csr"))
    return tmp / "dev.csr"


def _psk(env: Env, n: int) -> tuple[str, bytes]:
    key = f"bootstrap-key-{n:02d}".encode()
    identity, _ = env.devices.credentials.issue("bootstrap", imsi(n).value, TENANT, key=key)
    return identity, key


@pytest.mark.parametrize("binary", CLIENTS)
def test_coap_client_enrols_an_openssl_key(env: Env, binary: str, tmp_path: Path) -> None:
    ca = env.boot.cas.create_hosted(TENANT, "lwm2m", common_name="Acme LwM2M CA", actor="test")
    identity, key = _psk(env, 3)
    base = f"coaps://127.0.0.1:{env.devices.bs_port}/.well-known/est"
    done = coap_client(binary, "-m", "post", "-u", identity, "-k", key.decode(), "-t", "286",
                       "-A", "287", "-f", str(_csr(tmp_path)), "-o", str(tmp_path / "dev.der"),
                       f"{base}/sen")
    assert 0 == done.returncode, done.stderr
    cert = x509.load_der_x509_certificate((tmp_path / "dev.der").read_bytes())
    (tmp_path / "dev.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(PEM))
    _openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "dev.pem"))
    _openssl("x509", "-in", str(tmp_path / "dev.pem"), "-noout", "-pubkey", "-out",
             str(tmp_path / "cert.pub"))
    _openssl("pkey", "-in", str(tmp_path / "dev.key"), "-pubout", "-out",
             str(tmp_path / "key.pub"))
    assert (tmp_path / "cert.pub").read_bytes() == (tmp_path / "key.pub").read_bytes()
    # the SIM's identity, not the CSR's subject
    assert [iccid(3).value] == [a.value for a in cert.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)]
    issued = env.boot.cas.certificate(format(cert.serial_number, "x"))
    assert (iccid(3).value, ca.ca_id, "good") == (issued.iccid, issued.ca_id, issued.status)
    done = coap_client(binary, "-m", "get", "-u", identity, "-k", key.decode(),
                       "-o", str(tmp_path / "crts.der"), f"{base}/crts")
    assert 0 == done.returncode, done.stderr
    assert env.boot.cas.operator_ca().certificate == x509.load_der_x509_certificate(
        (tmp_path / "crts.der").read_bytes())


def test_refusals_without_a_ca_with_a_broken_csr_or_the_wrong_format(
        env: Env, tmp_path: Path) -> None:
    identity, key = _psk(env, 2)
    base = f"coaps://127.0.0.1:{env.devices.bs_port}/.well-known/est/sen"
    csr = _csr(tmp_path)
    args = ["-m", "post", "-u", identity, "-k", key.decode()]
    done = coap_client("coap-client-openssl", *args, "-t", "286", "-f", str(csr), base)
    assert "no-lwm2m-ca" in done.stdout + done.stderr
    env.boot.cas.create_hosted(TENANT, "lwm2m", common_name="Acme LwM2M CA", actor="test")
    broken = bytearray(csr.read_bytes())
    broken[-5] ^= 0xFF  # inside the signature
    (tmp_path / "broken.csr").write_bytes(bytes(broken))
    done = coap_client("coap-client-openssl", *args, "-t", "286",
                       "-f", str(tmp_path / "broken.csr"), base)
    assert "bad-csr" in done.stdout + done.stderr
    done = coap_client("coap-client-openssl", *args, "-t", "42", "-f", str(csr), base)
    assert "content-format" in done.stdout + done.stderr
    est = env.devices.bootstrap.est
    assert est is not None
    assert {"no-lwm2m-ca": 1, "bad-csr": 1, "content-format": 1} == est.refused
    assert 0 == est.issued


def test_own_client_enrols_over_gba_and_registers_in_mode_4(env: Env) -> None:
    env.boot.cas.create_hosted(TENANT, "lwm2m", common_name="Acme LwM2M CA", actor="test")
    identity, key = env.gba(1)
    name = new_endpoint_name(IMEI1, imsi(1).value)
    dev = Lwm2mClient(name)

    async def scenario() -> str | None:
        try:
            await dev.bootstrap(env.bs_uri, identity, key, est=True)
            assert 4 == dev.values[(0, 1, 2)]  # Security Mode 4: certificate with EST
            assert (0, 1, 5) not in dev.values  # no secret key was written
            await dev.register()
            m = env.devices.manager
            assert "1.0.0" == (await m.read(name, (3, 0, 3), fmt=CF_SENML_JSON))[(3, 0, 3)]
            return m.get(name).peer.identity
        finally:
            dev.close()

    used = env.devices.call(scenario())
    assert used is not None
    assert used.startswith(X509_PREFIX)
    cert = x509.load_der_x509_certificate(bytes(dev.values[(0, 1, 3)]))  # type: ignore[arg-type]
    assert own_public(dev) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert used == X509_PREFIX + format(cert.serial_number, "x")


def own_public(dev: Lwm2mClient) -> bytes:
    assert dev.own_key is not None
    private = serialization.load_der_private_key(dev.own_key, password=None)
    return private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
