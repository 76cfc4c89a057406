"""Real peers: freeDiameter's daemon holds a session; tshark dissects the S6a/S13 traffic."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dpkt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simtrust.diameter import DiameterListener, NodeSettings, tls_context
from simtrust.subscriber import Roaming

from ..subscriber.conftest import TENANT, imei, imsi, spec
from .conftest import Env, Mme
from .test_s6a import air, ecr, ulr

FD = shutil.which("freeDiameterd")
TSHARK = shutil.which("tshark")


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    # freeDiameter 1.2 insists on a TLS credential even when every peer is No_TLS.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fd.test.realm")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.skipif(FD is None, reason="freeDiameterd is not installed (Debian freediameter)")
def test_freediameter_holds_a_session(env: Env, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    conf = tmp_path / "fd.conf"
    conf.write_text(f"""
Identity = "fd.test.realm";
Realm = "test.realm";
Port = {_free_port()};
SecPort = {_free_port()};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{cert}", "{key}";
TLS_CA = "{cert}";
ConnectPeer = "hss.test.realm" {{ ConnectTo = "127.0.0.1"; Port = {env.port}; No_TLS; No_SCTP; }};
""", encoding="utf-8")
    log = tmp_path / "fd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(FD), "-c", str(conf), "-d"], stdout=out,
                                stderr=subprocess.STDOUT)
    node = env.listener.node
    try:
        _wait_for(lambda: any(p["host"] == "fd.test.realm" for p in node.peers()),
                  "freeDiameter's capabilities exchange")
        # Our watchdog (1 s) probes freeDiameter; its DWA must come back.
        _wait_for(lambda: node.stats["dwa_received"] >= 2, "DWA from freeDiameter")
        assert "STATE_OPEN" in log.read_text(encoding="utf-8", errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # freeDiameter says goodbye with a DPR on shutdown.
    _wait_for(lambda: not any(p["host"] == "fd.test.realm" for p in node.peers()),
              "freeDiameter's disconnect")


class _Recorder(Mme):
    """An MME that keeps every byte it sent and received, in order."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.flows: list[tuple[bool, bytes]] = []

    def send_raw(self, data: bytes) -> None:
        self.flows.append((True, data))
        super().send_raw(data)

    def read_raw(self) -> bytes:
        data = super().read_raw()
        self.flows.append((False, data))
        return data


def _pcap(flows: list[tuple[bool, bytes]], path: Path, port: int = 3868) -> None:
    """Write the exchange as one TCP connection client:40000 <-> server:``port``."""
    mme_ip, hss_ip = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.2")
    seq = {True: 1000, False: 5000}
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW)
        for i, (up, data) in enumerate(flows):
            tcp = dpkt.tcp.TCP(sport=40000 if up else port, dport=port if up else 40000,
                               seq=seq[up], ack=seq[not up],
                               flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=data)
            seq[up] += len(data)
            ip = dpkt.ip.IP(src=mme_ip if up else hss_ip, dst=hss_ip if up else mme_ip,
                            p=dpkt.ip.IP_PROTO_TCP, data=tcp)
            ip.len = len(bytes(ip))
            writer.writepkt(bytes(ip), ts=1_700_000_000 + i * 0.001)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_dissects_the_traffic_without_malformed_packets(env: Env, tmp_path: Path) -> None:
    env.subs.inventory.add_sim(TENANT, spec(1, static_ip="10.45.0.7",
                                            roaming=Roaming.parse(["*"])), actor="test")
    client = _Recorder(env.port)
    try:
        assert 2001 == client.cer().result_code
        assert 2001 == client.exchange(air(imsi(1).value, count=2)).result_code
        assert 2001 == client.exchange(ulr(imsi(1).value, imei(1).value)).result_code
        assert 0 == client.exchange(ecr(imei(1), imsi(1).value)).equipment_status
        client.exchange(air(imsi(42).value))
    finally:
        client.close()
    capture = tmp_path / "s6a.pcap"
    _pcap(client.flows, capture)
    fields = subprocess.run(
        [str(TSHARK), "-r", str(capture), "-Y", "diameter", "-T", "fields",
         "-e", "diameter.cmd.code", "-e", "diameter.flags.request"],
        check=True, capture_output=True, text=True, timeout=120).stdout.split("\n")
    assert 10 == len([line for line in fields if line.strip()])
    expert = subprocess.run(
        [str(TSHARK), "-r", str(capture), "-q", "-z", "expert,warn"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    malformed = subprocess.run(
        [str(TSHARK), "-r", str(capture), "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    assert "" == malformed.strip(), expert


def _ca_and_leaves(tmp: Path, names: tuple[str, ...]) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """A CA and one certificate per Diameter identity (CN and DNS name), PEM files."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test realm CA")])
    now = datetime.now(UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_path = tmp / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaves = {}
    for serial, name in enumerate(names, start=2):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH,
                                                      x509.ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        leaves[name] = (cert_path, key_path)
    return ca_path, leaves


@pytest.mark.skipif(FD is None, reason="freeDiameterd is not installed (Debian freediameter)")
def test_freediameter_holds_a_session_over_tls(env: Env, tmp_path: Path) -> None:
    """RFC 6733 §13.1: TLS from the first octet, both certificates verified, then CER."""
    ca, leaves = _ca_and_leaves(tmp_path, ("hss.test.realm", "fd.test.realm"))
    hss_cert, hss_key = leaves["hss.test.realm"]
    settings = NodeSettings("hss.test.realm", "test.realm", frozenset({"fd.test.realm"}),
                            watchdog_s=1.0, tls=tls_context(str(hss_cert), str(hss_key), str(ca)))
    listener = DiameterListener(settings, env.subs.hss, env.subs.eir, env.rt.audit)
    _host, port = listener.start("127.0.0.1", 0)
    fd_cert, fd_key = leaves["fd.test.realm"]
    conf = tmp_path / "fd.conf"
    conf.write_text(f"""
Identity = "fd.test.realm";
Realm = "test.realm";
Port = {_free_port()};
SecPort = {_free_port()};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{fd_cert}", "{fd_key}";
TLS_CA = "{ca}";
ConnectPeer = "hss.test.realm" {{ ConnectTo = "127.0.0.1"; Port = {port}; No_SCTP; }};
""", encoding="utf-8")
    log = tmp_path / "fd.log"
    node = listener.node
    with log.open("wb") as out:
        proc = subprocess.Popen([str(FD), "-c", str(conf), "-d"], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: any(p["host"] == "fd.test.realm" for p in node.peers()),
                  "freeDiameter's capabilities exchange over TLS")
        _wait_for(lambda: node.stats["dwa_received"] >= 1, "DWA from freeDiameter over TLS")
        assert "STATE_OPEN" in log.read_text(encoding="utf-8", errors="replace")
        # A plain-TCP client gets no Diameter answer from the TLS listener.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(bytes([1, 0, 0, 20, 0x80, 0, 1, 1]) + bytes(12))
            try:
                reply = plain.recv(64)
            except OSError:
                reply = b""
            assert not reply.startswith(b"\x01")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        listener.stop()
