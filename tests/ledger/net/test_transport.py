"""Links: TLS 1.3 with mutual authentication, certificates bound to pinned node keys."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import dpkt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import SimtrustError, UnknownKey
from simtrust.ledger.net import (
    HandshakeFailed,
    LinkIdentity,
    SecureLink,
    accept_link,
    link_certificate_name,
    open_link,
    verify_link_certificate,
)
from simtrust.ledger.net._transport import ACCEPTED, _issue_link_certificate

NET = b"testnet!"
Outcome = SecureLink | BaseException


def _pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


async def _pair(
    client: LinkIdentity,
    server: LinkIdentity,
    *,
    pinned: list[bytes],
    allowed: Callable[[bytes], bool],
    expected: bytes,
) -> tuple[Outcome, Outcome | None]:
    """Dial ``server`` from ``client``; the server side's outcome is None if TLS refused."""
    accepted: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            link = await accept_link(reader, writer, identity=server, allowed=allowed)
        except (SimtrustError, OSError) as exc:
            writer.close()
            accepted.set_result(exc)
            return
        accepted.set_result(link)

    srv = await asyncio.start_server(on_conn, "127.0.0.1", 0,
                                     ssl=server.server_context(lambda: pinned))
    port = srv.sockets[0].getsockname()[1]
    try:
        outcome: Outcome
        try:
            outcome = await open_link("127.0.0.1", port, identity=client, expected_peer=expected,
                                      timeout=5)
        except (SimtrustError, asyncio.IncompleteReadError, OSError) as exc:
            outcome = exc
        if isinstance(outcome, SecureLink):
            return outcome, await asyncio.wait_for(accepted, 5)
        try:
            return outcome, await asyncio.wait_for(asyncio.shield(accepted), 0.5)
        except TimeoutError:
            return outcome, None  # refused inside the TLS handshake
    finally:
        srv.close()


def _run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_pinned_peers_exchange_frames_both_ways_over_tls13() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(LinkIdentity(NET, a), LinkIdentity(NET, b),
                                     pinned=[_pub(a)], allowed=lambda k: k == _pub(a),
                                     expected=_pub(b))
        assert isinstance(client, SecureLink)
        assert isinstance(server, SecureLink)
        assert _pub(b) == client.peer_key
        assert _pub(a) == server.peer_key
        tls = client._writer.get_extra_info("ssl_object")
        assert "TLSv1.3" == tls.version()
        for size in (0, 1, 70_000):
            await client.send(b"x" * size)
            assert b"x" * size == await server.recv()
            await server.send(b"y" * size)
            assert b"y" * size == await client.recv()
        client.close()
        server.close()

    _run(go())


def test_a_node_key_the_listener_does_not_pin_is_refused_in_the_handshake() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(LinkIdentity(NET, a), LinkIdentity(NET, b),
                                     pinned=[_pub(other)], allowed=lambda k: True,
                                     expected=_pub(b))
        assert not isinstance(client, SecureLink)
        assert server is None

    _run(go())


def test_a_pinned_but_refused_node_gets_no_link() -> None:
    """Pinned in genesis but banned (or not the side that dials): refused after TLS."""
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(LinkIdentity(NET, a), LinkIdentity(NET, b),
                                     pinned=[_pub(a)], allowed=lambda k: False,
                                     expected=_pub(b))
        assert isinstance(server, UnknownKey)
        assert not isinstance(client, SecureLink)

    _run(go())


def test_the_dialler_refuses_a_listener_with_another_node_key() -> None:
    a, b, pinned = (Ed25519PrivateKey.generate() for _ in range(3))

    async def go() -> None:
        client, _server = await _pair(LinkIdentity(NET, a), LinkIdentity(NET, b),
                                      pinned=[_pub(a)], allowed=lambda k: True,
                                      expected=_pub(pinned))
        assert isinstance(client, HandshakeFailed)

    _run(go())


def test_a_peer_of_another_network_is_refused() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    async def go() -> None:
        client, server = await _pair(LinkIdentity(b"othernet", a), LinkIdentity(NET, b),
                                     pinned=[_pub(a)], allowed=lambda k: True,
                                     expected=_pub(b))
        assert not isinstance(client, SecureLink)
        assert not isinstance(server, SecureLink)

    _run(go())


class _Forged(LinkIdentity):
    """An identity presenting a certificate of the test's choosing."""

    __slots__ = ()

    def use(self, cert: x509.Certificate, tls_key: Ed25519PrivateKey) -> _Forged:
        self._cert, self._tls_key = cert, tls_key
        self._contexts.clear()
        return self


def _self_signed(node: Ed25519PrivateKey, tls_key: Ed25519PrivateKey) -> x509.Certificate:
    """A certificate naming ``node`` as issuer but signed by the TLS key: no binding."""
    now = dt.datetime.now(dt.UTC)
    name = link_certificate_name(NET, _pub(node))
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(tls_key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(tls_key, None))


def _tampered(cert: x509.Certificate, tls_key: Ed25519PrivateKey) -> x509.Certificate:
    """The node key's certificate with one bit of its signature flipped."""
    der = bytearray(cert.public_bytes(Encoding.DER))
    der[-1] ^= 1
    return x509.load_der_x509_certificate(bytes(der))


def _forged_by_impostor(node: Ed25519PrivateKey, tls_key: Ed25519PrivateKey) -> x509.Certificate:
    """Issuer names the pinned node, but another key signed the binding."""
    cert = _issue_link_certificate(NET, Ed25519PrivateKey.generate(), tls_key,
                                   dt.datetime.now(dt.UTC))
    builder = (x509.CertificateBuilder().subject_name(cert.subject)
               .issuer_name(link_certificate_name(NET, _pub(node)))
               .public_key(tls_key.public_key()).serial_number(cert.serial_number)
               .not_valid_before(cert.not_valid_before_utc)
               .not_valid_after(cert.not_valid_after_utc))
    return builder.sign(Ed25519PrivateKey.generate(), None)


@pytest.mark.parametrize("forge", [_self_signed, _tampered, _forged_by_impostor],
                         ids=["no-binding", "tampered-binding", "impostor-binding"])
def test_a_certificate_without_a_valid_binding_is_refused(
    forge: Callable[[Ed25519PrivateKey, Ed25519PrivateKey], x509.Certificate],
) -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    tls_key = Ed25519PrivateKey.generate()
    genuine = _issue_link_certificate(NET, a, tls_key, dt.datetime.now(dt.UTC))
    cert = forge(a, tls_key) if forge is not _tampered else _tampered(genuine, tls_key)
    with pytest.raises(HandshakeFailed):
        verify_link_certificate(cert.public_bytes(Encoding.DER), NET)

    async def go() -> None:
        # The forger as dialler: the listener pins node a and must refuse.
        forger = _Forged(NET, a).use(cert, tls_key)
        client, server = await _pair(forger, LinkIdentity(NET, b), pinned=[_pub(a)],
                                     allowed=lambda k: True, expected=_pub(b))
        assert not isinstance(client, SecureLink)
        assert not isinstance(server, SecureLink)
        # The forger as listener: a dialler pinning node a must refuse.
        client, server = await _pair(LinkIdentity(NET, b), _Forged(NET, a).use(cert, tls_key),
                                     pinned=[_pub(b)], allowed=lambda k: True,
                                     expected=_pub(a))
        assert not isinstance(client, SecureLink)

    _run(go())


def test_the_genuine_binding_verifies_and_names_the_node_key() -> None:
    a = Ed25519PrivateKey.generate()
    identity = LinkIdentity(NET, a)
    der = identity.certificate.public_bytes(Encoding.DER)
    assert _pub(a) == verify_link_certificate(der, NET)
    with pytest.raises(HandshakeFailed):
        verify_link_certificate(der, b"othernet")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    with pytest.raises(HandshakeFailed):
        verify_link_certificate(der, NET, now=later)
    assert "LinkIdentity(node_key=" in repr(identity)
    assert a.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex() not in repr(
        identity)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_garbage_certificates_are_refused(data: bytes) -> None:
    with pytest.raises(HandshakeFailed):
        verify_link_certificate(data, NET)


def test_a_flipped_bit_on_the_wire_closes_the_link() -> None:
    """A relay that flips one bit of a TLS record after the handshake: the record
    fails authentication and the receiver gets an error, never altered data."""
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ia, ib = LinkIdentity(NET, a), LinkIdentity(NET, b)

    async def go() -> None:
        accepted: asyncio.Future[SecureLink] = asyncio.get_running_loop().create_future()
        tamper = asyncio.Event()

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(await accept_link(reader, writer, identity=ib,
                                                  allowed=lambda k: True))

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0,
                                         ssl=ib.server_context(lambda: [_pub(a)]))
        port = srv.sockets[0].getsockname()[1]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, flip: bool) -> None:
            while data := await src.read(65536):
                if flip and tamper.is_set():
                    data = data[:-1] + bytes([data[-1] ^ 1])
                    tamper.clear()
                dst.write(data)
                await dst.drain()
            dst.close()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(pump(reader, up_w, True), pump(up_r, writer, False),
                                 return_exceptions=True)

        mitm = await asyncio.start_server(relay, "127.0.0.1", 0)
        relay_port = mitm.sockets[0].getsockname()[1]
        client = await open_link("127.0.0.1", relay_port, identity=ia, expected_peer=_pub(b))
        server = await asyncio.wait_for(accepted, 5)
        await client.send(b"pay 1")
        assert b"pay 1" == await server.recv()
        tamper.set()
        await client.send(b"pay 2")
        with pytest.raises((OSError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(server.recv(), 5)
        client.close()
        server.close()
        srv.close()
        mitm.close()

    _run(go())


def test_garbage_instead_of_a_client_hello_leaves_the_listener_serving() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ia, ib = LinkIdentity(NET, a), LinkIdentity(NET, b)
    junk = [b"", b"\x16\x03\x01\x00\x05hello", b"STN1" + bytes(100), bytes(range(256)) * 4,
            b"GET / HTTP/1.1\r\n\r\n"]

    async def go() -> None:
        links: list[SecureLink] = []

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            links.append(await accept_link(reader, writer, identity=ib, allowed=lambda k: True))

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0,
                                         ssl=ib.server_context(lambda: [_pub(a)]),
                                         ssl_handshake_timeout=2)
        port = srv.sockets[0].getsockname()[1]
        for data in junk:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 5)  # the listener closes the connection
            writer.close()
        assert [] == links
        link = await open_link("127.0.0.1", port, identity=ia, expected_peer=_pub(b))
        assert _pub(b) == link.peer_key
        link.close()
        srv.close()

    _run(go())


@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-bin not installed")
def test_gnutls_client_with_a_bound_certificate_completes_tls13(tmp_path: Path) -> None:
    """An independent TLS 1.3 implementation (GnuTLS) presenting a certificate the
    pinned node key issued is accepted by the listener and receives ACCEPTED."""
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ib = LinkIdentity(NET, b)
    tls_key = Ed25519PrivateKey.generate()
    cert = _issue_link_certificate(NET, a, tls_key, dt.datetime.now(dt.UTC))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        tls_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))

    async def go() -> None:
        accepted: asyncio.Future[SecureLink] = asyncio.get_running_loop().create_future()

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(await accept_link(reader, writer, identity=ib,
                                                  allowed=lambda k: True))

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0,
                                         ssl=ib.server_context(lambda: [_pub(a)]))
        port = srv.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            "gnutls-cli", "--no-ca-verification", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3",
            "--x509certfile", str(tmp_path / "cert.pem"),
            "--x509keyfile", str(tmp_path / "key.pem"), "-p", str(port), "127.0.0.1",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        link = await asyncio.wait_for(accepted, 10)
        assert _pub(a) == link.peer_key
        await link.send(b"hello gnutls")
        assert proc.stdin is not None
        proc.stdin.close()
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert len(ACCEPTED).to_bytes(4, "big") + ACCEPTED in out, err
        assert b"hello gnutls" in out
        assert b"TLS1.3" in out + err
        link.close()
        srv.close()

    _run(go())


def _write_pcap(flows: list[tuple[bool, bytes]], path: Path) -> None:
    """The recorded stream as one TCP connection 127.0.0.1:40000 -> 127.0.0.2:7447."""


    dialler, listener = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.2")
    seq = {True: 1000, False: 5000}
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW)
        for i, (up, data) in enumerate(flows):
            for start in range(0, len(data), 1400):
                piece = data[start : start + 1400]
                tcp = dpkt.tcp.TCP(sport=40000 if up else 7447, dport=7447 if up else 40000,
                                   seq=seq[up], ack=seq[not up],
                                   flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=piece)
                seq[up] += len(piece)
                ip = dpkt.ip.IP(src=dialler if up else listener, dst=listener if up else dialler,
                                p=dpkt.ip.IP_PROTO_TCP, data=tcp)
                ip.len = len(bytes(ip))
                writer.writepkt(bytes(ip), ts=1_700_000_000 + i * 0.001 + start * 1e-7)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_dissects_a_link_as_tls13_without_malformed_packets(tmp_path: Path) -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ia, ib = LinkIdentity(NET, a), LinkIdentity(NET, b)
    flows: list[tuple[bool, bytes]] = []

    async def go() -> None:
        accepted: asyncio.Future[SecureLink] = asyncio.get_running_loop().create_future()

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(await accept_link(reader, writer, identity=ib,
                                                  allowed=lambda k: True))

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0,
                                         ssl=ib.server_context(lambda: [_pub(a)]))
        port = srv.sockets[0].getsockname()[1]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            while data := await src.read(65536):
                flows.append((up, data))
                dst.write(data)
                await dst.drain()
            dst.close()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(pump(reader, up_w, True), pump(up_r, writer, False),
                                 return_exceptions=True)

        recorder = await asyncio.start_server(relay, "127.0.0.1", 0)
        client = await open_link("127.0.0.1", recorder.sockets[0].getsockname()[1],
                                 identity=ia, expected_peer=_pub(b))
        server = await asyncio.wait_for(accepted, 5)
        for size in (10, 5000):
            await client.send(b"c" * size)
            assert b"c" * size == await server.recv()
            await server.send(b"s" * size)
            assert b"s" * size == await client.recv()
        client.close()
        server.close()
        await client.wait_closed()
        srv.close()
        recorder.close()

    _run(go())
    capture = tmp_path / "link.pcap"
    _write_pcap(flows, capture)
    tshark = str(shutil.which("tshark"))
    decode = ["-d", "tcp.port==7447,tls"]
    fields = subprocess.run(
        [tshark, "-r", str(capture), *decode, "-Y", "tls", "-T", "fields",
         "-e", "tls.handshake.type", "-e", "tls.handshake.extensions.supported_version",
         "-e", "tls.record.content_type", "-e", "tls.record.opaque_type"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    assert "1" in fields.split()[0].split(",")  # ClientHello first
    assert "0x0304" in fields  # TLS 1.3 in supported_versions
    assert "23" in fields  # application data records (TLS 1.3 opaque type)
    malformed = subprocess.run(
        [tshark, "-r", str(capture), *decode, "-Y",
         "_ws.malformed || _ws.expert.severity >= warning"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    assert "" == malformed.strip()
