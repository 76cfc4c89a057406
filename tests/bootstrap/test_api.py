"""PKI API: CA registration per tenant, profiles, certificates, revocation, CRL, OCSP, errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from simtrust.api import create_app

from .conftest import EST_LABEL, LABEL, OTHER, TENANT, Env, iccid


@pytest.fixture
def api(env: Env) -> Any:
    with TestClient(create_app(env.rt)) as client:
        yield client


def headers(env: Env, role: str, tenant: str | None) -> dict[str, str]:
    key = env.rt.tenants.create_key(role, "k", tenant)  # type: ignore[arg-type]  # role literal
    return {"Authorization": f"Bearer {key.secret}"}


def test_tenant_registers_its_ca_and_sees_only_its_own(env: Env, api: Any) -> None:
    acme = headers(env, "tenant-admin", TENANT)
    globex = headers(env, "tenant-admin", OTHER)
    made = api.post("/v1/pki/cas", json={"label": "acme-2", "common_name": "Acme 2",
                                         "profile": {"lifetime_s": 600}}, headers=acme)
    assert 201 == made.status_code, made.text
    assert (TENANT, "hosted", 600) == (made.json()["tenant_id"], made.json()["mode"],
                                       made.json()["profile"]["lifetime_s"])
    assert "key_pem" not in made.text
    assert "PRIVATE" not in made.text
    assert {LABEL, "acme-2"} == {c["label"] for c in api.get("/v1/pki/cas", headers=acme).json()}
    assert [] == api.get("/v1/pki/cas", headers=globex).json()
    hidden = api.get(f"/v1/pki/cas/{LABEL}", headers=globex)
    assert 404 == hidden.status_code
    assert "application/problem+json" == hidden.headers["content-type"]
    assert 404 == api.get("/v1/pki/cas/operator-tier1", headers=acme).status_code
    dup = api.post("/v1/pki/cas", json={"label": "acme-2"}, headers=acme)
    assert 409 == dup.status_code
    bad = api.post("/v1/pki/cas", json={"label": "x y"}, headers=acme)
    assert 422 == bad.status_code or 400 == bad.status_code
    viewer = headers(env, "tenant-viewer", TENANT)
    assert 403 == api.post("/v1/pki/cas", json={"label": "v"}, headers=viewer).status_code
    prof = api.put(f"/v1/pki/cas/{LABEL}/profile", json={"key_types": ["ed25519"]}, headers=acme)
    assert ["ed25519"] == prof.json()["profile"]["key_types"]


def test_imported_ca_issues_and_rejects_non_ca(env: Env, api: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Acme Root")])
    now = env.clock()

    def cert(ca: bool) -> str:
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1).not_valid_before(now)
                .not_valid_after(now + timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())

    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    acme = headers(env, "tenant-admin", TENANT)
    refused = api.post("/v1/pki/cas", json={"label": "imp", "mode": "imported",
                                            "cert_pem": cert(False), "key_pem": key_pem},
                       headers=acme)
    assert 400 == refused.status_code
    made = api.post("/v1/pki/cas", json={"label": "imp", "mode": "imported",
                                         "cert_pem": cert(True), "key_pem": key_pem},
                    headers=acme)
    assert 201 == made.status_code, made.text
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        issued = client.enroll("imp", "tls")
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(cert(True).encode()))


def test_certificates_revocation_crl_and_ocsp(env: Env, api: Any) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        cert = client.enroll(LABEL, "tls")
    acme = headers(env, "tenant-admin", TENANT)
    serial = format(cert.serial_number, "x")
    listed = api.get("/v1/pki/certificates", params={"iccid": iccid(1).value}, headers=acme)
    assert [serial] == [c["serial"] for c in listed.json()]
    ca = env.boot.cas.get(EST_LABEL).certificate
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256())
               .build().public_bytes(serialization.Encoding.DER))

    def status() -> ocsp.OCSPCertStatus:
        answer = api.post("/v1/pki/ocsp", content=request,
                          headers={"Content-Type": "application/ocsp-request"})
        parsed = ocsp.load_der_ocsp_response(answer.content)
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
        return parsed.certificate_status

    assert ocsp.OCSPCertStatus.GOOD == status()
    globex = headers(env, "tenant-admin", OTHER)
    assert 404 == api.post(f"/v1/pki/certificates/{serial}/revoke", json={},
                           headers=globex).status_code
    assert 422 == api.post(f"/v1/pki/certificates/{serial}/revoke", json={"reason": "bored"},
                           headers=acme).status_code
    done = api.post(f"/v1/pki/sims/{iccid(1).value}/revoke", json={"reason": "keyCompromise"},
                    headers=acme)
    assert [serial] == done.json()["revoked"]
    assert ocsp.OCSPCertStatus.REVOKED == status()
    crl = x509.load_der_x509_crl(api.get(f"/v1/pki/cas/{EST_LABEL}/crl").content)
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]  # a P-256 CA key
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    malformed = ocsp.load_der_ocsp_response(api.post("/v1/pki/ocsp", content=b"junk").content)
    assert ocsp.OCSPResponseStatus.MALFORMED_REQUEST == malformed.response_status
    assert 404 == api.get("/v1/pki/cas/nope/crl").status_code
