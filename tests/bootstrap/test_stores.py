"""The bootstrap services on SQLite and on PostgreSQL: Ub, Zn, issuance, revocation, OCSP."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from simtrust.alerts import MemorySink
from simtrust.bootstrap import (
    CertProfile,
    DeviceClaims,
    NafId,
    SimApplet,
    digest_response,
    format_credentials,
    impi_from_imsi,
    parse_bootstrapping_info,
    parse_digest,
)
from simtrust.runtime import Runtime
from simtrust.subscriber import SimState, build_services
from simtrust.subscriber.auc import Milenage, Usim

from .conftest import K1, OPC1, TENANT, add_sim, iccid, imsi


def test_bootstrap_and_issue_on_each_store(runtime: Runtime) -> None:
    runtime.tenants.create_tenant(TENANT, "Acme")
    subs = build_services(runtime.db, runtime.keyring, runtime.audit, runtime.clock,
                          sinks=[MemorySink()])
    runtime.subscriber = subs
    try:
        add_sim(subs, 1)
        boot = runtime.bootstrap
        applet = SimApplet(iccid(1).value, Usim(Milenage(K1, OPC1)),
                           impi=impi_from_imsi(imsi(1).value, 2), supi=f"imsi-{imsi(1).value}")
        status, challenge, _ = boot.bsf.respond(
            format_credentials({"username": applet.impi, "realm": "", "nonce": "",
                                "uri": "/bsf", "response": ""}), "GET", b"")
        params = parse_digest(challenge)
        raw = base64.b64decode(params["nonce"])
        res = applet.aka(raw[:16], raw[16:32])
        answer = {"username": applet.impi, "realm": params["realm"], "nonce": params["nonce"],
                  "uri": "/bsf", "qop": "auth-int", "nc": "00000001", "cnonce": "x",
                  "algorithm": "AKAv1-MD5"}
        answer["response"] = digest_response(
            algorithm="AKAv1-MD5", username=applet.impi, realm=params["realm"], password=res,
            method="GET", uri="/bsf", nonce=params["nonce"], nc="00000001", cnonce="x",
            qop="auth-int")
        status, _, body = boot.bsf.respond(format_credentials(answer), "GET", b"")
        assert 200 == status
        info = parse_bootstrapping_info(body)
        naf = NafId("naf.example.com")
        assert boot.bsf.naf_key(info.b_tid, naf).key  # Zn
        ca = boot.cas.create_hosted(TENANT, "acme", common_name="Acme CA",
                                    profile=CertProfile(), actor="test")
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "m")]))
               .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
        cert = boot.cas.issue(ca, csr, DeviceClaims(TENANT, iccid(1).value, imsi(1).value),
                              actor="test")
        subs.inventory.transition(iccid(1), SimState.SUSPENDED, actor="test")
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.certificate,
                                                            hashes.SHA256()).build()
        response = ocsp.load_der_ocsp_response(
            boot.cas.ocsp_response(request.public_bytes(serialization.Encoding.DER)))
        assert ocsp.OCSPCertStatus.REVOKED == response.certificate_status
        crl = x509.load_der_x509_crl(boot.cas.crl(ca.est_label))
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    finally:
        subs.close()
