"""A tenant CA delegated to the enterprise's CMP server: OpenSSL's CMP mock server
(``openssl cmp -port``) is the independent peer on loopback; curl enrols through
simtrust's EST front; wrong secrets, rejections, foreign signers and certificates for
another key are refused with clear problems; tshark dissects the CMP traffic."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from simtrust.api import create_app
from simtrust.bootstrap import CertificateAuthorities, CmpProtection, key_binding
from simtrust.bootstrap._cmp import CmpClient
from simtrust.cli import app as cli_app
from simtrust.cli import main as cli_main
from simtrust.errors import InvalidInput, InvalidSignature, PermissionDenied, StoreError

from .cmp_support import (
    OPENSSL,
    REFERENCE,
    SECRET,
    TSHARK,
    Enterprise,
    Relay,
    cmp_bodies,
    csr_for,
    device,
    dissector_problems,
    mac_ca,
    mock_cmp,
    port_of,
    write_pcap,
)
from .conftest import TENANT, Env, iccid
from .test_standard_clients import run

pytestmark = pytest.mark.skipif(OPENSSL is None or shutil.which("curl") is None,
                                reason="openssl and curl are needed")


def test_device_enrols_through_the_est_front_from_the_cmp_mock(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    # The device side, as a standard EST client: a GBA bootstrap, openssl's key and CSR.
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
    b_tid = applet.b_tid
    assert b_tid is not None
    ks_naf = env.boot.bsf.naf_key(b_tid, env.boot.server.naf_id).key
    run("openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "key.pem",
        cwd=tmp_path)
    key = serialization.load_pem_private_key((tmp_path / "key.pem").read_bytes(), None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    # What the enterprise CA issues for that key: the mock server hands out a fixed answer.
    expected = ent.issue(key.public_key(), "meter-1", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-srv_cert", ent.cert_file, "-srv_key", ent.key_file,
                  "-rsp_cert", tmp_path / "issued.pem") as url, \
            TestClient(create_app(env.rt)) as api:
        admin = env.rt.tenants.create_key("tenant-admin", "k", TENANT)
        made = api.post("/v1/pki/cas", headers={"Authorization": f"Bearer {admin.secret}"},
                        json={"label": "acme-cmp", "mode": "delegated", "delegate_kind": "cmp",
                              "cert_pem": ent.cert_pem.decode(), "cmp_url": url,
                              "cmp_protection": "pbm", "cmp_secret": SECRET,
                              "cmp_reference": REFERENCE})
        assert 201 == made.status_code, made.text
        assert ("delegated", "cmp", url) == (made.json()["mode"], made.json()["delegate_kind"],
                                             made.json()["delegate_url"])
        assert SECRET not in made.text
        (tmp_path / "req.cnf").write_text(
            "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
            "[dn]\nCN = meter-1\n"
            f"[attrs]\nchallengePassword = {key_binding(ks_naf, spki)}\n")
        run("openssl", "req", "-new", "-key", "key.pem", "-config", "req.cnf", "-outform",
            "DER", "-out", "req.der", cwd=tmp_path)
        run("openssl", "base64", "-in", "req.der", "-out", "req.b64", cwd=tmp_path)
        trust = tmp_path / "trust.pem"
        trust.write_bytes(env.listener.trust_pem)
        base = f"https://localhost:{env.listener.port}/.well-known/est/{TENANT}.acme-cmp"
        run("curl", "-sS", "--fail", "--cacert", trust, "--digest", "-u",
            f"{b_tid}:{base64.b64encode(ks_naf).decode()}",
            "-H", "Content-Type: application/pkcs10", "-H", "Content-Transfer-Encoding: base64",
            "--data-binary", "@req.b64", "-o", "cert.b64", f"{base}/simpleenroll", cwd=tmp_path)
        # The same device at a CA registered with the wrong secret: a clear refusal.
        env.boot.cas.register_delegated(
            TENANT, "acme-cmp-wrong", kind="cmp", cmp_url=url, ca_pem=ent.cert_pem,
            actor="test", cmp=CmpProtection("pbm", secret=b"not-it",
                                            reference=REFERENCE.encode()))
        status = run("curl", "-sS", "--cacert", trust, "--digest", "-u",
                     f"{b_tid}:{base64.b64encode(ks_naf).decode()}",
                     "-H", "Content-Type: application/pkcs10",
                     "-H", "Content-Transfer-Encoding: base64", "--data-binary", "@req.b64",
                     "-o", "refused.txt", "-w", "%{http_code}",
                     base.replace("acme-cmp", "acme-cmp-wrong") + "/simpleenroll", cwd=tmp_path)
    assert "403" == status
    assert "shared secret differs" in (tmp_path / "refused.txt").read_text()
    run("openssl", "base64", "-d", "-in", "cert.b64", "-out", "cert.p7", cwd=tmp_path)
    run("openssl", "pkcs7", "-inform", "DER", "-in", "cert.p7", "-print_certs",
        "-out", "cert.pem", cwd=tmp_path)
    got = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    assert expected == got
    assert "cert.pem: OK" in run("openssl", "verify", "-CAfile", ent.cert_file, "cert.pem",
                                 cwd=tmp_path)
    issued = env.boot.cas.certificates(iccid=iccid(1).value)
    assert [format(expected.serial_number, "x")] == [c.serial for c in issued]


def test_sealed_secret_and_registration_errors(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    ca = mac_ca(env, "http://127.0.0.1:9/pkix/", ent)
    assert ("cmp", "http://127.0.0.1:9/pkix/") == (ca.delegate_kind, ca.delegate_url)
    assert SECRET not in str(ca.to_json())
    row = env.rt.db.query_one("SELECT delegate_config, delegate_secret_sealed FROM boot_cas"
                              " WHERE ca_id = ?", (ca.ca_id,))
    assert row is not None
    assert SECRET.encode() not in bytes(row[1])
    assert SECRET not in str(row[0])
    assert SECRET not in repr(CmpProtection("pbm", secret=SECRET.encode()))
    cas = env.boot.cas
    with pytest.raises(InvalidInput):
        CmpProtection("pbm", secret=b"")
    with pytest.raises(InvalidInput):
        cas.register_delegated(TENANT, "x1", kind="cmp", cmp_url="ftp://h/", ca_pem=ent.cert_pem,
                               cmp=CmpProtection("pbm", secret=b"s"), actor="test")
    with pytest.raises(InvalidInput):
        cas.register_delegated(TENANT, "x2", kind="cmp", cmp_url="http://h/",
                               ca_pem=ent.cert_pem, actor="test")
    with pytest.raises(InvalidInput):
        cas.register_delegated(TENANT, "x3", kind="scep", ca_pem=ent.cert_pem, actor="test")
    # An unreachable CMP server is a clear 503 problem, nothing recorded.
    with pytest.raises(StoreError) as unreachable:
        cas.issue(ca, csr_for(ec.generate_private_key(ec.SECP256R1())), device(), actor="t")
    assert "delegate-unreachable" == unreachable.value.context["reason"]
    assert [] == cas.certificates(iccid=iccid(1).value)


def test_wrong_secret_is_refused_with_a_clear_problem(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = mac_ca(env, url, ent, secret="not-the-secret")
        with pytest.raises(PermissionDenied) as refused:
            env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
    assert "delegate-auth" == refused.value.context["reason"]
    assert "shared secret differs" in str(refused.value)
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


def test_server_rejection_carries_its_failure_and_text(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem", "-pkistatus", "2", "-failure", "19",
                  "-statusstring", "device unknown to the enterprise") as url:
        ca = mac_ca(env, url, ent)
        with pytest.raises(PermissionDenied) as refused:
            env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
    assert "delegate-refused" == refused.value.context["reason"]
    assert "badCertTemplate" in str(refused.value)
    assert "device unknown to the enterprise" in str(refused.value)
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_signature_protection_with_a_client_certificate(env: Env, tmp_path: Path,
                                                        kind: str) -> None:
    ent = Enterprise(env, tmp_path)
    client_key: Any = (ec.generate_private_key(ec.SECP256R1()) if kind == "p256"
                       else ed25519.Ed25519PrivateKey.generate())
    client_cert = ent.issue(client_key.public_key(), "simtrust RA", tmp_path / "ra.pem",
                            client=True)
    key = ec.generate_private_key(ec.SECP256R1())
    expected = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_cert", ent.cert_file, "-srv_key", ent.key_file,
                  "-srv_trusted", ent.cert_file, "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = env.boot.cas.register_delegated(
            TENANT, "acme-cmp-sig", kind="cmp", cmp_url=url, ca_pem=ent.cert_pem, actor="test",
            cmp=CmpProtection("signature", cert=client_cert, key=client_key))
        # A fresh store object: the client key is unsealed from the store.
        cas = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock)
        assert expected == cas.issue(ca, csr_for(key), device(), actor="test")
    assert "PRIVATE" not in str(ca.to_json())


def test_answer_signed_by_another_ca_is_refused(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    rogue = Enterprise(env, tmp_path, "Rogue CA")
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = ent.issue(client_key.public_key(), "simtrust RA", tmp_path / "ra.pem",
                            client=True)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_cert", rogue.cert_file, "-srv_key", rogue.key_file,
                  "-srv_trusted", ent.cert_file, "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = env.boot.cas.register_delegated(
            TENANT, "acme-cmp-sig", kind="cmp", cmp_url=url, ca_pem=ent.cert_pem, actor="test",
            cmp=CmpProtection("signature", cert=client_cert, key=client_key))
        with pytest.raises(InvalidSignature) as refused:
            env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
    assert "delegate-protection" == refused.value.context["reason"]


def test_certificate_for_another_key_is_rejected(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    ent.issue(other.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem") as url:
        ca = mac_ca(env, url, ent)
        with pytest.raises(StoreError) as refused:
            env.boot.cas.issue(ca, csr_for(ec.generate_private_key(ec.SECP256R1())), device(),
                               actor="test")
    assert "not for the CSR key" in str(refused.value)
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_dissects_the_cmp_exchange(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem") as url:
        relay = Relay(("127.0.0.1", port_of(url)))
        try:
            ca = mac_ca(env, f"http://127.0.0.1:{relay.port}/pkix/", ent)
            env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
        finally:
            relay.close()
    capture = tmp_path / "cmp.pcap"
    write_pcap(relay.connections, capture, 80)
    # p10cr (4), cp (3), certConf (24), pkiConf (19), as tshark's CMP dissector reads the
    # application/pkixcmp bodies.
    assert ["4", "3", "24", "19"] == cmp_bodies(capture)
    assert "" == dissector_problems(capture)


def test_cli_registers_a_cmp_delegate_that_enrols(env: Env, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    expected = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    home = str(env.rt.settings.home)
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem") as url:
        done = CliRunner().invoke(cli_app, [
            "pki", "ca-delegate", "acme-cli", "--tenant", TENANT, "--cert", str(ent.cert_file),
            "--kind", "cmp", "--cmp-url", url, "--secret-file", str(secret_file),
            "--reference", REFERENCE, "--json"], env={"SIMTRUST_HOME": home})
        assert 0 == done.exit_code, done.stdout + done.stderr
        shown = json.loads(done.stdout)
        assert ("cmp", url) == (shown["delegate_kind"], shown["delegate_url"])
        assert SECRET not in done.stdout
        cas = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock)
        assert expected == cas.issue(cas.find(TENANT, "acme-cli"), csr_for(key), device(),
                                     actor="test")
    shown_help = CliRunner().invoke(cli_app, ["pki", "ca-delegate", "--help"])
    assert 0 == shown_help.exit_code, shown_help.output
    assert "--secret-file" in shown_help.output
    monkeypatch.setenv("SIMTRUST_HOME", home)
    for args in (["--kind", "cmp"], ["--kind", "scep"],
                 ["--kind", "cmp", "--cmp-url", "http://h/", "--protection", "signature"]):
        with pytest.raises(SystemExit) as bad:
            cli_main(["pki", "ca-delegate", "acme-bad", "--tenant", TENANT, "--cert",
                      str(ent.cert_file), *args])
        err = capsys.readouterr().err
        assert 2 == bad.value.code, (args, err)
        assert 1 == len(err.strip().splitlines()), err


def test_api_registration_problems_and_listing(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    admin = env.rt.tenants.create_key("tenant-admin", "k", TENANT)
    auth = {"Authorization": f"Bearer {admin.secret}"}
    base = {"label": "acme-cmp", "mode": "delegated", "delegate_kind": "cmp",
            "cert_pem": ent.cert_pem.decode(), "cmp_url": "http://127.0.0.1:9/pkix/"}
    with TestClient(create_app(env.rt)) as api:
        for body, field in (({}, "cmp_secret"),
                            ({"cmp_protection": "signature"}, "cmp_client_cert_pem"),
                            ({"cmp_secret": "s", "cmp_url": "ftp://x/"}, "cmp_url"),
                            ({"cmp_secret": "s", "cmp_recipient": "not a name"},
                             "cmp_recipient"),
                            ({"cmp_protection": "signature", "cmp_client_cert_pem": "x",
                              "cmp_client_key_pem": "y"}, "cmp_client_key_pem")):
            bad = api.post("/v1/pki/cas", headers=auth, json={**base, **body})
            assert 400 == bad.status_code, (body, bad.text)
            assert "application/problem+json" == bad.headers["content-type"]
            assert field == bad.json().get("field"), bad.json()
        made = api.post("/v1/pki/cas", headers=auth, json={**base, "cmp_secret": SECRET,
                                                          "cmp_protection": "pbmac1"})
        assert 201 == made.status_code, made.text
        listed = api.get("/v1/pki/cas", headers=auth)
    assert {"est", "cmp"} >= {c["delegate_kind"] for c in listed.json()} - {None}
    assert SECRET not in listed.text


def test_delayed_enrolment_is_polled_within_bounds(env: Env, tmp_path: Path) -> None:
    """RFC 9483 §4.4 at the client: waiting, pollReq/pollRep, then the certificate; a
    server that asks to come back later than the bound is a clear problem. (Through
    the store, a waiting answer becomes EST 202: test_cmp_waiting.py.)"""
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    expected = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    mac = ("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
           "-rsp_cert", tmp_path / "issued.pem")
    protection = CmpProtection("pbm", secret=SECRET.encode(), reference=REFERENCE.encode())
    with mock_cmp(*mac, "-poll_count", "2", "-check_after", "1") as url:
        assert expected == CmpClient(url, protection, trust=ent.cert).enrol(csr_for(key))
    with mock_cmp(*mac, "-poll_count", "2", "-check_after", "3600") as url, \
            pytest.raises(StoreError) as slow:
        CmpClient(url, protection, trust=ent.cert).enrol(csr_for(key))
    assert "delegate-waiting" == slow.value.context["reason"]
    assert "3600 s" in str(slow.value)


def test_unprotected_answer_is_refused(env: Env, tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem", "-send_unprotected") as url:
        ca = mac_ca(env, url, ent)
        with pytest.raises(InvalidSignature) as refused:
            env.boot.cas.issue(ca, csr_for(key), device(), actor="test")
    assert "delegate-protection" == refused.value.context["reason"]
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)
