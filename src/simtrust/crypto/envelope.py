"""Envelope encryption of secrets at rest (AES-256-GCM, NIST SP 800-38D).

Each sealed value gets a fresh 256-bit data key; the data key is wrapped with
the active master key (also AES-256-GCM, bound to the blob header) and stored
beside the ciphertext with the master key's id. Rotation adds a master key and
re-wraps data keys only (:meth:`Keyring.rewrap`, which needs no knowledge of
the row), so the secrets themselves are never decrypted to disk. The caller's
``aad`` binds the ciphertext to its row and field, so a blob copied to another
row fails to open.

Sealed blob layout (all lengths fixed but the key id)::

    b"SE1" | kid_len (1) | kid (utf-8) | wrap_nonce (12) | wrapped_dek (32+16)
          | nonce (12) | ciphertext+tag

The master key file is JSON ``{"active": KID, "keys": {KID: base64(32 bytes)}}``
written with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from simtrust.errors import ConfigError, DecodeError, DecryptionFailed, UnknownKey

__all__ = ["Keyring", "SealedInfo"]

_MAGIC = b"SE1"
_NONCE = 12
_WRAPPED = 48


@dataclass(frozen=True, slots=True)
class SealedInfo:
    """Public facts about a sealed blob (no secret material)."""

    key_id: str
    size: int


class Keyring:
    """Master keys by id, one of them active; seals and opens secrets."""

    __slots__ = ("_active", "_keys", "_path", "_wrappers")

    def __init__(self, keys: Mapping[str, bytes], active: str, path: Path | None = None) -> None:
        if active not in keys:
            raise ConfigError(f"active master key {active!r} is not in the keyring")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ConfigError(f"master key {kid!r} must be 32 bytes")
            if not kid or len(kid.encode()) > 64:
                raise ConfigError("master key ids must be 1..64 bytes")
        self._keys = dict(keys)
        self._active = active
        self._path = path
        self._wrappers = {kid: AESGCM(key) for kid, key in self._keys.items()}

    def __repr__(self) -> str:
        return f"Keyring(active={self._active!r}, key_ids={sorted(self._keys)!r})"

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    # -- files ---------------------------------------------------------------

    @classmethod
    def generate(cls, path: Path | None = None) -> Keyring:
        kid = _new_kid()
        ring = cls({kid: AESGCM.generate_key(bit_length=256)}, kid, path)
        if path is not None:
            ring.save()
        return ring

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            keys = {kid: base64.b64decode(v, validate=True) for kid, v in doc["keys"].items()}
            active = str(doc["active"])
        except FileNotFoundError as exc:
            raise ConfigError(f"master key file {path} not found (run `simtrust init`)") from exc
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"master key file {path} is unreadable") from exc
        return cls(keys, active, path)

    def save(self) -> None:
        if self._path is None:
            raise ConfigError("this keyring has no file")
        doc = {
            "active": self._active,
            "keys": {kid: base64.b64encode(k).decode() for kid, k in self._keys.items()},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)

    def add_key(self) -> str:
        """Add a new master key, make it active, persist; return its id."""
        kid = _new_kid()
        key = AESGCM.generate_key(bit_length=256)
        self._keys[kid] = key
        self._wrappers[kid] = AESGCM(key)
        self._active = kid
        if self._path is not None:
            self.save()
        return kid

    def retire(self, kid: str) -> None:
        """Drop a non-active master key (after every blob was re-wrapped)."""
        if kid == self._active:
            raise ConfigError("the active master key cannot be retired")
        if kid not in self._keys:
            raise UnknownKey(f"no master key {kid!r}", key_id=kid)
        del self._keys[kid]
        del self._wrappers[kid]
        if self._path is not None:
            self.save()

    # -- sealing -------------------------------------------------------------

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        dek = secrets.token_bytes(32)
        nonce = secrets.token_bytes(_NONCE)
        body = AESGCM(dek).encrypt(nonce, plaintext, aad)
        return self._header(self._active, dek) + nonce + body

    def open(self, blob: bytes, aad: bytes) -> bytes:
        _, dek, offset = self._unwrap(blob)
        nonce = blob[offset : offset + _NONCE]
        try:
            return AESGCM(dek).decrypt(nonce, blob[offset + _NONCE :], aad)
        except InvalidTag as exc:
            raise DecryptionFailed("sealed value altered or bound to other data") from exc

    def rewrap(self, blob: bytes) -> bytes:
        """Re-wrap the data key under the active master key; body unchanged."""
        kid, dek, offset = self._unwrap(blob)
        if kid == self._active:
            return blob
        return self._header(self._active, dek) + blob[offset:]

    def info(self, blob: bytes) -> SealedInfo:
        kid, _ = _parse_kid(blob)
        return SealedInfo(key_id=kid, size=len(blob))

    def _header(self, kid: str, dek: bytes) -> bytes:
        kid_bytes = kid.encode()
        prefix = _MAGIC + bytes([len(kid_bytes)]) + kid_bytes
        wrap_nonce = secrets.token_bytes(_NONCE)
        wrapped = self._wrappers[kid].encrypt(wrap_nonce, dek, prefix)
        return prefix + wrap_nonce + wrapped

    def _unwrap(self, blob: bytes) -> tuple[str, bytes, int]:
        kid, offset = _parse_kid(blob)
        wrapper = self._wrappers.get(kid)
        if wrapper is None:
            raise UnknownKey(
                f"sealed with master key {kid!r}, which this keyring lacks", key_id=kid
            )
        end = offset + _NONCE + _WRAPPED
        if len(blob) < end + _NONCE + 16:
            raise DecodeError("sealed value is truncated")
        try:
            dek = wrapper.decrypt(
                blob[offset : offset + _NONCE], blob[offset + _NONCE : end], blob[:offset]
            )
        except InvalidTag as exc:
            raise DecryptionFailed("sealed value altered or bound to other data") from exc
        return kid, dek, end


def _parse_kid(blob: bytes) -> tuple[str, int]:
    if len(blob) < 5 or blob[:3] != _MAGIC:
        raise DecodeError("not a sealed value")
    n = blob[3]
    end = 4 + n
    if n == 0 or len(blob) < end:
        raise DecodeError("sealed value has a bad key id")
    try:
        return blob[4:end].decode(), end
    except UnicodeDecodeError as exc:
        raise DecodeError("sealed value has a bad key id") from exc


def _new_kid() -> str:
    return "mk-" + secrets.token_hex(6)
