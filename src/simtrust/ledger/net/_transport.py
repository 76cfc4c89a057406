"""Authenticated, encrypted links between validators over TCP (``docs/network.md``, "Links").

A SIGMA-I style handshake (Krawczyk, "SIGMA", CRYPTO 2003, §5) without
identity hiding, since node keys are public in genesis: both sides send an
ephemeral X25519 key (RFC 7748 §5) and their pinned Ed25519 node key; each
signs the transcript hash with its role label, so the ephemeral keys are
bound to the identities and neither message can be reflected. Session keys
come from HKDF-SHA256 (RFC 5869) over the X25519 secret, salted with the
transcript hash, one key per direction. Frames are ChaCha20-Poly1305
(RFC 8439 §2.8) with a per-direction counter nonce and the length prefix as
associated data; any authentication failure closes the link. Written here
because the framing is small and no library offers this handshake over
asyncio streams with pinned Ed25519 keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import CryptoError, DecodeError, DecryptionFailed, PayloadTooLarge, UnknownKey

__all__ = ["MAX_FRAME", "PROTOCOL", "HandshakeFailed", "SecureLink", "accept_link", "open_link"]

PROTOCOL = b"STN1"
MAX_FRAME = 8 * 1024 * 1024
HANDSHAKE_TIMEOUT_S = 5.0
_HELLO = struct.Struct(">4s8s32s32s")  # protocol, network id, node key, ephemeral key
_LEN = struct.Struct(">I")
_TAG = 16
_LABEL_I = b"simtrust/net/v1 initiator\x00"
_LABEL_R = b"simtrust/net/v1 responder\x00"
_KDF_INFO = b"simtrust/net/v1 session keys"


class HandshakeFailed(CryptoError):
    """The peer could not prove its pinned node key, or belongs to another network."""

    code = "link-handshake-failed"


def _raw(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _transcript(hello_i: bytes, hello_r: bytes) -> bytes:
    return hashlib.blake2b(PROTOCOL + hello_i + hello_r, digest_size=32).digest()


class _Direction:
    """One direction of a link: an AEAD key and a 96-bit counter nonce."""

    __slots__ = ("_aead", "_counter")

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0

    def _nonce(self) -> bytes:
        nonce = self._counter.to_bytes(12, "little")
        self._counter += 1
        return nonce

    def seal(self, plaintext: bytes) -> bytes:
        header = _LEN.pack(len(plaintext) + _TAG)
        return header + self._aead.encrypt(self._nonce(), plaintext, header)

    def open(self, header: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aead.decrypt(self._nonce(), ciphertext, header)
        except InvalidTag as exc:
            raise DecryptionFailed("a frame failed authentication") from exc


class SecureLink:
    """An established link: ``send``/``recv`` whole frames; ``peer_key`` is the pinned key."""

    __slots__ = ("_reader", "_rx", "_tx", "_writer", "initiator", "peer_key")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_key: bytes,
        tx_key: bytes,
        rx_key: bytes,
        initiator: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.peer_key = peer_key
        self._tx = _Direction(tx_key)
        self._rx = _Direction(rx_key)
        self.initiator = initiator

    def __repr__(self) -> str:
        return f"SecureLink(peer={self.peer_key.hex()[:16]}…, initiator={self.initiator})"

    def write(self, frame: bytes) -> None:
        """Queue one frame on the socket buffer (call ``drain`` for back-pressure)."""
        if len(frame) > MAX_FRAME:
            raise PayloadTooLarge(f"frames are limited to {MAX_FRAME} bytes")
        self._writer.write(self._tx.seal(frame))

    async def drain(self) -> None:
        await self._writer.drain()

    async def send(self, frame: bytes) -> None:
        self.write(frame)
        await self._writer.drain()

    async def recv(self) -> bytes:
        """The next frame; raises ``IncompleteReadError`` at EOF, simtrust errors on abuse."""
        header = await self._reader.readexactly(_LEN.size)
        (length,) = _LEN.unpack(header)
        if length < _TAG or length > MAX_FRAME + _TAG:
            raise DecodeError("frame length out of range")
        body = await self._reader.readexactly(length)
        return self._rx.open(header, body)

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            return

    @property
    def closing(self) -> bool:
        return self._writer.is_closing()


def _session(
    eph: X25519PrivateKey, peer_eph: bytes, transcript: bytes, initiator: bool
) -> tuple[bytes, bytes]:
    shared = eph.exchange(X25519PublicKey.from_public_bytes(peer_eph))
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=transcript, info=_KDF_INFO).derive(
        shared
    )
    i2r, r2i = okm[:32], okm[32:]
    return (i2r, r2i) if initiator else (r2i, i2r)


def _parse_hello(data: bytes, network_id: bytes) -> tuple[bytes, bytes]:
    proto, net, node_key, eph = _HELLO.unpack(data)
    if proto != PROTOCOL:
        raise DecodeError("peer speaks another protocol")
    if net != network_id:
        raise HandshakeFailed("peer belongs to another network")
    return node_key, eph


def _verify(key: bytes, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (_CryptoInvalidSignature, ValueError) as exc:
        raise HandshakeFailed("handshake signature does not verify") from exc


async def open_link(
    host: str,
    port: int,
    *,
    network_id: bytes,
    key: Ed25519PrivateKey,
    expected_peer: bytes,
    timeout: float = HANDSHAKE_TIMEOUT_S,
) -> SecureLink:
    """Dial ``host:port`` as the initiator; the peer must prove it holds ``expected_peer``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        return await asyncio.wait_for(
            _initiate(reader, writer, network_id, key, expected_peer), timeout
        )
    except BaseException:
        writer.close()
        raise


async def _initiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    network_id: bytes,
    key: Ed25519PrivateKey,
    expected_peer: bytes,
) -> SecureLink:
    eph = X25519PrivateKey.generate()
    hello_i = _HELLO.pack(PROTOCOL, network_id, _raw(key), _raw(eph))
    writer.write(hello_i)
    await writer.drain()
    hello_r = await reader.readexactly(_HELLO.size)
    peer_key, peer_eph = _parse_hello(hello_r, network_id)
    if peer_key != expected_peer:
        raise UnknownKey("the peer's node key is not the one genesis pins for this address")
    transcript = _transcript(hello_i, hello_r)
    sig_r = await reader.readexactly(64)
    _verify(peer_key, sig_r, _LABEL_R + transcript)
    writer.write(key.sign(_LABEL_I + transcript))
    await writer.drain()
    tx, rx = _session(eph, peer_eph, transcript, initiator=True)
    return SecureLink(reader, writer, peer_key, tx, rx, initiator=True)


async def accept_link(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    network_id: bytes,
    key: Ed25519PrivateKey,
    allowed: Callable[[bytes], bool],
    timeout: float = HANDSHAKE_TIMEOUT_S,
) -> SecureLink:
    """Authenticate an inbound connection as the responder; ``allowed(node_key)`` pins peers."""
    return await asyncio.wait_for(_respond(reader, writer, network_id, key, allowed), timeout)


async def _respond(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    network_id: bytes,
    key: Ed25519PrivateKey,
    allowed: Callable[[bytes], bool],
) -> SecureLink:
    hello_i = await reader.readexactly(_HELLO.size)
    peer_key, peer_eph = _parse_hello(hello_i, network_id)
    if not allowed(peer_key):
        raise UnknownKey("node key not pinned in genesis")
    eph = X25519PrivateKey.generate()
    hello_r = _HELLO.pack(PROTOCOL, network_id, _raw(key), _raw(eph))
    transcript = _transcript(hello_i, hello_r)
    writer.write(hello_r + key.sign(_LABEL_R + transcript))
    await writer.drain()
    sig_i = await reader.readexactly(64)
    _verify(peer_key, sig_i, _LABEL_I + transcript)
    tx, rx = _session(eph, peer_eph, transcript, initiator=False)
    return SecureLink(reader, writer, peer_key, tx, rx, initiator=False)
