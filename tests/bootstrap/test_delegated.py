"""A delegated CA: the CSR goes to the enterprise's EST simpleenroll, its answer is checked."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from simtrust.bootstrap import CertificateAuthorities, DeviceClaims
from simtrust.errors import InvalidSignature, PermissionDenied

from .conftest import TENANT, Env, iccid, imsi


def enterprise_ca(env: Env) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Acme Enterprise CA")])
    now = env.clock()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def est_server(key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, seen: list[str],
               status: int = 200) -> httpx.MockTransport:
    """The enterprise's EST server: RFC 7030 §4.2 simpleenroll, base64 bodies."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        assert "application/pkcs10" == request.headers["content-type"]
        csr = x509.load_der_x509_csr(base64.b64decode(request.content))
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(ca.not_valid_before_utc)
                .not_valid_after(ca.not_valid_after_utc).sign(key, hashes.SHA256()))
        body = base64.encodebytes(pkcs7.serialize_certificates([cert],
                                                               serialization.Encoding.DER))
        return httpx.Response(status, content=body,
                              headers={"Content-Type": "application/pkcs7-mime"})

    return httpx.MockTransport(handler)


def csr() -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "m")]))
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))


def test_delegated_ca_forwards_and_checks_the_answer(env: Env) -> None:
    key, ca = enterprise_ca(env)
    seen: list[str] = []
    cas = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock,
                                 transport=est_server(key, ca, seen))
    record = cas.register_delegated(
        TENANT, "acme-enterprise", est_url="https://pki.acme.example/.well-known/est",
        ca_pem=ca.public_bytes(serialization.Encoding.PEM), actor="test")
    device = DeviceClaims(TENANT, iccid(1).value, imsi(1).value)
    request = csr()
    cert = cas.issue(record, request, device, actor="test")
    assert ["/.well-known/est/simpleenroll"] == seen
    assert cert.public_key() == request.public_key()
    cert.verify_directly_issued_by(ca)
    assert ["good"] == [c.status for c in cas.certificates(iccid=iccid(1).value)]

    other_key, _ = enterprise_ca(env)
    forged = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock,
                                    transport=est_server(other_key, ca, []))
    with pytest.raises(InvalidSignature):
        forged.issue(record, csr(), device, actor="test")
    refused = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock,
                                     transport=est_server(key, ca, [], status=403))
    with pytest.raises(PermissionDenied):
        refused.issue(record, csr(), device, actor="test")
    assert 1 == len(cas.certificates(iccid=iccid(1).value))
