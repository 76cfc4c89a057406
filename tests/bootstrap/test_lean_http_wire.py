"""LeanHttps reads answers per RFC 9112 from a scripted TLS peer (a real socket server).

The peer answers each request with the bytes a test gives it, so the framings the
bootstrap listener never sends (chunked, close-delimited, 1xx first) and broken
answers are exercised on the wire.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simtrust.bootstrap import LeanHttps


class Peer:
    """A TLS server on loopback answering request i with ``answers[i]`` (bytes), then
    closing the connection when the answer is followed by ``None``."""

    def __init__(self, tmp: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=1))
                .not_valid_after(now + timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                               critical=False)
                .sign(key, hashes.SHA256()))
        self.pem = cert.public_bytes(serialization.Encoding.PEM)
        (tmp / "c.pem").write_bytes(self.pem)
        (tmp / "k.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.answers: list[bytes | None] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def client(self) -> LeanHttps:
        return LeanHttps(ssl.create_default_context(cadata=self.pem.decode()), timeout=5)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with self._ctx.wrap_socket(raw, server_side=True) as conn:
                rfile = conn.makefile("rb")
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = rfile.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    self.requests.append(head + rfile.read(length))
                    answer = self.answers.pop(0)
                    assert answer is not None
                    conn.sendall(answer)
                    if self.answers and self.answers[0] is None:
                        self.answers.pop(0)
                        break
                rfile.close()

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    p = Peer(tmp_path)
    yield p
    p.close()


def test_request_head_and_body_leave_as_written(peer: Peer) -> None:
    peer.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    with peer.client() as http:
        answer = http.post(peer.url + "/est?x=1", content=b"abc",
                           headers={"Content-Type": "application/pkcs10"})
    assert (200, b"ok") == (answer.status_code, answer.content)
    head, _, body = peer.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"POST /est?x=1 HTTP/1.1" == lines[0]
    assert f"Host: localhost:{peer.port}".encode() in lines
    assert b"Content-Length: 3" in lines
    assert b"Content-Type: application/pkcs10" in lines
    assert b"abc" == body


def test_chunked_repeated_fields_and_an_interim_answer(peer: Peer) -> None:
    peer.answers = [
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n"
        b"WWW-Authenticate: Digest a=1\r\nwww-authenticate: Digest b=2\r\n\r\n"
        b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]
    with peer.client() as http:
        first = http.get(peer.url + "/bsf")
        second = http.get(peer.url + "/bsf")
    assert 401 == first.status_code
    assert b"abcdefg" == first.content
    assert "Digest a=1, Digest b=2" == first.headers.get("WWW-AUTHENTICATE")
    assert (204, b"") == (second.status_code, second.content)
    assert 1 == peer.connections  # both over the connection kept alive


def test_a_body_ended_by_the_connection_closes_the_client_side(peer: Peer) -> None:
    peer.answers = [b"HTTP/1.1 200 OK\r\n\r\nall of it", None,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    with peer.client() as http:
        assert b"all of it" == http.get(peer.url + "/a").content
        assert 200 == http.get(peer.url + "/b").status_code
    assert 2 == peer.connections


@pytest.mark.parametrize(("answer", "error"), [
    (b"HTP/1.1 200 OK\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.client.HTTPException),
])
def test_broken_answers_raise_and_drop_the_connection(
        peer: Peer, answer: bytes, error: type[Exception]) -> None:
    peer.answers = [answer, None]
    with peer.client() as http:
        with pytest.raises(error):
            http.get(peer.url + "/x")
        peer.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
        assert 200 == http.get(peer.url + "/x").status_code
    assert 2 == peer.connections


def test_header_values_cannot_smuggle_lines(peer: Peer) -> None:
    with peer.client() as http, pytest.raises(ValueError, match="invalid header"):
        http.get(peer.url + "/x", headers={"X": "a\r\nInjected: 1"})
    assert [] == peer.requests
