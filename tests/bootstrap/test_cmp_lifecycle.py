"""Renewal (kur) and revocation (rr) at a CMP-delegated enterprise CA, and CMP over
HTTPS; OpenSSL's CMP mock server (``openssl cmp -port``) is the independent peer,
tshark dissects the exchange, a TLS-terminating relay in front of the mock server
checks the HTTPS trust rules."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.bootstrap import CertificateAuthorities, CmpProtection, EnrolmentRefused
from simtrust.bootstrap._cmp import CmpClient
from simtrust.errors import InvalidSignature, PermissionDenied, StoreError

from .cmp_support import (
    MAC,
    REFERENCE,
    SECRET,
    TSHARK,
    Enterprise,
    Relay,
    TlsRelay,
    cmp_bodies,
    csr_for,
    device,
    dissector_problems,
    mac_ca,
    mock_cmp,
    port_of,
    tls_server_cert,
    tshark,
    until,
    write_pcap,
)
from .conftest import TENANT, Env, iccid

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed")


def enrolled(env: Env, tmp_path: Path, ent: Enterprise, url: str,
             label: str = "acme-cmp") -> tuple[Any, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CMP-delegated CA at ``url`` and a device certificate it issued through simtrust."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = mac_ca(env, url, ent, label=label)
    return ca, env.boot.cas.issue(ca, csr_for(key), device(), actor="test"), key


def test_revocation_reaches_the_enterprise_ca(env: Env, tmp_path: Path) -> None:
    """RFC 9483 §4.2 / §5.3.2: a revocation in simtrust becomes an rr the CA accepts;
    a revocation of the whole SIM likewise; both audited."""
    env.boot.cas.forwarder.close()
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = mac_ca(env, url, ent)
        cert = env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
        serial = format(cert.serial_number, "x")
        # Queued in the revoking transaction, before anything was sent.
        env.boot.cas.revoke(serial, reason="keyCompromise", actor="test")
        assert "pending" == env.boot.cas.forwarder.state(serial)["state"]
        assert {"done": 1, "refused": 0, "retry": 0} == env.boot.cas.forwarder.forward()
    state = env.boot.cas.forwarder.state(serial)
    assert ("done", 1, None) == (state["state"], state["attempts"], state["last_error"])
    assert 0 == env.boot.cas.forwarder.pending()
    audited = env.rt.db.query("SELECT outcome FROM audit_events WHERE action = 'pki.revoke-delegate'")
    assert [("success",)] == [tuple(r) for r in audited]


def test_sim_revocation_is_sent_by_the_background_sender(env: Env, tmp_path: Path) -> None:
    """The serving process's sender is woken by the revocation (no explicit forward)."""
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = mac_ca(env, url, ent)
        cert = env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
        serial = format(cert.serial_number, "x")
        assert [serial] == env.boot.cas.revoke_sim(iccid(1).value, reason="cessationOfOperation",
                                                   actor="test")
        until(lambda: (env.boot.cas.forwarder.state(serial) or {}).get("state") == "done",
              "the background rr")


def test_refused_revocation_is_kept_with_the_cas_words(env: Env, tmp_path: Path) -> None:
    env.boot.cas.forwarder.close()
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    other = ent.issue(key.public_key(), "other", tmp_path / "other.pem")
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as first:
        relay = Relay(("127.0.0.1", port_of(first)))
        try:
            ca = mac_ca(env, f"http://127.0.0.1:{relay.port}/pkix/", ent)
            cert = env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
            assert cert.serial_number != other.serial_number
            # The enterprise CA now knows another certificate only: it refuses the rr.
            with mock_cmp(*MAC, "-rsp_cert", tmp_path / "other.pem") as second:
                relay._target = ("127.0.0.1", port_of(second))
                env.boot.cas.revoke(format(cert.serial_number, "x"), actor="test")
                assert {"done": 0, "refused": 1, "retry": 0} == env.boot.cas.forwarder.forward()
        finally:
            relay.close()
    state = env.boot.cas.forwarder.state(format(cert.serial_number, "x"))
    assert "refused" == state["state"]
    assert "wrong certificate to revoke" in state["last_error"]
    # Still revoked here: simtrust's own status does not depend on the enterprise CA.
    assert "revoked" == env.boot.cas.certificate(format(cert.serial_number, "x")).status
    assert {"done": 0, "refused": 0, "retry": 0} == env.boot.cas.forwarder.forward()


def test_unreachable_ca_is_retried_after_a_restart(env: Env, tmp_path: Path) -> None:
    """Durable outbox: the rr waits while the CA is down, and a new process (a fresh
    store object on the same database) sends it once the CA is back."""
    env.boot.cas.forwarder.close()
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    relay = Relay(("127.0.0.1", 9))
    try:
        with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as first:
            relay._target = ("127.0.0.1", port_of(first))
            ca = mac_ca(env, f"http://127.0.0.1:{relay.port}/pkix/", ent)
            cert = env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
        serial = format(cert.serial_number, "x")
        with socket.create_server(("127.0.0.1", 0)) as closed:
            relay._target = ("127.0.0.1", int(closed.getsockname()[1]))
        env.boot.cas.revoke(serial, reason="keyCompromise", actor="test")
        assert {"done": 0, "refused": 0, "retry": 1} == env.boot.cas.forwarder.forward()
        state = env.boot.cas.forwarder.state(serial)
        assert ("pending", 1) == (state["state"], state["attempts"])
        assert "unreachable" in state["last_error"]
        # Not due yet: nothing is sent again before the back-off.
        assert {"done": 0, "refused": 0, "retry": 0} == env.boot.cas.forwarder.forward()
        with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as back:
            relay._target = ("127.0.0.1", port_of(back))
            env.clock.advance(seconds=31)
            restarted = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit,
                                               env.clock)
            assert {"done": 1, "refused": 0, "retry": 0} == restarted.forwarder.forward()
    finally:
        relay.close()
    assert "done" == env.boot.cas.forwarder.state(serial)["state"]


def test_renewal_is_a_kur_with_ra_verified_pop(env: Env, tmp_path: Path) -> None:
    """RFC 9483 §4.1.3 kur with oldCertID and raVerified (§5.2.3.2). OpenSSL 3.0's mock
    server accepts a kur only for the certificate it hands out (-rsp_cert), so the
    renewal here is answered with the same certificate: the client-level exchange
    succeeds, the store refuses to record a renewal that is the renewed certificate."""
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    current = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    protection = CmpProtection("pbm", secret=SECRET.encode(), reference=REFERENCE.encode())
    renewal = (x509.CertificateSigningRequestBuilder().subject_name(current.subject)
               .add_extension(x509.SubjectAlternativeName(
                   [x509.UniformResourceIdentifier(f"urn:iccid:{iccid(1).value}")]),
                   critical=False).sign(key, hashes.SHA256()))
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem", "-accept_raverified") as url:
        client = CmpClient(url, protection, trust=ent.cert)
        assert current == client.update(renewal, current)
        ca = mac_ca(env, url, ent)
        with pytest.raises(StoreError) as same:
            env.boot.cas.issue(ca, renewal, device(), actor="test", renewing=current)
    assert "certificate being renewed" in str(same.value)
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)
    # A CA that does not take the RA's word for the POP says so (badPOP); the renewal
    # then goes as p10cr, the device's own signature being the proof.
    fresh = ent.issue(key.public_key(), "m", tmp_path / "fresh.pem")
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "fresh.pem") as url:
        with pytest.raises(PermissionDenied) as refused:
            CmpClient(url, protection, trust=ent.cert).update(renewal, current)
        assert ["badPOP"] == refused.value.context["failures"]
        ca = mac_ca(env, url, ent, label="acme-strict")
        assert fresh == env.boot.cas.issue(ca, renewal, device(), actor="test",
                                           renewing=current)
    assert "badPOP" in str(refused.value)
    # A CSR whose signature does not verify is never vouched for.
    forged = x509.load_der_x509_csr(_flip_signature(renewal))
    with pytest.raises(InvalidSignature):
        CmpClient("http://127.0.0.1:9/", protection, trust=ent.cert).update(forged, current)


def _flip_signature(csr: x509.CertificateSigningRequest) -> bytes:
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    return bytes(der)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_dissects_kur_and_rr(env: Env, tmp_path: Path) -> None:
    env.boot.cas.forwarder.close()
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    current = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    protection = CmpProtection("pbm", secret=SECRET.encode(), reference=REFERENCE.encode())
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem", "-accept_raverified") as url:
        relay = Relay(("127.0.0.1", port_of(url)))
        try:
            relayed = f"http://127.0.0.1:{relay.port}/pkix/"
            client = CmpClient(relayed, protection, trust=ent.cert)
            renewal = (x509.CertificateSigningRequestBuilder().subject_name(current.subject)
                       .sign(key, hashes.SHA256()))
            assert current == client.update(renewal, current)
            assert "revoked" == client.revoke(current.issuer, current.serial_number,
                                              x509.ReasonFlags.key_compromise)
        finally:
            relay.close()
    capture = tmp_path / "cmp.pcap"
    write_pcap(relay.connections, capture, 80)
    # kur (7), kup (8), certConf (24), pkiConf (19), rr (11), rp (12).
    assert ["7", "8", "24", "19", "11", "12"] == cmp_bodies(capture)
    assert "keyCompromise" in tshark(capture, "-Y", "cmp.body == 11", "-V")
    assert "" == dissector_problems(capture)


# -- CMP over HTTPS ----------------------------------------------------------------------


def test_cmp_over_https_checks_the_servers_certificate(env: Env, tmp_path: Path) -> None:
    """The CMP server's TLS certificate must chain to the registered CA (or a system CA)
    and name the host; otherwise a clear 503 ``delegate-tls``, nothing issued."""
    env.boot.cas.forwarder.close()
    ent = Enterprise(env, tmp_path)
    rogue = Enterprise(env, tmp_path, "Rogue CA")
    key = ec.generate_private_key(ec.SECP256R1())
    expected = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    good = tls_server_cert(ent, tmp_path, "cmp-tls", "localhost")
    foreign = tls_server_cert(rogue, tmp_path, "rogue-tls", "localhost")
    misnamed = tls_server_cert(ent, tmp_path, "other-tls", "cmp.other.example")
    with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem") as url:
        relays = {name: TlsRelay(port_of(url), *files)
                  for name, files in (("good", good), ("foreign", foreign),
                                      ("misnamed", misnamed))}
        try:
            cas = {name: mac_ca(env, f"https://localhost:{relay.port}/pkix/", ent,
                                label=f"acme-{name}") for name, relay in relays.items()}
            assert expected == env.boot.cas.issue(cas["good"], csr_for(key), device(),
                                                  actor="test")
            serial = format(expected.serial_number, "x")
            env.boot.cas.revoke(serial, actor="test")
            assert {"done": 1, "refused": 0, "retry": 0} == env.boot.cas.forwarder.forward()
            for name, why in (("foreign", "unable to get local issuer"),
                              ("misnamed", "Hostname mismatch")):
                with pytest.raises(StoreError) as refused:
                    env.boot.cas.issue(cas[name], csr_for(ec.generate_private_key(
                        ec.SECP256R1())), device(), actor="test")
                assert "delegate-tls" == refused.value.context["reason"], name
                assert why in str(refused.value), (name, str(refused.value))
            assert relays["foreign"].handshakes_failed >= 1
        finally:
            for relay in relays.values():
                relay.close()
    assert [serial] == [c.serial for c in env.boot.cas.certificates(iccid=iccid(1).value)]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_est_reenrolment_goes_to_the_enterprise_ca_as_kur(env: Env, tmp_path: Path) -> None:
    """A device re-enrolling over EST with its current certificate (TLS client auth) makes
    simtrust send a kur for that certificate. OpenSSL 3.0's mock server answers it with
    the certificate being renewed, which the device then gets as a 503, nothing recorded."""
    ent = Enterprise(env, tmp_path)
    applet = env.applet(1)
    label = f"{TENANT}.acme-cmp"
    with env.client(applet) as client:
        client.bootstrap()
        current = ent.issue(applet.generate_p256("tls"), "meter-1", tmp_path / "issued.pem")
        with mock_cmp(*MAC, "-rsp_cert", tmp_path / "issued.pem", "-accept_raverified") as url:
            relay = Relay(("127.0.0.1", port_of(url)))
            try:
                mac_ca(env, f"http://127.0.0.1:{relay.port}/pkix/", ent)
                assert current == client.enroll(label, "tls", existing_key=True)
                with pytest.raises(EnrolmentRefused) as refused:
                    client.reenroll(label, "tls", current)
            finally:
                relay.close()
    assert 503 == refused.value.context["status"]
    assert "certificate being renewed" in str(refused.value)
    assert [format(current.serial_number, "x")] == [
        c.serial for c in env.boot.cas.certificates(iccid=iccid(1).value)]
    capture = tmp_path / "est-kur.pcap"
    write_pcap(relay.connections, capture, 80)
    # p10cr/cp/certConf/pkiConf for the enrolment, then kur/kup/certConf/pkiConf.
    assert ["4", "3", "24", "19", "7", "8", "24", "19"] == cmp_bodies(capture)
