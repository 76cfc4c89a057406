"""Standard clients as independent peers: openssl makes the CSR, curl enrols with Digest
(B-TID, base64 Ks_NAF), openssl reads the PKCS#7 answer, checks OCSP and the CRL."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from simtrust.bootstrap import key_binding

from .conftest import EST_LABEL, Env, iccid

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are needed",
)


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert 0 == done.returncode, f"{args[0]} failed: {done.stderr}"
    return done.stdout


def test_curl_and_openssl_enrol_then_ocsp_and_crl(env: Env, tmp_path: Path) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
    b_tid = applet.b_tid
    assert b_tid is not None
    # A GBA_ME device: the mobile equipment holds Ks_NAF (here obtained as the BSF derives it).
    ks_naf = env.boot.bsf.naf_key(b_tid, env.boot.server.naf_id).key
    base = f"https://localhost:{env.listener.port}/.well-known/est/{EST_LABEL}"
    trust = tmp_path / "trust.pem"
    trust.write_bytes(env.listener.trust_pem)

    run("curl", "-sS", "--fail", "--cacert", trust, "-o", "cacerts.b64", f"{base}/cacerts",
        cwd=tmp_path)
    run("openssl", "base64", "-d", "-in", "cacerts.b64", "-out", "cacerts.p7", cwd=tmp_path)
    run("openssl", "pkcs7", "-inform", "DER", "-in", "cacerts.p7", "-print_certs",
        "-out", "ca.pem", cwd=tmp_path)

    run("openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "key.pem",
        cwd=tmp_path)
    key = serialization.load_pem_private_key((tmp_path / "key.pem").read_bytes(), None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "req.cnf").write_text(
        "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
        "[dn]\nCN = meter-1\n"
        f"[attrs]\nchallengePassword = {key_binding(ks_naf, spki)}\n")
    run("openssl", "req", "-new", "-key", "key.pem", "-config", "req.cnf", "-outform", "DER",
        "-out", "req.der", cwd=tmp_path)
    run("openssl", "base64", "-in", "req.der", "-out", "req.b64", cwd=tmp_path)
    password = base64.b64encode(ks_naf).decode()
    run("curl", "-sS", "--fail", "--cacert", trust, "--digest", "-u", f"{b_tid}:{password}",
        "-H", "Content-Type: application/pkcs10", "-H", "Content-Transfer-Encoding: base64",
        "--data-binary", "@req.b64", "-o", "cert.b64", f"{base}/simpleenroll", cwd=tmp_path)
    run("openssl", "base64", "-d", "-in", "cert.b64", "-out", "cert.p7", cwd=tmp_path)
    run("openssl", "pkcs7", "-inform", "DER", "-in", "cert.p7", "-print_certs",
        "-out", "cert.pem", cwd=tmp_path)
    assert "cert.pem: OK" in run("openssl", "verify", "-CAfile", "ca.pem", "cert.pem",
                                 cwd=tmp_path)
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert iccid(1).value == cn

    def ocsp_status() -> str:
        run("openssl", "ocsp", "-issuer", "ca.pem", "-cert", "cert.pem", "-reqout", "q.der",
            cwd=tmp_path)
        run("curl", "-sS", "--fail", "--cacert", trust, "-H",
            "Content-Type: application/ocsp-request", "--data-binary", "@q.der", "-o", "r.der",
            f"https://localhost:{env.listener.port}/ocsp", cwd=tmp_path)
        request = ocsp.load_der_ocsp_request((tmp_path / "q.der").read_bytes())
        response = ocsp.load_der_ocsp_response((tmp_path / "r.der").read_bytes())
        nonce = x509.OCSPNonce
        assert (request.extensions.get_extension_for_class(nonce).value
                == response.extensions.get_extension_for_class(nonce).value)
        # -cert builds a fresh request inside openssl; the nonce was compared above.
        return run("openssl", "ocsp", "-no_nonce", "-respin", "r.der", "-issuer", "ca.pem",
                   "-CAfile", "ca.pem", "-cert", "cert.pem", cwd=tmp_path)

    assert "cert.pem: good" in ocsp_status()
    env.boot.cas.revoke(format(cert.serial_number, "x"), reason="keyCompromise", actor="test")
    answer = ocsp_status()
    assert "cert.pem: revoked" in answer
    assert "Reason: keyCompromise" in answer

    run("curl", "-sS", "--fail", "--cacert", trust, "-o", "ca.crl",
        f"https://localhost:{env.listener.port}/crl/{EST_LABEL}.crl", cwd=tmp_path)
    crl_text = run("openssl", "crl", "-inform", "DER", "-in", "ca.crl", "-CAfile", "ca.pem",
                   "-noout", "-text", cwd=tmp_path)
    assert format(cert.serial_number, "X").rjust(2, "0") in crl_text.replace(":", "").upper()
