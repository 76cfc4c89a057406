"""The whole device side against a real HTTPS listener: Ub, EST enrolment, re-enrolment, errors."""

from __future__ import annotations

import base64
import ssl
from datetime import timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from simtrust.bootstrap import CertProfile, EnrolmentRefused, NafId, SimApplet
from simtrust.errors import AuthenticationRequired
from simtrust.subscriber import SimState
from simtrust.subscriber.auc import Milenage, Usim, UsimSqnArray

from .conftest import EST_LABEL, K1, LABEL, OPC1, OTHER, TENANT, Env, iccid, imsi


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.UniformResourceIdentifier)


def test_gba_bootstrap_and_p256_enrolment(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        info = client.bootstrap()
        assert info.b_tid.endswith("@" + env.boot.bsf.domain)
        assert applet.b_tid == info.b_tid
        cert = client.enroll(LABEL, "tls", did="did:example:meter-1")
        ca = client.cacerts(EST_LABEL)[0]
    cert.verify_directly_issued_by(ca)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == applet.public_key_spki("tls")
    assert iccid(1).value == cert.subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)[0].value
    assert ["did:example:meter-1", f"urn:iccid:{iccid(1).value}"] == sans(cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [x509.ExtendedKeyUsageOID.CLIENT_AUTH] == list(eku)
    issued = env.boot.cas.certificates(iccid=iccid(1).value)
    assert ["good"] == [c.status for c in issued]
    actions = [e.action for e in env.rt.audit.query(limit=1000)]
    assert "gba.bootstrap" in actions
    assert "pki.issue" in actions


def test_ed25519_enrolment_and_reenrolment_over_client_tls(env: Env) -> None:
    applet = env.applet(2)
    with env.client(applet) as client:
        client.bootstrap()
        ed = client.enroll(LABEL, "signing", key_type="ed25519")
        assert isinstance(ed.public_key(), ed25519.Ed25519PublicKey)
        cert = client.enroll(LABEL, "tls")
        assert cert is client.renew_if_due(LABEL, "tls", cert)  # young: kept
        env.clock.advance(minutes=45)  # the profile's lifetime is one hour
        renewed = client.renew_if_due(LABEL, "tls", cert)
    assert cert.subject == renewed.subject
    assert cert.serial_number != renewed.serial_number


def test_reenrolment_without_client_certificate_is_refused(env: Env) -> None:
    ctx = ssl.create_default_context(cadata=env.listener.trust_pem.decode())
    response = httpx.post(f"{env.listener.base_url}/.well-known/est/{LABEL}/simplereenroll",
                          content=b"", verify=ctx)
    assert 401 == response.status_code
    assert [] == env.boot.cas.certificates()


def test_resynchronisation_through_auts(env: Env) -> None:
    """A USIM whose SQN is far ahead: AUTS re-synchronises the AuC, then AKA succeeds."""
    ahead = UsimSqnArray()
    for ind in range(32):
        ahead = ahead.check(((1000 << 5) | ind).to_bytes(6, "big"))
    applet = SimApplet(iccid(3).value, Usim(Milenage(*_keys()), ahead),
                       impi=env.applet(3).impi, supi=env.applet(3).supi)
    with env.client(applet) as client:
        info = client.bootstrap()
    assert applet.b_tid == info.b_tid
    assert "auc.resync" in [e.action for e in env.rt.audit.query(limit=1000)]


def _keys() -> tuple[bytes, bytes]:
    return K1, OPC1


def test_wrong_naf_id_gets_nothing(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet, naf_fqdn="other-naf.example") as client:
        client.bootstrap()
        with pytest.raises(EnrolmentRefused) as err:
            client.enroll(LABEL, "tls")
    assert 401 == err.value.context["status"]
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


def test_replaced_and_expired_b_tids_are_refused(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        old = client.bootstrap()
        stale = SimApplet(applet.element_id, Usim(Milenage(*_keys())), impi=applet.impi,
                          supi=applet.supi)
        stale._gba = applet._gba  # the device's previous bootstrapping, replayed
        client.bootstrap()
    with env.client(stale) as replay:
        assert old.b_tid == stale.b_tid
        with pytest.raises(EnrolmentRefused) as err:
            replay.enroll(LABEL, "tls")
        assert 401 == err.value.context["status"]
    env.clock.advance(hours=25)
    with env.client(applet) as client:
        with pytest.raises(AuthenticationRequired):
            client.enroll(LABEL, "tls2")  # the applet knows its key has expired
        b_tid, rand, ks, expires = applet._gba
        applet._gba = (b_tid, rand, ks, expires + timedelta(days=2))  # a device clock behind
        with pytest.raises(EnrolmentRefused) as err:
            client.enroll(LABEL, "tls3")
        assert 401 == err.value.context["status"]
        assert "lifetime has ended" in err.value.detail
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


def test_unknown_ca_and_other_tenants_ca(env: Env) -> None:
    env.boot.cas.create_hosted(OTHER, "globex-ca", common_name="Globex CA", actor="test")
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        for label in ("no-such-ca", "globex-ca", "operator-tier1"):
            with pytest.raises(EnrolmentRefused) as err:
                client.enroll(label, f"k-{label}")
            assert 404 == err.value.context["status"], label
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)
    assert TENANT != OTHER


def test_csr_key_not_held_by_the_sim_is_refused(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        foreign = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")]))
               .add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD, b"not-the-binding")
               .sign(foreign, hashes.SHA256()))
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        response = client._digest_post(f"/.well-known/est/{LABEL}/simpleenroll", "gba", body,
                                       {"Content-Type": "application/pkcs10"})
        assert 403 == response.status_code
        assert "not bound to the SIM" in response.text
        garbage = client._digest_post(f"/.well-known/est/{LABEL}/simpleenroll", "gba",
                                      base64.encodebytes(b"\x30\x03\x02\x01\x00"),
                                      {"Content-Type": "application/pkcs10"})
        assert 400 == garbage.status_code
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)
    failures = [e for e in env.rt.audit.query(limit=1000) if e.action == "pki.issue"]
    assert ["failure"] == [e.outcome for e in failures]


def test_suspension_revokes_and_blocks_new_enrolment(env: Env) -> None:
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        cert = client.enroll(LABEL, "tls")
        env.subs.inventory.transition(iccid(1), SimState.SUSPENDED, actor="test")
        status = env.boot.cas.certificate(format(cert.serial_number, "x"))
        assert ("revoked", "certificateHold") == (status.status, status.revocation_reason)
        with pytest.raises(EnrolmentRefused):
            client.enroll(LABEL, "tls2")
    crl = x509.load_der_x509_crl(env.boot.cas.crl(EST_LABEL))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_rate_limit_per_sim(env: Env) -> None:
    env.boot.cas.set_profile(EST_LABEL, CertProfile(max_per_hour=2), actor="test")
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        client.enroll(LABEL, "a")
        client.enroll(LABEL, "b")
        with pytest.raises(EnrolmentRefused) as err:
            client.enroll(LABEL, "c")
    assert 429 == err.value.context["status"]
    assert 2 == len(env.boot.cas.certificates(iccid=iccid(1).value))


def test_imsi_helper_matches(env: Env) -> None:
    assert env.applet(1).impi.startswith(imsi(1).value + "@ims.mnc001.mcc001.")
    assert NafId("Localhost").encode().startswith(b"localhost")
