"""SodiumSigner signs exactly what the OpenSSL-backed identity signer signs (Ed25519 is
deterministic), so frames are the same bytes whichever library made them."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.identity import Ed25519Signer, verify_ed25519
from simtrust.streams import Author, Reader, SodiumSigner


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), data=st.binary(max_size=512))
def test_same_seed_same_signature(seed: bytes, data: bytes) -> None:
    sodium, openssl = SodiumSigner(seed), Ed25519Signer.from_seed(seed)
    assert (openssl.public_key, openssl.verification_method) == (
        sodium.public_key, sodium.verification_method)
    assert openssl.sign(data) == sodium.sign(data)
    verify_ed25519(sodium.public_key, sodium.sign(data), data)


def test_frames_signed_by_either_library_are_identical() -> None:
    seed = os.urandom(32)
    one = Author(SodiumSigner(seed), lambda: 7)
    two = Author(Ed25519Signer.from_seed(seed), lambda: 7)
    assert one.announce.to_bytes() == two.announce.to_bytes()
    frame = one.publish(b"reading").to_bytes()
    assert frame == two.publish(b"reading").to_bytes()
    assert "ok" == Reader(two.announce.to_bytes()).accept(frame).verdict
    assert "SodiumSigner(did:key:" in repr(SodiumSigner(seed))
