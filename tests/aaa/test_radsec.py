"""RADIUS over TLS (RFC 6614) and over TCP (RFC 6613) with FreeRADIUS 3.2 from Debian as
the independent peer: radclient sends UDP to a FreeRADIUS proxy whose home servers are
simtrust's RadSec and TCP listeners; the proxy's client certificate comes from the
operator CA. The proxy's traffic, recorded by a relay, dissects in tshark with the TLS keys and
no malformed packet."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from simtrust.aaa import RadiusStreamListener, radsec_context

from .conftest import APN, SECRET, Aaa, imeisv, imsi, radclient, wait_until
from .peers import Capture, TcpRelay

_PROXY_CONF = """
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
max_request_time = 10
cleanup_delay = 1
max_requests = 1024
hostname_lookups = no
proxy_requests = yes
log {{
  destination = stdout
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
proxy server {{
  default_fallback = no
}}
home_server simtrust_tls {{
  type = auth+acct
  ipaddr = 127.0.0.1
  port = {tls_port}
  proto = tcp
  secret = radsec
  status_check = none
  response_window = 5
  tls {{
    private_key_file = {dir}/gateway.key
    certificate_file = {dir}/gateway.pem
    ca_file = {dir}/ca.pem
    fragment_size = 8192
    check_crl = no
  }}
}}
home_server simtrust_tcp_auth {{
  type = auth
  ipaddr = 127.0.0.1
  port = {tcp_auth_port}
  proto = tcp
  secret = {secret}
  status_check = none
  response_window = 5
}}
home_server simtrust_tcp_acct {{
  type = acct
  ipaddr = 127.0.0.1
  port = {tcp_acct_port}
  proto = tcp
  secret = {secret}
  status_check = none
  response_window = 5
}}
home_server_pool tls_pool {{
  type = fail-over
  home_server = simtrust_tls
}}
home_server_pool tcp_auth_pool {{
  type = fail-over
  home_server = simtrust_tcp_auth
}}
home_server_pool tcp_acct_pool {{
  type = fail-over
  home_server = simtrust_tcp_acct
}}
realm tls.example {{
  auth_pool = tls_pool
  acct_pool = tls_pool
  nostrip
}}
realm tcp.example {{
  auth_pool = tcp_auth_pool
  acct_pool = tcp_acct_pool
  nostrip
}}
client local {{
  ipaddr = 127.0.0.1
  secret = {secret}
}}
modules {{
  realm suffix {{
    format = suffix
    delimiter = "@"
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {auth_port}
  }}
  listen {{
    type = acct
    ipaddr = 127.0.0.1
    port = {acct_port}
  }}
  authorize {{
    suffix
  }}
  authenticate {{
  }}
  preacct {{
    suffix
  }}
  accounting {{
  }}
}}
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Streams:
    tls: RadiusStreamListener
    tcp_auth: RadiusStreamListener
    tcp_acct: RadiusStreamListener
    keylog: Path
    ca_pem: bytes
    directory: Path


@pytest.fixture
def streams(aaa: Aaa, tmp_path: Path) -> Iterator[Streams]:
    cas = aaa.rt.bootstrap.cas
    chain, key = cas.server_certificate(["localhost", "127.0.0.1"])
    ca_pem = cas.operator_ca().certificate.public_bytes(serialization.Encoding.PEM)
    keylog = tmp_path / "keylog.txt"
    context = radsec_context(chain, key, ca_pem, keylog=str(keylog))
    server = aaa.services.server
    tls = RadiusStreamListener(server, "127.0.0.1", 0, "any", tls=context, workers=4).start()
    tcp_auth = RadiusStreamListener(server, "127.0.0.1", 0, "auth", workers=4).start()
    tcp_acct = RadiusStreamListener(server, "127.0.0.1", 0, "acct").start()
    try:
        yield Streams(tls, tcp_auth, tcp_acct, keylog, ca_pem, tmp_path)
    finally:
        for listener in (tls, tcp_auth, tcp_acct):
            listener.close()


def _proxy(aaa: Aaa, streams: Streams, tls_port: int, tcp_auth_port: int
           ) -> tuple[subprocess.Popen[str], int, int]:
    exe = shutil.which("freeradius") or shutil.which("radiusd")
    if exe is None:
        pytest.fail("FreeRADIUS (freeradius) is not installed")
    directory = streams.directory / "freeradius"
    directory.mkdir()
    chain, key = aaa.rt.bootstrap.cas.gateway_certificate("pgw-radsec", actor="test")
    (directory / "gateway.pem").write_bytes(chain)
    (directory / "gateway.key").write_bytes(key)
    (directory / "ca.pem").write_bytes(streams.ca_pem)
    auth_port, acct_port = _free_udp_port(), _free_udp_port()
    (directory / "radiusd.conf").write_text(_PROXY_CONF.format(
        dir=directory, secret=SECRET, auth_port=auth_port, acct_port=acct_port,
        tls_port=tls_port, tcp_auth_port=tcp_auth_port,
        tcp_acct_port=streams.tcp_acct.address[1]))
    proc = subprocess.Popen([exe, "-f", "-d", str(directory), "-l", "stdout"], cwd=directory,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Ready to process requests" in line:
            return proc, auth_port, acct_port
    proc.wait()
    pytest.fail("FreeRADIUS proxy did not start:\n" + "".join(seen[-30:]))


def _access(n: int, realm: str) -> str:
    return (f'User-Name = "meter-{n}@{realm}", 3GPP-IMSI = "{imsi(n)}", '
            f'3GPP-IMEISV = "{imeisv(n)}", 3GPP-SGSN-MCC-MNC = "00101", '
            f'Called-Station-Id = "{APN}", Message-Authenticator = 0x00\n')


def _accounting(n: int, realm: str, status: str) -> str:
    return (f'User-Name = "meter-{n}@{realm}", Acct-Session-Id = "{realm}-{n}", '
            f'Acct-Status-Type = {status}, 3GPP-IMSI = "{imsi(n)}", '
            f'Framed-IP-Address = 10.45.0.{n}, NAS-IP-Address = 127.0.0.1, '
            f'Acct-Input-Octets = 1000, Acct-Output-Octets = 2000\n')


def test_freeradius_proxies_over_radsec_and_tcp(aaa: Aaa, streams: Streams) -> None:
    aaa.add_sim(1)
    aaa.add_sim(2)
    tls_relay = TcpRelay(streams.tls.address)
    tcp_relay = TcpRelay(streams.tcp_auth.address)
    proxy, auth_port, acct_port = _proxy(aaa, streams, tls_relay.port, tcp_relay.port)
    try:
        out = radclient(auth_port, "auth", _access(1, "tls.example"), timeout=10, retries=1)
        assert "Received Access-Accept" in out, out
        assert "Framed-IP-Address = 10.45.0." in out, out
        out = radclient(acct_port, "acct", _accounting(1, "tls.example", "Start"),
                        timeout=10, retries=1)
        assert "Received Accounting-Response" in out, out
        out = radclient(auth_port, "auth", _access(99, "tls.example"), timeout=10, retries=1)
        assert "Received Access-Reject" in out, out
        assert "unknown-sim" in out, out
        out = radclient(auth_port, "auth", _access(2, "tcp.example"), timeout=10, retries=1)
        assert "Received Access-Accept" in out, out
        out = radclient(acct_port, "acct", _accounting(2, "tcp.example", "Stop"),
                        timeout=10, retries=1)
        assert "Received Accounting-Response" in out, out
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        tls_relay.close()
        tcp_relay.close()
    client = aaa.services.clients.match("127.0.0.1")
    assert client is not None
    tls_session = aaa.services.accounting.get(f"{client.id}:tls.example-1")
    assert tls_session is not None
    assert tls_session.in_octets == 1000
    tcp_session = aaa.services.accounting.get(f"{client.id}:tcp.example-2")
    assert tcp_session is not None
    assert tcp_session.status == "closed"
    _dissect(tls_relay, tcp_relay, streams)


def _frames(stream: bytes) -> list[bytes]:
    """RADIUS packets of a stream, split by their Length (RFC 6613 §2.1)."""
    packets = []
    while len(stream) >= 4:
        length = int.from_bytes(stream[2:4], "big")
        packets.append(stream[:length])
        stream = stream[length:]
    assert stream == b""
    return packets


def _tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed")
    return exe


def _decrypted(pcap: Path, keylog: Path, port: int) -> tuple[bytes, bytes]:
    """The TLS application data tshark decrypts with the key log: (client's, server's)."""
    out = subprocess.run(
        [_tshark(), "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
         "-d", f"tcp.port=={port},tls", "-q", "-z", "follow,tls,raw,0"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    sent, answered = bytearray(), bytearray()
    for line in out.splitlines():
        if not line.strip() or ":" in line or line.startswith("="):
            continue
        (answered if line.startswith("\t") else sent).extend(bytes.fromhex(line.strip()))
    return bytes(sent), bytes(answered)


def _dissect(tls_relay: TcpRelay, tcp_relay: TcpRelay, streams: Streams) -> None:
    tls_port = streams.tls.address[1]
    tls_pcap = tls_relay.write_pcap(streams.directory / "radsec.pcap", tls_port)
    tls_args = ["-r", str(tls_pcap), "-o", f"tls.keylog_file:{streams.keylog}",
                "-d", f"tcp.port=={tls_port},tls"]
    tls_view = subprocess.run([_tshark(), *tls_args, "-V"], capture_output=True, text=True,
                              timeout=120, check=True).stdout
    assert "Malformed" not in tls_view
    assert "Certificate" in tls_view
    expert = subprocess.run([_tshark(), *tls_args, "-q", "-z", "expert,error"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Errors (" not in expert, expert
    sent, answered = _decrypted(tls_pcap, streams.keylog, tls_port)
    assert sent, "tshark decrypted nothing with the key log"
    assert answered
    # This tshark (4.0) dissects RADIUS over UDP only: the packets tshark decrypted (and
    # the plain TCP stream) go to its RADIUS dissector as datagrams on the IANA ports.
    for secret, requests, answers in (
        ("radsec", _frames(sent), _frames(answered)),
        (SECRET, _frames(tcp_relay.stream(0, True)), _frames(tcp_relay.stream(0, False))),
    ):
        capture = Capture()
        for packet in requests:
            capture.add(50000, 1812 if packet[0] == 1 else 1813, packet)
        for packet in answers:
            capture.add(1812 if packet[0] in (2, 3, 11) else 1813, 50000, packet)
        pcap = capture.write_pcap(streams.directory / f"{secret}-radius.pcap", {})
        dissected = subprocess.run(
            [_tshark(), "-r", str(pcap), "-o", f"radius.shared_secret:{secret}", "-V"],
            capture_output=True, text=True, timeout=120, check=True).stdout
        assert "Malformed" not in dissected
        assert "3GPP-IMSI" in dissected
        codes = ("Access-Request", "Access-Accept", "Access-Reject", "Accounting-Request",
                 "Accounting-Response") if secret == "radsec" else \
            ("Access-Request", "Access-Accept")
        for code in codes:
            assert f"Code: {code}" in dissected, (secret, code)


def test_radsec_refuses_a_peer_without_a_certificate(aaa: Aaa, streams: Streams) -> None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cadata=streams.ca_pem.decode())
    with socket.create_connection(streams.tls.address) as raw, \
            client.wrap_socket(raw, server_hostname="localhost") as tls, \
            pytest.raises((ssl.SSLError, ConnectionError)):
        # TLS 1.3: the server's refusal of the missing certificate arrives as an alert
        # on the first read; no RADIUS answer is ever sent.
        tls.sendall(bytes(20))
        if not tls.recv(1):
            raise ConnectionError("closed")
    wait_until(lambda: aaa.services.server.counters["tls_refused"] >= 1)


def test_tcp_closes_on_a_bad_length(aaa: Aaa, streams: Streams) -> None:
    """RFC 6613 §2.6.4: a length outside 20..4096 ends the connection."""
    before = aaa.services.server.counters["malformed"]
    with socket.create_connection(streams.tcp_auth.address) as sock:
        sock.sendall(bytes((1, 1, 0x10, 0x01)) + bytes(16))
        assert sock.recv(10) == b""
    assert aaa.services.server.counters["malformed"] == before + 1
