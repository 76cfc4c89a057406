"""Channels: an author's signed, hash-chained messages, public or private.

An author (a DID's Ed25519 key, held in a SIM's secure element or anywhere an
:class:`~simtrust.identity.Signer` lives) announces a channel and publishes
messages on branches; each message names the previous one's id, so a reader
sees any gap, fork, replay or reordering (``_reader``).

Private channels encrypt every payload under the channel key of a *key epoch*
(AES-256-GCM, random 96-bit nonce, associated data binding channel, branch,
seq and epoch). A **keyload** starts an epoch: it carries the epoch key once
per current subscriber, encrypted to the subscriber's X25519 key with HPKE
(RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM;
pyca/cryptography's implementation), with ``info`` binding channel and epoch.
Removing a subscriber starts a new epoch without them, so they cannot read
what follows. Keyload payload, big-endian::

    count u16, then per subscriber: recipient u8[32] (BLAKE2b-256 of the
    X25519 public key), length u16, HPKE enc ‖ ciphertext of the 32-byte key
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import DecodeError, InvalidInput
from simtrust.identity import Signer
from simtrust.streams._frame import ZERO, Frame, FrameKind, frame_id

__all__ = [
    "Author",
    "SubscriberKey",
    "decode_keyload",
    "open_payload",
    "recipient_id",
]

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_NONCE = 12
Clock = Callable[[], int]


def recipient_id(public: bytes) -> bytes:
    """How a keyload names a subscriber: BLAKE2b-256 of its X25519 public key."""
    return hashlib.blake2b(public, digest_size=32).digest()


def _info(channel: bytes, epoch: int) -> bytes:
    return b"simtrust-stream-keyload" + channel + struct.pack(">I", epoch)


def _aad(channel: bytes, branch: int, seq: int, epoch: int) -> bytes:
    return b"simtrust-stream-data" + channel + struct.pack(">HQI", branch, seq, epoch)


@dataclass(slots=True)
class SubscriberKey:
    """A subscriber's X25519 key pair for private channels (the private half stays here)."""

    private: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SubscriberKey:
        return cls(X25519PrivateKey.generate())

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def open_keyload(self, channel: bytes, epoch: int, payload: bytes) -> bytes | None:
        """This subscriber's epoch key from a keyload payload, or None if not addressed."""
        mine = recipient_id(self.public)
        for recipient, sealed in decode_keyload(payload):
            if recipient != mine:
                continue
            try:
                key = _SUITE.decrypt(sealed, self.private, info=_info(channel, epoch))
            except InvalidTag as exc:
                raise DecodeError("keyload entry does not open with this key") from exc
            if len(key) != 32:
                raise DecodeError("keyload carries a key of the wrong size")
            return key
        return None


def decode_keyload(payload: bytes) -> list[tuple[bytes, bytes]]:
    """(recipient id, HPKE enc ‖ ciphertext) entries of a keyload payload."""
    if len(payload) < 2:
        raise DecodeError("keyload too short")
    (count,) = struct.unpack_from(">H", payload)
    offset, entries = 2, []
    for _ in range(count):
        if offset + 34 > len(payload):
            raise DecodeError("keyload entry truncated")
        recipient = payload[offset:offset + 32]
        (length,) = struct.unpack_from(">H", payload, offset + 32)
        offset += 34
        if offset + length > len(payload):
            raise DecodeError("keyload entry truncated")
        entries.append((bytes(recipient), bytes(payload[offset:offset + length])))
        offset += length
    if offset != len(payload):
        raise DecodeError("trailing bytes after keyload entries")
    return entries


def open_payload(frame: Frame, key: bytes) -> bytes:
    """Decrypt a private data frame's payload with its epoch key."""
    if len(frame.payload) < _NONCE + 16:
        raise DecodeError("encrypted payload too short")
    nonce, sealed = frame.payload[:_NONCE], frame.payload[_NONCE:]
    try:
        return AESGCM(key).decrypt(
            nonce, sealed, _aad(frame.channel, frame.branch, frame.seq, frame.key_epoch)
        )
    except InvalidTag as exc:
        raise DecodeError("payload does not decrypt under the epoch key") from exc


class Author:
    """Writes one channel: announce, messages per branch, keyloads for private ones."""

    def __init__(
        self,
        signer: Signer,
        clock: Clock,
        *,
        private: bool = False,
        announce_payload: bytes = b"",
    ) -> None:
        self._signer = signer
        self._clock = clock
        self.private = private
        self._subscribers: dict[bytes, bytes] = {}  # recipient id -> X25519 public key
        self._epoch = 0
        self._key: bytes | None = None
        announce = self._sign(
            Frame(FrameKind.ANNOUNCE, 0, 0, ZERO, ZERO, signer.public_key, clock(), 0,
                  announce_payload)
        )
        self.announce = announce
        self.channel = frame_id(announce.signed_bytes())
        self._heads: dict[int, tuple[int, bytes]] = {0: (0, announce.message_id)}

    @classmethod
    def resume(cls, signer: Signer, clock: Clock, announce: Frame,
               heads: dict[int, tuple[int, bytes]]) -> Author:
        """Continue a public channel from its announce and each branch's (seq, id) head
        (an author whose earlier messages are stored elsewhere, such as the platform)."""
        if announce.kind is not FrameKind.ANNOUNCE or announce.author != signer.public_key:
            raise InvalidInput("the announce is not this signer's")
        author = cls.__new__(cls)
        author._signer = signer
        author._clock = clock
        author.private = False
        author._subscribers = {}
        author._epoch = 0
        author._key = None
        author.announce = announce
        author.channel = frame_id(announce.signed_bytes())
        author._heads = {0: (0, announce.message_id), **heads}
        return author

    def __repr__(self) -> str:
        return f"Author(channel={self.channel.hex()[:16]}…, private={self.private})"

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def heads(self) -> dict[int, tuple[int, bytes]]:
        """Per branch, the (seq, id) of its last message (what :meth:`resume` takes)."""
        return dict(self._heads)

    @property
    def subscribers(self) -> list[bytes]:
        return sorted(self._subscribers.values())

    def _sign(self, frame: Frame) -> Frame:
        signed = frame.signed_bytes()
        signature = self._signer.sign(signed)
        return Frame(
            frame.kind, frame.branch, frame.seq, frame.channel, frame.prev, frame.author,
            frame.time_ms, frame.key_epoch, frame.payload, frame.encrypted, signature,
        )

    def _next(self, branch: int) -> tuple[int, bytes]:
        if branch not in self._heads:
            raise InvalidInput(f"branch {branch} is not open; call branch() first")
        seq, prev = self._heads[branch]
        return seq + 1, prev

    def _emit(self, kind: FrameKind, branch: int, payload: bytes, *, encrypt: bool) -> Frame:
        seq, prev = self._next(branch)
        epoch = self._epoch if encrypt else 0
        if encrypt:
            if self._key is None:
                raise InvalidInput("a private channel needs a keyload before its first message")
            nonce = os.urandom(_NONCE)
            payload = nonce + AESGCM(self._key).encrypt(
                nonce, payload, _aad(self.channel, branch, seq, epoch)
            )
        frame = self._sign(
            Frame(kind, branch, seq, self.channel, prev, self._signer.public_key, self._clock(),
                  epoch, payload, encrypt)
        )
        self._heads[branch] = (seq, frame.message_id)
        return frame

    def branch(self, branch: int) -> None:
        """Open ``branch`` (1..65535); its first message follows the announce."""
        if not 0 < branch <= 0xFFFF or branch in self._heads:
            raise InvalidInput(f"branch {branch} is open already or out of range")
        self._heads[branch] = (0, self.announce.message_id)

    def publish(self, payload: bytes, branch: int = 0) -> Frame:
        """A signed data message (encrypted on a private channel)."""
        return self._emit(FrameKind.DATA, branch, payload, encrypt=self.private)

    def set_subscribers(self, publics: Iterable[bytes], branch: int = 0) -> Frame:
        """Start a new key epoch for exactly these X25519 keys; returns the keyload frame."""
        if not self.private:
            raise InvalidInput("a public channel has no keyloads")
        keys = {}
        for public in publics:
            if len(public) != 32:
                raise InvalidInput("an X25519 public key has 32 bytes")
            keys[recipient_id(public)] = public
        self._subscribers = keys
        self._epoch += 1
        self._key = os.urandom(32)
        body = [struct.pack(">H", len(keys))]
        for recipient, public in sorted(keys.items()):
            sealed = _SUITE.encrypt(
                self._key, X25519PublicKey.from_public_bytes(public),
                info=_info(self.channel, self._epoch),
            )
            body.append(recipient + struct.pack(">H", len(sealed)) + sealed)
        seq, prev = self._next(branch)
        frame = self._sign(
            Frame(FrameKind.KEYLOAD, branch, seq, self.channel, prev, self._signer.public_key,
                  self._clock(), self._epoch, b"".join(body))
        )
        self._heads[branch] = (seq, frame.message_id)
        return frame

    def add_subscriber(self, public: bytes, branch: int = 0) -> Frame:
        return self.set_subscribers([*self._subscribers.values(), public], branch)

    def remove_subscriber(self, public: bytes, branch: int = 0) -> Frame:
        """A new epoch without ``public``: it cannot read anything published after this."""
        rest = [p for p in self._subscribers.values() if p != public]
        if len(rest) == len(self._subscribers):
            raise InvalidInput("not a subscriber of this channel")
        return self.set_subscribers(rest, branch)
