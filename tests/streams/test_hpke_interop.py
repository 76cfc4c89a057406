"""Keyloads interoperate with an independent RFC 9180 implementation (pyhpke).

simtrust seals each subscriber's epoch key with pyca/cryptography's HPKE; here
pyhpke (a separate implementation) opens a keyload entry, and a keyload entry
sealed by pyhpke opens in simtrust's reader, both with the suite and ``info``
docs/streams.md specifies.
"""

from __future__ import annotations

import itertools
import os
import struct

from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

from simtrust.identity import Ed25519Signer
from simtrust.streams import (
    Author,
    Frame,
    FrameKind,
    Reader,
    SubscriberKey,
    decode_frame,
    decode_keyload,
    recipient_id,
)

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
ENC = 32  # DHKEM(X25519) encapsulated key length (RFC 9180 §7.1)


def _info(channel: bytes, epoch: int) -> bytes:
    return b"simtrust-stream-keyload" + channel + struct.pack(">I", epoch)


def test_pyhpke_opens_a_simtrust_keyload() -> None:
    ticks = itertools.count(1)
    author = Author(Ed25519Signer.generate(), lambda: next(ticks), private=True)
    subscriber = SubscriberKey.generate()
    keyload = decode_frame(author.set_subscribers([subscriber.public]).to_bytes())
    [(recipient, sealed)] = decode_keyload(keyload.payload)
    assert recipient_id(subscriber.public) == recipient
    context = SUITE.create_recipient_context(
        sealed[:ENC], KEMKey.from_pyca_cryptography_key(subscriber.private),
        info=_info(author.channel, keyload.key_epoch))
    key = context.open(sealed[ENC:])  # single-shot = the context's first message (§6.1)
    assert 32 == len(key)
    # the key pyhpke recovered decrypts the next private message as simtrust does
    message = author.publish(b"reading").to_bytes()
    reader = Reader(author.announce.to_bytes(), subscriber)
    reader.accept(keyload.to_bytes())
    assert b"reading" == reader.accept(message).payload


def test_simtrust_opens_a_keyload_entry_sealed_by_pyhpke() -> None:
    signer = Ed25519Signer.generate()
    ticks = itertools.count(1)
    author = Author(signer, lambda: next(ticks), private=True)
    subscriber = SubscriberKey.generate()
    epoch_key = os.urandom(32)
    enc, context = SUITE.create_sender_context(
        KEMKey.from_pyca_cryptography_key(subscriber.private.public_key()),
        info=_info(author.channel, 1))
    ct = context.seal(epoch_key)
    sealed = enc + ct
    payload = struct.pack(">H", 1) + recipient_id(subscriber.public) + struct.pack(
        ">H", len(sealed)) + sealed
    unsigned = Frame(FrameKind.KEYLOAD, 0, 1, author.channel, author.announce.message_id,
                     signer.public_key, 2, 1, payload)
    frame = Frame(unsigned.kind, 0, 1, unsigned.channel, unsigned.prev, unsigned.author, 2, 1,
                  payload, False, signer.sign(unsigned.signed_bytes()))
    assert epoch_key == subscriber.open_keyload(author.channel, 1, frame.payload)
    assert "ok" == Reader(author.announce.to_bytes(), subscriber).accept(frame.to_bytes()).verdict
