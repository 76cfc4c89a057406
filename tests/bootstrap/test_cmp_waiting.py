"""An enterprise CA that answers ``waiting`` (RFC 9483 §4.4): the device's EST request
gets 202 with Retry-After at once (RFC 7030 §4.2.3), simtrust polls the CA on in the
background, durably across a restart, and the device's retry of the same request gets
its certificate. OpenSSL's CMP mock server (``-poll_count``/``-check_after``) is the
enterprise CA, curl the device."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.bootstrap import CertificateAuthorities, EnrolmentRefused, key_binding

from .cmp_support import REFERENCE, SECRET, Enterprise, mac_ca, mock_cmp, until
from .conftest import TENANT, Env, iccid
from .test_standard_clients import run

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is needed")


class Device:
    """A GBA-bootstrapped device with an openssl key and its SIM-bound CSR, as curl sends it."""

    def __init__(self, env: Env, tmp_path: Path) -> None:
        applet = env.applet(1)
        with env.client(applet) as client:
            client.bootstrap()
        assert applet.b_tid is not None
        self.b_tid = applet.b_tid
        self.ks_naf = env.boot.bsf.naf_key(self.b_tid, env.boot.server.naf_id).key
        self.dir = tmp_path
        run("openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "key.pem",
            cwd=tmp_path)
        self.key: Any = serialization.load_pem_private_key(
            (tmp_path / "key.pem").read_bytes(), None)
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        (tmp_path / "req.cnf").write_text(
            "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
            "[dn]\nCN = meter-1\n"
            f"[attrs]\nchallengePassword = {key_binding(self.ks_naf, spki)}\n")
        run("openssl", "req", "-new", "-key", "key.pem", "-config", "req.cnf", "-outform",
            "DER", "-out", "req.der", cwd=tmp_path)
        run("openssl", "base64", "-in", "req.der", "-out", "req.b64", cwd=tmp_path)
        (tmp_path / "trust.pem").write_bytes(env.listener.trust_pem)
        self.base = f"https://localhost:{env.listener.port}/.well-known/est/{TENANT}.acme-cmp"

    def simpleenroll(self) -> tuple[str, dict[str, str], bytes]:
        """(status, headers, body) of one simpleenroll with the same CSR each time."""
        for name in ("out.bin", "headers.txt"):
            (self.dir / name).unlink(missing_ok=True)
        status = run("curl", "-sS", "--cacert", "trust.pem", "--digest", "-u",
                     f"{self.b_tid}:{base64.b64encode(self.ks_naf).decode()}",
                     "-H", "Content-Type: application/pkcs10",
                     "-H", "Content-Transfer-Encoding: base64", "--data-binary", "@req.b64",
                     "-D", "headers.txt", "-o", "out.bin", "-w", "%{http_code}",
                     f"{self.base}/simpleenroll", cwd=self.dir)
        headers: dict[str, str] = {}
        # The last response's headers (curl writes the 401 challenge's first).
        block = (self.dir / "headers.txt").read_text().strip().split("\r\n\r\n")[-1]
        for line in block.splitlines()[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, (self.dir / "out.bin").read_bytes()

    def certificate(self, body: bytes) -> x509.Certificate:
        (self.dir / "cert.b64").write_bytes(body)
        run("openssl", "base64", "-d", "-in", "cert.b64", "-out", "cert.p7", cwd=self.dir)
        run("openssl", "pkcs7", "-inform", "DER", "-in", "cert.p7", "-print_certs",
            "-out", "cert.pem", cwd=self.dir)
        return x509.load_pem_x509_certificate((self.dir / "cert.pem").read_bytes())


def mock_args(tmp_path: Path, *extra: str) -> tuple[Any, ...]:
    return ("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
            "-rsp_cert", tmp_path / "issued.pem", *extra)


def test_waiting_ca_answers_202_and_the_background_poll_delivers(env: Env,
                                                                 tmp_path: Path) -> None:
    ent = Enterprise(env, tmp_path)
    dev = Device(env, tmp_path)
    expected = ent.issue(dev.key.public_key(), "meter-1", tmp_path / "issued.pem")
    with mock_cmp(*mock_args(tmp_path, "-poll_count", "2", "-check_after", "5")) as url:
        mac_ca(env, url, ent)
        status, headers, body = dev.simpleenroll()
        assert "202" == status, body
        assert "1" == headers.get("retry-after"), headers  # 1 s after a waiting cp
        assert b"RFC 7030" in body
        assert [] == env.boot.cas.certificates(iccid=iccid(1).value)
        # The device retries early: still 202, nothing sent to the CA twice.
        assert "202" == dev.simpleenroll()[0]

        # The serving process's poller follows the CA's checkAfter (time is moved,
        # not waited for).
        def delivered() -> bool:
            env.clock.advance(seconds=5)
            env.boot.cas.delegated.start()
            env.boot.cas.delegated._worker.wake()
            return bool(env.boot.cas.certificates(iccid=iccid(1).value))

        until(delivered, "the polled certificate")
        status, _, body = dev.simpleenroll()
    assert "200" == status, body
    assert expected == dev.certificate(body)
    # Recorded once, audited once, and the retry after delivery is answered from the store.
    assert [format(expected.serial_number, "x")] == [
        c.serial for c in env.boot.cas.certificates(iccid=iccid(1).value)]
    issues = [e for e in env.rt.audit.query(limit=1000) if e.action == "pki.issue"]
    assert 1 == len(issues)


def test_waiting_enrolment_survives_a_restart(env: Env, tmp_path: Path) -> None:
    """Acknowledged (202) means durable: a new process on the same store resumes the
    CMP transaction (same transactionID, the CA's last nonce) and delivers."""
    env.boot.cas.delegated.close()
    ent = Enterprise(env, tmp_path)
    dev = Device(env, tmp_path)
    expected = ent.issue(dev.key.public_key(), "meter-1", tmp_path / "issued.pem")
    with mock_cmp(*mock_args(tmp_path, "-poll_count", "2", "-check_after", "2")) as url:
        mac_ca(env, url, ent)
        assert "202" == dev.simpleenroll()[0]
        restarted = CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock)
        outcomes: list[dict[str, int]] = []
        for _ in range(5):
            env.clock.advance(seconds=2)
            outcomes.append(restarted.delegated.poll())
            if outcomes[-1]["issued"]:
                break
        # waiting cp -> pollRep (checkAfter 2) -> final cp after the second poll.
        assert [{"issued": 0, "waiting": 1, "failed": 0},
                {"issued": 1, "waiting": 0, "failed": 0}] == outcomes
        status, _, body = dev.simpleenroll()
    assert "200" == status, body
    assert expected == dev.certificate(body)


def test_failed_waiting_enrolment_is_reported_once(env: Env, tmp_path: Path) -> None:
    """A certificate the checks refuse (here: for another key) fails the waiting row;
    the device's next retry gets the problem (503), the one after starts afresh."""
    env.boot.cas.delegated.close()
    ent = Enterprise(env, tmp_path)
    dev = Device(env, tmp_path)
    ent.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), "other",
              tmp_path / "issued.pem")
    with mock_cmp(*mock_args(tmp_path, "-poll_count", "1", "-check_after", "1")) as url:
        mac_ca(env, url, ent)
        assert "202" == dev.simpleenroll()[0]
        env.clock.advance(seconds=2)
        assert {"issued": 0, "waiting": 0, "failed": 1} == env.boot.cas.delegated.poll()
        status, _, body = dev.simpleenroll()
        assert "503" == status
        assert b"not for the CSR key" in body
        assert "202" == dev.simpleenroll()[0]  # a fresh transaction
    assert [] == env.boot.cas.certificates(iccid=iccid(1).value)


def test_device_client_waits_out_the_202(env: Env, tmp_path: Path) -> None:
    """simtrust's own device side follows RFC 7030 §4.2.3: on 202 it sends the same
    request again after Retry-After (the wait here moves the clock and lets the
    server's poller run instead of sleeping)."""
    env.boot.cas.delegated.close()
    ent = Enterprise(env, tmp_path)
    applet = env.applet(1)
    with env.client(applet) as client:
        client.bootstrap()
        expected = ent.issue(applet.generate_p256("tls"), "meter-1", tmp_path / "issued.pem")
        with mock_cmp(*mock_args(tmp_path, "-poll_count", "1", "-check_after", "1")) as url:
            mac_ca(env, url, ent)
            waits: list[float] = []

            def wait(seconds: float) -> None:
                waits.append(seconds)
                env.clock.advance(seconds=seconds)
                env.boot.cas.delegated.poll()

            client.sleep = wait
            cert = client.enroll(f"{TENANT}.acme-cmp", "tls", existing_key=True)
        assert expected == cert
        assert [1.0] == waits
        # A CA that keeps the request waiting: the device gives up after max_wait.
        with mock_cmp(*mock_args(tmp_path, "-poll_count", "50", "-check_after", "1")) as url:
            mac_ca(env, url, ent, label="acme-slow")
            client.sleep = waits.append
            client.max_wait = 3
            with pytest.raises(EnrolmentRefused) as slow:
                client.enroll(f"{TENANT}.acme-slow", "tls", existing_key=True)
    assert 202 == slow.value.context["status"]
    assert [1.0, 1.0, 1.0, 1.0] == waits
