"""The CMP answer decoder against untrusted bytes (hypothesis), on real answers that
``openssl cmp`` wrote, and the PBMAC1 protection we send checked independently."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asn1crypto import core, parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_modules import rfc4210, rfc8018

from simtrust.bootstrap._cmp import CmpClient, CmpProtection
from simtrust.bootstrap._cmp_wire import decode_message, split_message
from simtrust.errors import InvalidSignature, SimtrustError, StoreError

SECRET = b"fuzz-secret"


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Fuzz CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> tuple[x509.Certificate, list[bytes]]:
    """cp and pkiConf that OpenSSL's mock server wrote for a p10cr, and its rp for an rr
    (no network)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed")
    d = tmp_path_factory.mktemp("cmp")
    key, ca = _ca()
    dev = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "d")]))
           .sign(dev, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
            .public_key(dev.public_key()).serial_number(2)
            .not_valid_before(ca.not_valid_before_utc).not_valid_after(ca.not_valid_after_utc)
            .sign(key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "dev.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "dev.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        ["openssl", "cmp", "-use_mock_srv", "-srv_secret", f"pass:{SECRET.decode()}",
         "-srv_ref", "r", "-rsp_cert", "dev.pem", "-cmd", "p10cr", "-csr", "dev.csr",
         "-ref", "r", "-secret", f"pass:{SECRET.decode()}", "-recipient", "/CN=Fuzz CA",
         "-rspout", "cp.der,conf.der", "-certout", "out.pem"],
        cwd=d, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == done.returncode, done.stderr
    # An rp (with revCerts) for the revocation of that certificate.
    done = subprocess.run(
        ["openssl", "cmp", "-use_mock_srv", "-srv_secret", f"pass:{SECRET.decode()}",
         "-srv_ref", "r", "-rsp_cert", "dev.pem", "-cmd", "rr", "-oldcert", "dev.pem",
         "-revreason", "1", "-ref", "r", "-secret", f"pass:{SECRET.decode()}",
         "-recipient", "/CN=Fuzz CA", "-rspout", "rp.der"],
        cwd=d, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == done.returncode, done.stderr
    return ca, [(d / name).read_bytes() for name in ("cp.der", "conf.der", "rp.der")]


def _client(ca: x509.Certificate) -> CmpClient:
    return CmpClient("http://127.0.0.1:9/pkix/", CmpProtection("pbm", secret=SECRET), trust=ca)


def test_real_answers_decode_and_verify(answers: tuple[x509.Certificate, list[bytes]]) -> None:
    ca, (cp, conf, rp) = answers
    client = _client(ca)
    revoked = decode_message(rp)
    assert ("rp", True) == (revoked.body_type, revoked.body["revCerts"].isValue)
    assert "ok" == client._authentic(revoked)
    assert ("cp", "pkiconf") == (decode_message(cp).body_type, decode_message(conf).body_type)
    assert "ok" == client._authentic(decode_message(cp))
    wrong = CmpClient("http://127.0.0.1:9/", CmpProtection("pbm", secret=b"x"), trust=ca)
    assert "mac" == wrong._authentic(decode_message(cp))


def _process(client: CmpClient, data: bytes) -> None:
    try:
        msg = decode_message(data)
        client._check(msg, b"t" * 16, b"n" * 16, "cp")
    except SimtrustError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    _process(_client(_CA), data)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_answers_never_escape_as_other_errors(
        answers: tuple[x509.Certificate, list[bytes]], data: st.DataObject) -> None:
    ca, messages = answers
    raw = bytearray(data.draw(st.sampled_from(messages)))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _process(_client(ca), bytes(raw[:cut]) + data.draw(st.binary(max_size=16)))


_CA = _ca()[1]


def test_pbmac1_protection_checked_independently() -> None:
    """RFC 9481 §6.1.2: HMAC-SHA256 over the DER ProtectedPart with a PBKDF2 key."""
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        assert "application/pkixcmp" == request.headers["content-type"]
        return httpx.Response(500)

    client = CmpClient("http://cmp.example/pkix/", CmpProtection(
        "pbmac1", secret=SECRET, reference=b"ref"), trust=_CA,
        transport=httpx.MockTransport(handler))
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "d")]))
           .sign(key, hashes.SHA256()))
    with pytest.raises(SimtrustError):
        client.enrol(csr)
    # Split the message with asn1crypto's parser, not with our own framing.
    rest = parser.parse(seen[0])[4]
    parts = []
    for _ in range(3):
        element = parser.parse(rest)
        size = len(element[3]) + len(element[4]) + len(element[5])
        parts.append(rest[:size])
        rest = rest[size:]
    header, body, protection = parts
    protected = core.Sequence(contents=header + body).dump()
    decoded, _ = decoder.decode(seen[0], asn1Spec=rfc4210.PKIMessage())
    alg = decoded["header"]["protectionAlg"]
    assert "1.2.840.113549.1.5.14" == str(alg["algorithm"])
    params, _ = decoder.decode(bytes(alg["parameters"]), asn1Spec=rfc8018.PBMAC1_params())
    kdf, _ = decoder.decode(bytes(params["keyDerivationFunc"]["parameters"]),
                            asn1Spec=rfc8018.PBKDF2_params())
    derived = hashlib.pbkdf2_hmac("sha256", SECRET, bytes(kdf["salt"]["specified"]),
                                  int(kdf["iterationCount"]), int(kdf["keyLength"]))
    mac = hmac.new(derived, protected, "sha256").digest()
    # [0] EXPLICIT BIT STRING: the BIT STRING's contents after its unused-bits octet.
    bits = parser.parse(parser.parse(protection)[4])
    assert (3, b"\x00" + mac) == (bits[2], bits[4])
    assert b"ref" == bytes(decoded["header"]["senderKID"])
    assert 2 == int(decoded["header"]["pvno"])


def test_oversized_answer_is_refused_before_decoding() -> None:
    with pytest.raises(SimtrustError):
        decode_message(b"\x30\x84" + (300_000).to_bytes(4, "big") + b"\x00" * 300_000)


def test_transaction_nonce_body_and_protection_are_checked(
        answers: tuple[x509.Certificate, list[bytes]]) -> None:
    """RFC 9483 §3.5 on a real answer: ours only if all of them match."""
    ca, (cp, *_) = answers
    client = _client(ca)
    msg = decode_message(cp)
    tid, nonce = msg.octets("transactionID"), msg.octets("recipNonce")
    assert tid is not None
    assert nonce is not None
    client._check(msg, tid, nonce, "cp")
    for t, n, body, text in ((b"x" * 16, nonce, "cp", "another transaction"),
                             (tid, b"y" * 16, "cp", "does not echo our nonce"),
                             (tid, nonce, "pkiconf", "answered cp, not pkiconf")):
        with pytest.raises(StoreError, match=text):
            client._check(msg, t, n, body)
    unprotected = decode_message(split_message(cp))  # header and body only
    with pytest.raises(InvalidSignature):
        client._check(unprotected, tid, nonce, "cp")


def test_pbmac1_protected_answer_is_verified(
        answers: tuple[x509.Certificate, list[bytes]]) -> None:
    """A real cp re-protected here with PBMAC1 (RFC 9481 §6.1.2, computed with hashlib):
    accepted with the secret, told apart as a MAC mismatch without it."""
    ca, (cp, *_) = answers
    decoded, _ = decoder.decode(cp, asn1Spec=rfc4210.PKIMessage())
    salt, count = b"s" * 16, 1000
    kdf = rfc8018.PBKDF2_params()
    kdf["salt"]["specified"] = salt
    kdf["iterationCount"] = count
    kdf["keyLength"] = 32
    kdf["prf"]["algorithm"] = rfc8018.id_hmacWithSHA256
    params = rfc8018.PBMAC1_params()
    params["keyDerivationFunc"]["algorithm"] = rfc8018.id_PBKDF2
    params["keyDerivationFunc"]["parameters"] = univ.Any(encoder.encode(kdf))
    params["messageAuthScheme"]["algorithm"] = rfc8018.id_hmacWithSHA256
    header = decoded["header"]
    header["protectionAlg"]["algorithm"] = rfc8018.id_PBMAC1
    header["protectionAlg"]["parameters"] = univ.Any(encoder.encode(params))
    head, body = encoder.encode(header), encoder.encode(decoded["body"])
    protected = core.Sequence(contents=head + body).dump()
    mac = hmac.new(hashlib.pbkdf2_hmac("sha256", SECRET, salt, count, 32), protected,
                   "sha256").digest()
    bits = core.BitString(tuple(int(b) for byte in mac for b in f"{byte:08b}")).dump()
    message = core.Sequence(contents=head + body + b"\xa0" + bytes([len(bits)]) + bits).dump()
    assert "ok" == _client(ca)._authentic(decode_message(message))
    other = CmpClient("http://127.0.0.1:9/", CmpProtection("pbm", secret=b"x"), trust=ca)
    assert "mac" == other._authentic(decode_message(message))
