"""Validator links: TLS 1.3, mutually authenticated by pinned node keys (``docs/network.md``).

The protocol is TLS 1.3 (RFC 8446) from Python's ``ssl`` module (OpenSSL),
both sides presenting a certificate (§4.3.2 CertificateRequest, §4.4.2
Certificate) and nothing older negotiable. The identity binding follows the
pattern of libp2p's TLS handshake (libp2p ``tls/tls.md``): each process
generates an ephemeral TLS key at start and a certificate for it that its
long-term node key — the Ed25519 key genesis pins — signs, so the TLS key
proves the connection and the node key proves the TLS key. libp2p carries
that signature in a certificate extension of a self-signed certificate;
here it is the X.509 signature itself (RFC 5280 §4.1.1.3, Ed25519 per
RFC 8410): the node key issues its own link certificate, the issuer name
holds the network id and the node key. The reason is the ``ssl`` module: it
has no verification callback, and OpenSSL will not accept a client's
self-signed certificate it does not already trust, so a server could only
take an extension-bound certificate by not asking for client certificates
at all. Issued by the node key, the certificate chains to a trust anchor
each side synthesises from genesis (subject = the node's name, key = the
pinned node key), and OpenSSL itself refuses an unknown, wrong or unbound
peer during the handshake (``docs/decisions/network-link-tls.md``).

After the handshake the peer's certificate is checked again against genesis
(:func:`verify_link_certificate`: issuer network, pinned key, the node key's
signature over the certificate), and the caller's pinning rule decides
(``expected_peer`` for the dialler, ``allowed`` for the listener). Node keys
stay separate from validator block keys: a transport key signs link
certificates only.

Inside the TLS stream a frame is ``len (4 bytes, big-endian) ‖ body``, at
most :data:`MAX_FRAME` bytes, and the listener's first frame is
:data:`ACCEPTED` (the dialler's TLS 1.3 handshake ends before the listener
has judged its certificate). TLS records provide confidentiality,
integrity, ordering and replay protection, so any tampering fails TLS
record authentication and closes the link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import ssl
import struct
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simtrust.errors import CryptoError, DecodeError, PayloadTooLarge, UnknownKey

__all__ = [
    "ACCEPTED",
    "HANDSHAKE_TIMEOUT_S",
    "MAX_FRAME",
    "HandshakeFailed",
    "LinkIdentity",
    "SecureLink",
    "accept_link",
    "link_certificate_name",
    "open_link",
    "verify_link_certificate",
]

MAX_FRAME = 8 * 1024 * 1024
#: The listener's first frame: it checked the dialler's certificate and pinning.
ACCEPTED = b"simtrust/link/v2 accepted"
HANDSHAKE_TIMEOUT_S = 5.0
_LEN = struct.Struct(">I")
_NETWORK_PREFIX = "simtrust network "
#: Link certificates live this long; an identity renews its own after a quarter of it.
CERT_LIFETIME = dt.timedelta(days=30)
_RENEW_AFTER = CERT_LIFETIME / 4
#: Tolerated clock difference between validators (notBefore is backdated by it).
CLOCK_SKEW = dt.timedelta(hours=1)
_CONTEXT_CACHE = 64


class HandshakeFailed(CryptoError):
    """The peer could not prove its pinned node key, or belongs to another network."""

    code = "link-handshake-failed"


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def link_certificate_name(network_id: bytes, node_key: bytes) -> x509.Name:
    """The X.509 name of a node as the issuer of its link certificates."""
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _NETWORK_PREFIX + network_id.hex()),
        x509.NameAttribute(NameOID.COMMON_NAME, node_key.hex()),
    ])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _issue_link_certificate(
    network_id: bytes, node_key: Ed25519PrivateKey, tls_key: Ed25519PrivateKey, now: dt.datetime
) -> x509.Certificate:
    node_pub = node_key.public_key()
    issuer = link_certificate_name(network_id, _raw_public(node_key))
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _NETWORK_PREFIX + network_id.hex()),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "link"),
        x509.NameAttribute(NameOID.COMMON_NAME, _raw_public(node_key).hex()),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(node_pub),
                       critical=False)
        .sign(node_key, None)
    )


#: Signs the synthesised trust anchors. OpenSSL does not check a trust
#: anchor's own signature (X509_VERIFY_PARAM_set_flags(3),
#: X509_V_FLAG_CHECK_SS_SIGNATURE is off), so the anchor only names the
#: node and carries its pinned key; this key never signs anything else.
_ANCHOR_SIGNER = Ed25519PrivateKey.generate()


def _trust_anchor(network_id: bytes, node_key: bytes) -> bytes:
    """A CA certificate for a pinned node key, built from genesis alone (PEM)."""
    name = link_certificate_name(network_id, node_key)
    public = Ed25519PublicKey.from_public_bytes(node_key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(int.from_bytes(node_key[:16], "big") >> 1 or 1)
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(_ANCHOR_SIGNER, None)
    )
    return cert.public_bytes(Encoding.PEM)


def verify_link_certificate(der: bytes, network_id: bytes, *, now: dt.datetime | None = None
                            ) -> bytes:
    """The node key a peer's link certificate is bound to, after checking the binding.

    Raises :class:`HandshakeFailed` unless the certificate is issued, for
    ``network_id``, by the node key its issuer names, with that key's
    signature, and is valid at ``now``.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise HandshakeFailed("the peer's certificate does not parse") from exc
    orgs = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(orgs) != 1 or orgs[0].value != _NETWORK_PREFIX + network_id.hex():
        raise HandshakeFailed("the peer's certificate belongs to another network")
    try:
        node_key = bytes.fromhex(str(cns[0].value)) if len(cns) == 1 else b""
    except ValueError:
        node_key = b""
    if len(node_key) != 32:
        raise HandshakeFailed("the peer's certificate names no node key")
    try:
        Ed25519PublicKey.from_public_bytes(node_key).verify(
            cert.signature, cert.tbs_certificate_bytes)
    except (_CryptoInvalidSignature, ValueError) as exc:
        raise HandshakeFailed("the node key did not sign the peer's certificate") from exc
    at = now or _now()
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise HandshakeFailed("the peer's certificate is not valid now")
    return node_key


class LinkIdentity:
    """This node's TLS side of its links on one network.

    Holds an ephemeral TLS key (never written anywhere in the clear) and the
    certificate the node key issued for it, renewed after a quarter of its
    lifetime, and builds the TLS 1.3 contexts that trust exactly a given set
    of pinned node keys.
    """

    __slots__ = ("_cert", "_contexts", "_issued", "_node_key", "_tls_key", "network_id",
                 "node_key")

    def __init__(self, network_id: bytes, node_key: Ed25519PrivateKey) -> None:
        self.network_id = network_id
        self._node_key = node_key
        self.node_key = _raw_public(node_key)
        self._contexts: dict[tuple[bool, frozenset[bytes]], ssl.SSLContext] = {}
        self._renew(_now())

    def __repr__(self) -> str:
        return f"LinkIdentity(node_key={self.node_key.hex()[:16]}…)"

    def _renew(self, now: dt.datetime) -> None:
        self._tls_key = Ed25519PrivateKey.generate()
        self._cert = _issue_link_certificate(self.network_id, self._node_key, self._tls_key, now)
        self._issued = now
        self._contexts.clear()

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    def context(self, *, server_side: bool, pinned: Iterable[bytes]) -> ssl.SSLContext:
        """A TLS 1.3-only context presenting this node's certificate and trusting ``pinned``."""
        now = _now()
        if now - self._issued > _RENEW_AFTER:
            self._renew(now)
        anchors = frozenset(pinned)
        key = (server_side, anchors)
        ctx = self._contexts.get(key)
        if ctx is None:
            if len(self._contexts) >= _CONTEXT_CACHE:
                self._contexts.clear()
            ctx = self._build(server_side, anchors)
            self._contexts[key] = ctx
        return ctx

    def server_context(self, pinned: Callable[[], Iterable[bytes]]) -> ssl.SSLContext:
        """The context of a listening server (``asyncio.start_server(ssl=...)``).

        For each handshake it switches, while reading the ClientHello, to the
        context that trusts the node keys ``pinned()`` returns then, so a
        committee change or a ban applies to the next connection.
        """
        base = self._build(True, frozenset())

        def choose(tls: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            tls.context = self.context(server_side=True, pinned=pinned())

        base.sni_callback = choose
        return base

    def _build(self, server_side: bool, anchors: frozenset[bytes]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # peers are named by their pinned keys, not host names
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.options |= ssl.OP_NO_TICKET  # no resumption: every link proves the node key afresh
        if anchors:
            ctx.load_verify_locations(cadata="".join(
                _trust_anchor(self.network_id, k).decode("ascii") for k in sorted(anchors)))
        self._load_own(ctx)
        return ctx

    def _load_own(self, ctx: ssl.SSLContext) -> None:
        # ``load_cert_chain`` reads files only: the TLS key goes to a private
        # temporary file encrypted under a one-time password kept in memory.
        password = secrets.token_bytes(32)
        key_pem = self._tls_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(password))
        with tempfile.TemporaryDirectory(prefix="simtrust-link-") as tmp:
            path = Path(tmp) / "link.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self._cert.public_bytes(Encoding.PEM) + key_pem)
            ctx.load_cert_chain(path, password=password)


class SecureLink:
    """An established link: ``send``/``recv`` whole frames; ``peer_key`` is the pinned key."""

    __slots__ = ("_reader", "_writer", "initiator", "peer_key")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_key: bytes,
        initiator: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.peer_key = peer_key
        self.initiator = initiator

    def __repr__(self) -> str:
        return f"SecureLink(peer={self.peer_key.hex()[:16]}…, initiator={self.initiator})"

    def write(self, frame: bytes) -> None:
        """Queue one frame on the socket buffer (call ``drain`` for back-pressure)."""
        if len(frame) > MAX_FRAME:
            raise PayloadTooLarge(f"frames are limited to {MAX_FRAME} bytes")
        self._writer.write(_LEN.pack(len(frame)) + frame)

    async def drain(self) -> None:
        await self._writer.drain()

    async def send(self, frame: bytes) -> None:
        self.write(frame)
        await self._writer.drain()

    async def recv(self) -> bytes:
        """The next frame; raises ``IncompleteReadError`` at EOF, simtrust errors on abuse."""
        header = await self._reader.readexactly(_LEN.size)
        (length,) = _LEN.unpack(header)
        if length > MAX_FRAME:
            raise DecodeError("frame length out of range")
        return await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError, ssl.SSLError):
            return

    @property
    def closing(self) -> bool:
        return self._writer.is_closing()


def _peer_key(writer: asyncio.StreamWriter, network_id: bytes) -> bytes:
    tls = writer.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    if not der or tls.version() != "TLSv1.3":
        raise HandshakeFailed("the link is not TLS 1.3 with a peer certificate")
    return verify_link_certificate(der, network_id)


async def open_link(
    host: str,
    port: int,
    *,
    identity: LinkIdentity,
    expected_peer: bytes,
    timeout: float = HANDSHAKE_TIMEOUT_S,
) -> SecureLink:
    """Dial ``host:port``; the peer must prove the node key ``expected_peer`` and accept ours.

    In TLS 1.3 the client finishes its handshake before the server has
    judged the client certificate, so the link counts as up only once the
    listener's :data:`ACCEPTED` frame arrives.
    """
    ctx = identity.context(server_side=False, pinned=(expected_peer,))
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname="",
                                    ssl_handshake_timeout=timeout),
            timeout,
        )
    except ssl.SSLError as exc:
        raise HandshakeFailed(f"TLS handshake failed: {exc.reason or exc}") from exc
    try:
        peer = _peer_key(writer, identity.network_id)
        if peer != expected_peer:
            raise UnknownKey("the peer's node key is not the one genesis pins for this address")
        link = SecureLink(reader, writer, peer, initiator=True)
        try:
            answer = await asyncio.wait_for(link.recv(), timeout)
        except ssl.SSLError as exc:
            raise HandshakeFailed(f"the peer refused this node: {exc.reason or exc}") from exc
        if answer != ACCEPTED:
            raise HandshakeFailed("the peer did not accept the link")
    except BaseException:
        writer.close()
        raise
    return link


async def accept_link(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    identity: LinkIdentity,
    allowed: Callable[[bytes], bool],
) -> SecureLink:
    """Check an inbound connection whose TLS handshake a :meth:`LinkIdentity.server_context`
    server completed: the certificate's binding, then ``allowed(node_key)`` (the peer
    may be banned, or not the side that dials); then confirm with :data:`ACCEPTED`."""
    peer = _peer_key(writer, identity.network_id)
    if not allowed(peer):
        raise UnknownKey("node key not pinned in genesis")
    link = SecureLink(reader, writer, peer, initiator=False)
    await link.send(ACCEPTED)
    return link
