"""The SIM as secure element: keys generated inside, used inside, never exported.

:class:`SecureElement` has the shape of a SIM applet such as GSMA IoT SAFE
(GSMA IoT.05 "IoT SAFE", key-pair generation in the applet, ``COMPUTE
SIGNATURE``, ``GET PUBLIC KEY``; keys addressed by label): there is no way to
read a private key through it. :class:`SoftwareSecureElement` fills it in
software, keeping each private key sealed under the runtime keyring (envelope
encryption, bound to the element and label as AAD) or in memory for tests.
:func:`sealed_p256_key` keeps a P-256 key the same way for the ECDSA
cryptosuites (Data Integrity ECDSA §3), which the Ed25519 element cannot sign,
and :func:`sealed_x25519_key` an X25519 key for a DID's ``keyAgreement`` (DID
Core §5.3.4), with which HPKE (RFC 9180) opens what is sealed to the DID.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from simtrust.errors import Conflict, InvalidInput, UnknownKey
from simtrust.identity._keys import Signer, ed25519_public_bytes
from simtrust.store import Database

__all__ = [
    "Keyring",
    "SecureElement",
    "SecureElementSigner",
    "SoftwareSecureElement",
    "sealed_p256_key",
    "sealed_x25519_key",
]

_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Keyring(Protocol):
    """The runtime keyring's envelope encryption (``rt.keyring``)."""

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


class SecureElement(ABC):
    """Key slots addressed by label; Ed25519 only; private keys never leave."""

    @property
    @abstractmethod
    def element_id(self) -> str:
        """A stable identifier of this element (for a SIM: its ICCID)."""

    @abstractmethod
    def generate_key(self, label: str) -> bytes:
        """Create a key pair inside the element under ``label``; return the public key."""

    @abstractmethod
    def public_key(self, label: str) -> bytes:
        """The 32-byte public key in slot ``label`` (:class:`UnknownKey` if empty)."""

    @abstractmethod
    def sign(self, label: str, data: bytes) -> bytes:
        """Ed25519 signature by the key in slot ``label``."""

    @abstractmethod
    def labels(self) -> list[str]:
        """Occupied slots."""

    def signer(self, label: str, verification_method: str) -> SecureElementSigner:
        """A :class:`Signer` whose key stays in this element."""
        return SecureElementSigner(self, label, verification_method)


class SecureElementSigner(Signer):
    __slots__ = ("_element", "_label", "_public", "_vm")

    def __init__(self, element: SecureElement, label: str, verification_method: str) -> None:
        self._element = element
        self._label = label
        self._public = element.public_key(label)
        self._vm = verification_method

    @property
    def verification_method(self) -> str:
        return self._vm

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._element.sign(self._label, data)

    def __repr__(self) -> str:
        return f"SecureElementSigner({self._element.element_id!r}, {self._label!r})"


class SoftwareSecureElement(SecureElement):
    """A software secure element: in memory, or sealed in ``identity_se_key`` via the keyring."""

    __slots__ = ("_db", "_id", "_keyring", "_memory")

    def __init__(
        self,
        element_id: str,
        *,
        db: Database | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        if (db is None) != (keyring is None):
            raise InvalidInput("a persistent secure element needs both a database and a keyring")
        if not _LABEL.fullmatch(element_id):
            raise InvalidInput("element id must be 1-64 of [A-Za-z0-9._-]")
        self._id = element_id
        self._db = db
        self._keyring = keyring
        self._memory: dict[str, Ed25519PrivateKey] = {}

    @property
    def element_id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"SoftwareSecureElement({self._id!r}, persistent={self._db is not None})"

    def _aad(self, label: str) -> bytes:
        return f"simtrust/identity/secure-element/{self._id}/{label}".encode()

    def generate_key(self, label: str) -> bytes:
        if not _LABEL.fullmatch(label):
            raise InvalidInput("key label must be 1-64 of [A-Za-z0-9._-]")
        if label in self.labels():
            raise Conflict(f"slot {label!r} of {self._id} is already in use")
        key = Ed25519PrivateKey.generate()
        public = ed25519_public_bytes(key.public_key())
        if self._db is None or self._keyring is None:
            self._memory[label] = key
            return public
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        sealed = self._keyring.seal(raw, self._aad(label))
        self._db.execute(
            "INSERT INTO identity_se_key (element_id, label, public_key, sealed)"
            " VALUES (?, ?, ?, ?)",
            (self._id, label, public, sealed),
        )
        return public

    def _private(self, label: str) -> Ed25519PrivateKey:
        if label in self._memory:
            return self._memory[label]
        if self._db is None or self._keyring is None:
            raise UnknownKey(f"no key in slot {label!r} of {self._id}")
        row = self._db.query_one(
            "SELECT sealed FROM identity_se_key WHERE element_id = ? AND label = ?",
            (self._id, label),
        )
        if row is None:
            raise UnknownKey(f"no key in slot {label!r} of {self._id}")
        return Ed25519PrivateKey.from_private_bytes(
            self._keyring.open(bytes(row[0]), self._aad(label))
        )

    def public_key(self, label: str) -> bytes:
        if label in self._memory:
            return ed25519_public_bytes(self._memory[label].public_key())
        if self._db is not None:
            row = self._db.query_one(
                "SELECT public_key FROM identity_se_key WHERE element_id = ? AND label = ?",
                (self._id, label),
            )
            if row is not None:
                return bytes(row[0])
        raise UnknownKey(f"no key in slot {label!r} of {self._id}")

    def sign(self, label: str, data: bytes) -> bytes:
        return self._private(label).sign(data)

    def labels(self) -> list[str]:
        if self._db is None:
            return sorted(self._memory)
        rows = self._db.query(
            "SELECT label FROM identity_se_key WHERE element_id = ? ORDER BY label", (self._id,)
        )
        return [str(r[0]) for r in rows]


def sealed_p256_key(
    db: Database, keyring: Keyring, element_id: str, label: str
) -> ec.EllipticCurvePrivateKey:
    """The P-256 key in ``element_id``/``label`` (PKCS #8, sealed), made on first use."""
    key = _sealed_key(db, keyring, element_id, label, "p256",
                      lambda: ec.generate_private_key(ec.SECP256R1()))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UnknownKey(f"slot {label!r} of {element_id} holds no P-256 key")
    return key


def sealed_x25519_key(
    db: Database, keyring: Keyring, element_id: str, label: str
) -> X25519PrivateKey:
    """The X25519 key-agreement key in ``element_id``/``label`` (sealed), made on first use."""
    key = _sealed_key(db, keyring, element_id, label, "x25519", X25519PrivateKey.generate)
    if not isinstance(key, X25519PrivateKey):
        raise UnknownKey(f"slot {label!r} of {element_id} holds no X25519 key")
    return key


def _sealed_key(db: Database, keyring: Keyring, element_id: str, label: str, kind: str,
                generate: Callable[[], ec.EllipticCurvePrivateKey | X25519PrivateKey]) -> object:
    aad = f"simtrust/identity/secure-element/{element_id}/{label}/{kind}".encode()
    query = "SELECT sealed FROM identity_se_key WHERE element_id = ? AND label = ?"
    row = db.query_one(query, (element_id, label))
    if row is None:
        key = generate()
        der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        public = (key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                  if isinstance(key, X25519PrivateKey) else
                  key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint))
        try:
            with db.transaction(durable=True):
                db.execute(
                    "INSERT INTO identity_se_key (element_id, label, public_key, sealed)"
                    " VALUES (?, ?, ?, ?)",
                    (element_id, label, public, keyring.seal(der, aad)),
                )
        except Conflict:
            pass  # another worker made it first: use theirs
        row = db.query_one(query, (element_id, label))
        assert row is not None
    return load_der_private_key(keyring.open(bytes(row[0]), aad), password=None)
