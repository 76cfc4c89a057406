"""``tls`` holds only for a certificate its CA says is unrevoked when the frame arrives:
the check asks simtrust's own tier-2 OCSP responder, judges the signed answer and keeps it
with the datum, where OpenSSL (an independent implementation) verifies it against the CA.
A frame sent over a real mTLS connection (curl) under a certificate the CA issued and then
revoked gets ``tls: false`` and a lower score; the anchored receipts commit to the OCSP
response, so a ledger proof says why. OCSP answers that prove nothing about the
certificate (another CA's, another certificate's, stale, malformed) are refused."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.api.stream_ingest import MtlsStreamIngest
from simtrust.errors import InvalidSignature
from simtrust.runtime import Runtime
from simtrust.streams import MeterReading, encode_reading, verify_tls_receipt
from simtrust.streams._ocsp_check import ocsp_status
from tests.conftest import close_runtime, make_runtime
from tests.streams.test_tls_ingest import _curl, _issue, _tls, pytestmark  # noqa: F401
from tests.streams.world import TENANT, setup_tenant, sim_meter


@pytest.fixture
def rt(store_kind: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(store_kind, tmp_path / "home")
    yield runtime
    close_runtime(runtime)


def _openssl_ocsp(response_b64: str, ca: Path, cert: Path, tmp: Path) -> str:
    (tmp / "ocsp.der").write_bytes(base64.b64decode(response_b64))
    done = subprocess.run(["openssl", "ocsp", "-respin", "ocsp.der", "-issuer", str(ca),
                           "-sha256", "-cert", str(cert), "-CAfile", str(ca), "-no_nonce"],
                          cwd=tmp, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def test_a_revoked_certificate_gets_no_tls_over_a_real_mtls_connection(
        rt: Runtime, tmp_path: Path) -> None:
    setup_tenant(rt)
    meter = sim_meter(rt, 1)
    streams = rt.streams
    channel = streams.open_channel(TENANT, meter.author.announce.to_bytes(), actor="t")["id"]
    streams.register_meter(TENANT, channel, meter.credential, actor="t")
    rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101")
    ca = rt.bootstrap.cas.create_hosted(TENANT, "meters", common_name="Acme meters", actor="t")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    own = _issue(rt, meter, ca, tmp_path / "own")

    listener = BootstrapListener(rt.bootstrap, "127.0.0.1", 0, hostnames=["localhost"],
                                 streams=MtlsStreamIngest(streams)).start()
    try:
        trust = tmp_path / "trust.pem"
        trust.write_bytes(listener.trust_pem)
        url = f"https://localhost:{listener.port}/streams/channels/{channel}/messages"

        def send(wh: int, at: int) -> dict[str, Any]:
            frame = meter.author.publish(encode_reading(MeterReading(meter.meter_did, wh, at)))
            status, answer = _curl(url, trust, frame.to_bytes(), tmp_path, own)
            assert 201 == status, answer
            return answer

        good = send(1_000, 100)
        assert _tls(good)["satisfied"]
        assert "OCSP good" in _tls(good)["evidence"]
        node = streams.provenance(good["message_id"])["nodes"][good["message_id"]]
        checked = _openssl_ocsp(node["tls_ocsp_response"], ca_file, own[0], tmp_path)
        assert "Response verify OK" in checked
        assert ": good" in checked

        serial = rt.bootstrap.cas.status.certificates(iccid=meter.iccid)[0].serial
        rt.bootstrap.cas.status.revoke(serial, reason="keyCompromise", actor="t")

        # The same client, the same certificate, a new TLS connection: the handshake
        # still verifies the chain, the annotation does not hold, the score drops by
        # exactly the weight of `tls`.
        revoked = send(1_010, 110)
        assert not _tls(revoked)["satisfied"]
        assert "is revoked: OCSP revoked" in _tls(revoked)["evidence"]
        weights = streams.policy(TENANT).weights
        assert Fraction(weights["tls"], sum(weights.values())) == (
            Fraction(good["score"]) - Fraction(revoked["score"]))
        node = streams.provenance(revoked["message_id"])["nodes"][revoked["message_id"]]
        checked = _openssl_ocsp(node["tls_ocsp_response"], ca_file, own[0], tmp_path)
        assert "Response verify OK" in checked
        assert ": revoked" in checked

        # From the ledger: each anchored receipt commits to the OCSP response checked at
        # arrival, and that response, signed by the CA, says why tls is what it is.
        assert 2 == streams.anchor(channel, actor="t")["tls_receipts"]
        assert [("good", True), ("revoked", False)] == [
            (proven["tls"]["ocsp"]["status"], proven["tls"]["satisfied"])
            for proven in (rt.prove_reading(d["message_id"]) for d in (good, revoked))]
        receipt = streams.evidence.tls_receipt(good["message_id"])
        revoked_ocsp = streams.evidence.tls_status_of(revoked["message_id"])
        assert receipt is not None
        assert revoked_ocsp is not None
        certificate, annotation, proof = receipt
        assert annotation is not None
        assert proof is not None
        with pytest.raises(InvalidSignature, match="another OCSP response"):
            verify_tls_receipt(annotation, certificate, proof, ocsp=revoked_ocsp,
                               anchor_at=rt.ledger.anchor_covering)
    finally:
        listener.stop()


def test_ocsp_answers_that_prove_nothing_are_refused(rt: Runtime, tmp_path: Path) -> None:
    setup_tenant(rt, sims=3)
    cas = rt.bootstrap.cas
    first = cas.create_hosted(TENANT, "one", common_name="One", actor="t")
    second = cas.create_hosted(TENANT, "two", common_name="Two", actor="t")
    ders = []
    for n, ca in ((1, first), (2, first), (3, second)):
        cert_file, _key = _issue(rt, sim_meter(rt, n), ca, tmp_path / f"c{n}")
        ders.append(x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(
            serialization.Encoding.DER))
    proofs = [cas.status.ocsp_of(der) for der in ders]
    assert all(p is not None for p in proofs)
    (issuer_a, ocsp_a), (_, ocsp_b), (issuer_c, ocsp_c) = proofs  # type: ignore[misc]
    now = rt.clock()
    assert "good" == ocsp_status(ders[0], issuer_a, ocsp_a, now)[0]
    refused = {
        "another certificate of the same CA": ocsp_status(ders[0], issuer_a, ocsp_b, now),
        "another CA's answer": ocsp_status(ders[0], issuer_a, ocsp_c, now),
        "another CA named as issuer": ocsp_status(ders[0], issuer_c, ocsp_a, now),
        "a day later": ocsp_status(ders[0], issuer_a, ocsp_a, now + timedelta(days=1)),
        "malformed": ocsp_status(ders[0], issuer_a, ocsp_a[:-7], now),
        "a flipped signature bit": ocsp_status(
            ders[0], issuer_a, ocsp_a[:-1] + bytes([ocsp_a[-1] ^ 1]), now),
    }
    assert dict.fromkeys(refused, "invalid") == {n: v[0] for n, v in refused.items()}
