"""Envelope encryption: round trips, binding to AAD, rotation, files, hostile blobs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtrust.crypto import Keyring
from simtrust.errors import ConfigError, DecodeError, DecryptionFailed, SimtrustError, UnknownKey


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


def test_seal_open_round_trip(ring: Keyring) -> None:
    blob = ring.seal(b"K=000102", b"sim:8901:k")
    assert b"K=000102" not in blob
    assert b"K=000102" == ring.open(blob, b"sim:8901:k")
    assert ring.info(blob).key_id == ring.active_key_id


def test_two_seals_differ(ring: Keyring) -> None:
    assert ring.seal(b"same", b"a") != ring.seal(b"same", b"a")


def test_wrong_aad_fails(ring: Keyring) -> None:
    blob = ring.seal(b"secret", b"row-1")
    with pytest.raises(DecryptionFailed):
        ring.open(blob, b"row-2")


def test_flipped_bit_anywhere_fails(ring: Keyring) -> None:
    blob = ring.seal(b"secret", b"row")
    for i in range(len(blob)):
        altered = bytearray(blob)
        altered[i] ^= 0x01
        with pytest.raises(SimtrustError):
            ring.open(bytes(altered), b"row")


def test_rotation_rewraps_without_changing_body(tmp_path: Path) -> None:
    ring = Keyring.generate(tmp_path / "master.keys")
    old_kid = ring.active_key_id
    blob = ring.seal(b"opc", b"aad")
    new_kid = ring.add_key()
    rewrapped = ring.rewrap(blob)
    assert new_kid == ring.info(rewrapped).key_id
    assert blob[-30:] == rewrapped[-30:]
    ring.retire(old_kid)
    with pytest.raises(UnknownKey):
        ring.open(blob, b"aad")
    reloaded = Keyring.load(tmp_path / "master.keys")
    assert b"opc" == reloaded.open(rewrapped, b"aad")
    assert [new_kid] == reloaded.key_ids


def test_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    Keyring.generate(path)
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)


def test_active_key_cannot_be_retired(ring: Keyring) -> None:
    with pytest.raises(ConfigError):
        ring.retire(ring.active_key_id)


def test_repr_shows_no_key_material(ring: Keyring) -> None:
    text = repr(ring)
    assert ring.active_key_id in text
    assert len(text) < 120


def test_unreadable_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.keys"
    path.write_text("{not json")
    with pytest.raises(ConfigError):
        Keyring.load(path)
    with pytest.raises(ConfigError, match="not found"):
        Keyring.load(tmp_path / "missing")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_open(blob: bytes) -> None:
    ring = Keyring({"k1": bytes(32)}, "k1")
    with pytest.raises((DecodeError, DecryptionFailed, UnknownKey)):
        ring.open(blob, b"aad")


@given(st.binary(max_size=512), st.binary(max_size=64))
def test_round_trip_property(plaintext: bytes, aad: bytes) -> None:
    ring = Keyring({"k1": bytes(range(32))}, "k1")
    assert plaintext == ring.open(ring.seal(plaintext, aad), aad)
