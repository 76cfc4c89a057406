"""The ``tls`` annotation proves how a datum arrived: frames posted by curl (OpenSSL) over
mutually-authenticated TLS to the real ingest listener carry the fingerprint of the SIM's
tier-2 client certificate, bound to the datum id and signed by the receiving node; the
certificate is kept in the provenance graph. No client certificate, another SIM's
certificate, and a later revocation each leave ``tls`` unsatisfied."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from simtrust.api.bootstrap_listener import BootstrapListener
from simtrust.api.stream_ingest import MtlsStreamIngest, openapi_document
from simtrust.bootstrap import DeviceClaims
from simtrust.errors import InvalidSignature, SimtrustError
from simtrust.runtime import Runtime
from simtrust.streams import Annotation, MeterReading, encode_reading, verify_tls_receipt
from tests.conftest import close_runtime, make_runtime
from tests.streams.world import TENANT, Meter, setup_tenant, sim_meter

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are needed",
)


@pytest.fixture
def rt(store_kind: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(store_kind, tmp_path / "home")
    yield runtime
    close_runtime(runtime)


def _issue(rt: Runtime, meter: Meter, ca: Any, folder: Path) -> tuple[Path, Path]:
    cert, key_der = rt.bootstrap.cas.generate_key_and_issue(
        ca, DeviceClaims(TENANT, meter.iccid, meter.imsi, meter.imei), actor="test")
    folder.mkdir()
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key = serialization.load_der_private_key(key_der, None)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _curl(url: str, trust: Path, frame: bytes, tmp: Path,
          client: tuple[Path, Path] | None) -> tuple[int, dict[str, Any]]:
    (tmp / "frame.bin").write_bytes(frame)
    args = ["curl", "-sS", "--cacert", str(trust), "-H", "Content-Type: application/octet-stream",
            "--data-binary", "@frame.bin", "-o", "answer.json", "-w", "%{http_code}"]
    if client is not None:
        args += ["--cert", str(client[0]), "--key", str(client[1])]
    done = subprocess.run([*args, url], cwd=tmp, capture_output=True, text=True, timeout=60,
                          check=False)
    assert 0 == done.returncode, done.stderr
    assert int(done.stdout) in declared_statuses()
    return int(done.stdout), json.loads((tmp / "answer.json").read_text())


def _openssl_fingerprint(cert_file: Path) -> str:
    out = subprocess.run(["openssl", "x509", "-in", str(cert_file), "-noout", "-fingerprint",
                          "-sha256"], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip().split("=", 1)[1].replace(":", "").lower()


def _tls(answer: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in answer["annotations"] if a["kind"] == "tls")


def test_frames_over_mtls_are_bound_to_the_client_certificate(rt: Runtime,
                                                               tmp_path: Path) -> None:
    setup_tenant(rt)
    meter, other = sim_meter(rt, 1), sim_meter(rt, 2)
    streams = rt.streams
    channel = streams.open_channel(TENANT, meter.author.announce.to_bytes(), actor="t")["id"]
    streams.register_meter(TENANT, channel, meter.credential, actor="t")
    rt.subscriber.attach.decide(meter.imsi, meter.imei, "00101")
    ca = rt.bootstrap.cas.create_hosted(TENANT, "meters", common_name="Acme meters", actor="t")
    own = _issue(rt, meter, ca, tmp_path / "own")
    foreign = _issue(rt, other, ca, tmp_path / "foreign")

    listener = BootstrapListener(rt.bootstrap, "127.0.0.1", 0, hostnames=["localhost"],
                                 streams=MtlsStreamIngest(streams)).start()
    try:
        trust = tmp_path / "trust.pem"
        trust.write_bytes(listener.trust_pem)
        url = f"https://localhost:{listener.port}/streams/channels/{channel}/messages"

        def frame(wh: int, at: int) -> bytes:
            reading = encode_reading(MeterReading(meter.meter_did, wh, at))
            return meter.author.publish(reading).to_bytes()

        # Over mTLS with the SIM's own tier-2 certificate: `tls` holds, naming the
        # certificate's fingerprint as openssl computes it, signed by the node.
        status, answer = _curl(url, trust, frame(1_000, 100), tmp_path, own)
        assert 201 == status, answer
        tls = _tls(answer)
        fingerprint = _openssl_fingerprint(own[0])
        assert tls["satisfied"]
        assert f"sha256:{fingerprint}" in tls["evidence"]
        assert answer["message_id"] == tls["datum"]
        Annotation(tls["datum"], "tls", True, bytes.fromhex(tls["annotator"]), tls["evidence"],
                   bytes.fromhex(tls["signature"])).verify()
        first = answer["message_id"]
        graph = streams.provenance(first)
        kept = base64.b64decode(graph["nodes"][first]["tls_client_certificate"])
        assert fingerprint == hashlib.sha256(kept).hexdigest()

        # No client certificate: refused outright, nothing stored.
        status, answer = _curl(url, trust, frame(1_010, 110), tmp_path, None)
        assert 403 == status
        assert answer["type"].endswith("/client-certificate-required")
        assert 2 == streams.channel(channel)["messages"]

        # Another SIM's certificate: stored (the frame is the author's), `tls` does not hold.
        status, answer = _curl(url, trust, frame(1_010, 110), tmp_path, foreign)
        assert 201 == status, answer
        assert not _tls(answer)["satisfied"]
        assert "not a certificate of the channel's SIM" in _tls(answer)["evidence"]

        # A forged frame over mTLS: the RFC 9457 problem of the HTTP API.
        signed = frame(1_020, 120)
        status, answer = _curl(url, trust, signed[:-1] + bytes([signed[-1] ^ 1]), tmp_path,
                               own)
        assert 400 == status
        assert "forged" == answer["verdict"]

        # The same frame format posted to the HTTP API (no mTLS): `tls` does not hold.
        plain = streams.publish(channel, frame(1_030, 130), actor="t")
        assert "no client certificate" in _tls(plain)["evidence"]

        # Revoking the certificate it arrived under takes `tls` away from the datum.
        before = streams.score(first)
        rt.bootstrap.cas.revoke_sim(meter.iccid, reason="keyCompromise", actor="t")
        annotations = [a for a in streams.provenance(first)["nodes"][first]["annotations"]
                       if a["kind"] == "tls"]
        assert [True, False] == [a["satisfied"] for a in annotations]
        assert "revoked" in annotations[-1]["evidence"]
        assert streams.score(first) < before
        # ... and a later frame under the revoked certificate (the handshake checks the
        # chain only) is stored with `tls` unsatisfied.
        status, answer = _curl(url, trust, frame(1_040, 140), tmp_path, own)
        assert 201 == status, answer
        assert not _tls(answer)["satisfied"]
        assert "is revoked" in _tls(answer)["evidence"]

        # Anchored, the receipts prove from the ledger which certificate each datum
        # arrived under (at arrival: the later revocation is in the provenance graph).
        assert 3 == streams.anchor(channel, actor="t")["tls_receipts"]
        proven = rt.prove_reading(first)
        assert (True, True, fingerprint) == (
            proven["tls"]["verified"], proven["tls"]["satisfied"],
            proven["tls"]["client_certificate_sha256"])
        receipt = streams.evidence.tls_receipt(first)
        assert receipt is not None
        certificate, annotation, proof = receipt
        assert annotation is not None
        assert proof is not None
        assert proven["tls"]["anchor"] == proof["anchor"]
        foreign_der = subprocess.run(
            ["openssl", "x509", "-in", str(foreign[0]), "-outform", "DER"],
            capture_output=True, timeout=60, check=True).stdout
        with pytest.raises(InvalidSignature):  # another certificate
            verify_tls_receipt(annotation, foreign_der, proof,
                               anchor_at=rt.ledger.anchor_covering)
        with pytest.raises(InvalidSignature):  # an altered receipt
            verify_tls_receipt({**annotation, "satisfied": False}, certificate, proof,
                               anchor_at=rt.ledger.anchor_covering)
        with pytest.raises(InvalidSignature):  # re-signed, but not the anchored leaf
            forged = Annotation(first, "tls", True, bytes.fromhex(annotation["annotator"]),
                                annotation["evidence"] + " ", b"")
            signed = streams.evidence.annotator.sign(forged.body())
            verify_tls_receipt({**forged.to_json(), "signature": signed.hex()}, certificate,
                               proof, anchor_at=rt.ledger.anchor_covering)
    finally:
        listener.stop()


def test_ingest_refuses_what_is_not_a_frame_post(rt: Runtime, tmp_path: Path) -> None:
    ingest = MtlsStreamIngest(rt.streams)
    status, _, served = ingest.handle("GET", "/streams/openapi.json", "", b"", None, "::1")
    document = json.loads(served)
    validate(document)
    assert (200, document) == (status, openapi_document())
    declared = {int(code) for code in document["paths"][
        "/streams/channels/{channel}/messages"]["post"]["responses"]}
    assert {201, 400, 403, 404, 405, 409, 411, 413, 415, 422, 503} == declared
    der = b"\x30\x03\x02\x01\x01"
    path = "/streams/channels/" + "ab" * 32 + "/messages"
    assert 404 == ingest.handle("POST", "/streams/x", "application/octet-stream", b"x", der,
                                "::1")[0]
    status, headers, _ = ingest.handle("GET", path, "", b"", der, "::1")
    assert (405, ("Allow", "POST")) == (status, headers[-1])
    assert 415 == ingest.handle("POST", path, "text/plain", b"x", der, "::1")[0]
    assert 400 == ingest.handle("POST", path, "application/octet-stream", b"", der, "::1")[0]
    status, _, body = ingest.handle("POST", path, "application/octet-stream", b"x", der, "::1")
    assert 404 == status
    assert json.loads(body)["type"].endswith("/not-found")


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(path=st.text(max_size=90), body=st.binary(max_size=300),
       content_type=st.sampled_from(["application/octet-stream", "", "text/plain"]))
def test_ingest_answers_anything_with_a_status_never_an_exception(
        sqlite_rt: Runtime, path: str, body: bytes, content_type: str) -> None:
    channel = "/streams/channels/" + "cd" * 32 + "/messages"
    for target in (path, channel):
        status, headers, payload = MtlsStreamIngest(sqlite_rt.streams).handle(
            "POST", target, content_type, body, b"\x30\x00", "127.0.0.1")
        assert status in declared_statuses()
        assert ("Content-Type", "application/problem+json") in headers
        assert json.loads(payload)["status"] == status


@pytest.fixture
def sqlite_rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime("sqlite", tmp_path / "fuzz")
    yield runtime
    close_runtime(runtime)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(annotation=st.dictionaries(st.sampled_from(
           ["datum", "kind", "satisfied", "annotator", "evidence", "signature"]), _json),
       proof=st.dictionaries(st.sampled_from(["domain", "position", "inclusion"]), _json),
       certificate=st.binary(max_size=64))
def test_tls_receipts_refuse_anything_malformed(annotation: dict[str, Any],
                                                proof: dict[str, Any],
                                                certificate: bytes) -> None:
    try:
        verify_tls_receipt(annotation, certificate, proof, anchor_at=lambda *_: None)
    except SimtrustError:
        return
    raise AssertionError("a malformed receipt verified")


def declared_statuses() -> set[int]:
    responses = openapi_document()["paths"]["/streams/channels/{channel}/messages"]["post"][
        "responses"]
    return {int(code) for code in responses}
