"""A tenant CA whose key lives in a PKCS#11 token (SoftHSM2): issuance, CRL and OCSP signed
inside the token, checked by cryptography and openssl."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.errors import InvalidInput

from .conftest import TENANT, Env, iccid

MODULE = next((p for p in ("/usr/lib/softhsm/libsofthsm2.so",
                           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
               if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(MODULE is None or shutil.which("softhsm2-util") is None,
                                reason="SoftHSM2 is needed")
PIN = "4711"


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SoftHSM2 token; the configuration is per test process (read at C_Initialize)."""
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"simtrust-{uuid.uuid4().hex[:8]}"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
                    "--so-pin", "0000"], check=True, capture_output=True, timeout=60)
    return label


def test_token_ca_issues_signs_crl_and_ocsp(env: Env, token: str, tmp_path: Path) -> None:
    assert MODULE is not None
    cas = env.boot.cas
    with pytest.raises(InvalidInput):
        cas.create_pkcs11(TENANT, "hsm-bad", module=MODULE, token_label=token, pin="0",
                          key_label="k0", common_name="x", actor="test")
    ca = cas.create_pkcs11(TENANT, "acme-hsm", module=MODULE, token_label=token, pin=PIN,
                           key_label=f"ca-{uuid.uuid4().hex[:6]}", common_name="Acme HSM CA",
                           actor="test")
    assert "pkcs11" == ca.mode
    ca.certificate.verify_directly_issued_by(ca.certificate)
    row = env.rt.db.query_one("SELECT key_sealed, pin_sealed FROM boot_cas WHERE ca_id = ?",
                              (ca.ca_id,))
    assert row is not None
    assert (None, True) == (row[0], row[1] is not None)
    assert PIN.encode() not in bytes(row[1])

    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        cert = client.enroll("acme-hsm", "tls")
    cert.verify_directly_issued_by(ca.certificate)

    cas.revoke(format(cert.serial_number, "x"), reason="keyCompromise", actor="test")
    crl = x509.load_der_x509_crl(cas.crl(ca.est_label))
    public = ca.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(public)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None

    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.certificate, hashes.SHA256())
    answer = ocsp.load_der_ocsp_response(cas.ocsp_response(
        request.build().public_bytes(serialization.Encoding.DER)))
    assert ocsp.OCSPCertStatus.REVOKED == answer.certificate_status
    public.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))

    if shutil.which("openssl"):
        (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
        verify = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "cert.pem"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=30,
                                check=False)
        assert "cert.pem: OK" in verify.stdout, verify.stderr
        crl_check = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", "crl.der",
                                    "-CAfile", "ca.pem", "-noout"], cwd=tmp_path,
                                   capture_output=True, text=True, timeout=30, check=False)
        assert "verify OK" in crl_check.stderr + crl_check.stdout
    assert iccid(1).value in cert.subject.rfc4514_string()


def test_pkcs11_ca_over_the_api_never_returns_the_pin(env: Env, token: str) -> None:

    key = env.rt.tenants.create_key("tenant-admin", "k", TENANT)
    with TestClient(create_app(env.rt)) as api:
        made = api.post("/v1/pki/cas", headers={"Authorization": f"Bearer {key.secret}"},
                        json={"label": "acme-hsm-api", "mode": "pkcs11",
                              "pkcs11_module": MODULE, "token_label": token, "pin": PIN,
                              "key_label": f"api-{uuid.uuid4().hex[:6]}"})
        assert 201 == made.status_code, made.text
        assert "pkcs11" == made.json()["mode"]
        assert PIN not in made.text
        missing = api.post("/v1/pki/cas", headers={"Authorization": f"Bearer {key.secret}"},
                           json={"label": "acme-hsm-x", "mode": "pkcs11"})
        assert 400 == missing.status_code
