"""Helpers shared by the CMP delegation tests (test_cmp_*.py): the enterprise CA and
OpenSSL's CMP mock server (``openssl cmp -port``, RFC 9483 §5) as the independent
peer, loopback relays that record or terminate TLS, and tshark's reading of what
they recorded."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import dpkt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.bootstrap import CmpProtection, DeviceClaims

from .conftest import TENANT, Env, iccid, imsi

OPENSSL = shutil.which("openssl")
TSHARK = shutil.which("tshark")
SECRET = "enterprise-shared-secret-7"
REFERENCE = "simtrust-ra"
MAC = ("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE)


class Enterprise:
    """The enterprise's CA: its key and certificate as files for the mock server."""

    def __init__(self, env: Env, tmp_path: Path, name: str = "Acme Enterprise CA") -> None:
        self.dir = tmp_path
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
        now = env.clock()
        self.now = now
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        stem = name.split(maxsplit=1)[0].lower()
        self.cert_file = tmp_path / f"{stem}-ca.pem"
        self.key_file = tmp_path / f"{stem}-ca.key"
        self.cert_file.write_bytes(self.cert_pem)
        self.key_file.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, public: Any, cn: str, path: Path, *, client: bool = False) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(minutes=5))
            .not_valid_after(self.now + timedelta(days=30)))
        if client:
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public),
                                            critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert


@contextmanager
def mock_cmp(*args: str | Path) -> Iterator[str]:
    """``openssl cmp -port 0`` (OpenSSL's CMP mock server) on loopback; yields its URL."""
    proc = subprocess.Popen([str(OPENSSL), "cmp", "-port", "0", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if line.startswith("ACCEPT"):
                port = int(line.split()[1].rsplit(":", 1)[1])
                break
        if port is None:
            pytest.fail(f"openssl cmp mock server did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield f"http://127.0.0.1:{port}/pkix/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def csr_for(key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "meter")]))
            .sign(key, hashes.SHA256()))


def mac_ca(env: Env, url: str, ent: Enterprise, secret: str = SECRET, *,
           label: str = "acme-cmp") -> Any:
    return env.boot.cas.register_delegated(
        TENANT, label, kind="cmp", cmp_url=url, ca_pem=ent.cert_pem, actor="test",
        cmp=CmpProtection("pbm", secret=secret.encode(), reference=REFERENCE.encode()))


def device() -> DeviceClaims:
    return DeviceClaims(TENANT, iccid(1).value, imsi(1).value)


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/", maxsplit=1)[0])


def until(condition: Callable[[], Any], what: str, deadline: float = 120.0) -> Any:
    """Poll ``condition`` until it is truthy (generous deadline, no fixed sleeps)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def pump(src: socket.socket, dst: socket.socket, record: Callable[[bytes], None] | None = None,
         *, lossy: bool = False) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends or fails, then half-close ``dst``.

    ``record`` sees every chunk before it is sent; ``lossy`` ignores send failures
    (the peer went away) instead of raising them."""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            return
        if record is not None:
            record(data)
        if lossy:
            with contextlib.suppress(OSError):
                dst.sendall(data)
        else:
            dst.sendall(data)


class Relay:
    """A loopback TCP relay to ``target`` that records every connection's bytes in order
    (CMP over HTTP opens one connection per message here)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.connections: list[list[tuple[bool, bytes]]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._target = target
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool,
              flows: list[tuple[bool, bytes]]) -> None:
        def record(data: bytes) -> None:
            with self._lock:
                flows.append((up, data))

        pump(src, dst, record)

    def _serve(self, client: socket.socket) -> None:
        flows: list[tuple[bool, bytes]] = []
        with self._lock:
            self.connections.append(flows)
        try:
            server = socket.create_connection(self._target)
        except OSError:
            client.close()  # the target is down: the client sees the connection end
            return
        back = threading.Thread(target=self._pump, args=(server, client, False, flows),
                                daemon=True)
        back.start()
        self._pump(client, server, True, flows)
        back.join(timeout=30)
        client.close()
        server.close()

    def _run(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._accept.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=30)


class TlsRelay:
    """A TLS-terminating relay (the way a CMP server is commonly put behind HTTPS):
    TLS from simtrust, plain HTTP to the mock server."""

    def __init__(self, target: int, cert: Path, key: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._target = target
        self.handshakes_failed = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            raw.close()
            return
        with tls, socket.create_connection(("127.0.0.1", self._target)) as upstream:
            back = threading.Thread(target=self._pump, args=(upstream, tls), daemon=True)
            back.start()
            self._pump(tls, upstream)
            back.join(timeout=30)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        pump(src, dst, lossy=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(timeout=10)


def tls_server_cert(issuer: Enterprise, tmp_path: Path, name: str, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = issuer.now
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, host)]))
            .issuer_name(issuer.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(issuer.key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def write_pcap(connections: list[list[tuple[bool, bytes]]], path: Path, port: int) -> None:
    """Each recorded connection as its own TCP stream (client port 40000 + i)."""
    client_ip, server_ip = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.2")
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW)
        n = 0
        for i, flows in enumerate(connections):
            seq = {True: 1000, False: 5000}
            for up, data in flows:
                tcp = dpkt.tcp.TCP(sport=40000 + i if up else port,
                                   dport=port if up else 40000 + i, seq=seq[up], ack=seq[not up],
                                   flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=data)
                seq[up] += len(data)
                ip = dpkt.ip.IP(src=client_ip if up else server_ip,
                                dst=server_ip if up else client_ip, p=dpkt.ip.IP_PROTO_TCP,
                                data=tcp)
                ip.len = len(bytes(ip))
                n += 1
                writer.writepkt(bytes(ip), ts=1_700_000_000 + n * 0.001)


def tshark(capture: Path, *args: str) -> str:
    """tshark's output for ``capture``, TCP port 80 dissected as HTTP."""
    return subprocess.run(
        [str(TSHARK), "-r", str(capture), "-d", "tcp.port==80,http", *args],
        check=True, capture_output=True, text=True, timeout=120).stdout


def cmp_bodies(capture: Path) -> list[str]:
    """The CMP body types tshark's dissector reads in ``capture``, in order."""
    return tshark(capture, "-Y", "cmp", "-T", "fields", "-e", "cmp.body").split()


def dissector_problems(capture: Path) -> str:
    """What tshark marks malformed or warns about in ``capture`` (empty when clean)."""
    return tshark(capture, "-Y", "_ws.malformed || _ws.expert.severity >= warning").strip()
