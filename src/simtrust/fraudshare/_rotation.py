"""The consortium key rotation message: fresh epoch key, member list, key wrapped per member.

A consortium coordinator (a DID named in every member's settings) starts a
key epoch with a :func:`rotation` document: a fresh random 32-byte key, the
epoch's member list and, for each member, that key sealed to the member's
key-agreement key (the X25519 ``Multikey`` its DID document lists under
``keyAgreement``, W3C DID Core §5.3.4; CID 1.0 §2.2.2) with HPKE (RFC 9180
§6.1 single-shot base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
AES-256-GCM; pyca/cryptography's implementation). The HPKE ``info`` binds
coordinator, epoch, sequence, recipient and its key, so a sealed key cannot
be moved to another member, epoch or message. The document carries an
``eddsa-jcs-2022`` Data Integrity proof by the coordinator (VC Data Integrity
§4; the same signing as fraud reports) and travels on the ledger as
``tagged-data`` under :data:`CONSORTIUM_TAG` (docs/fraud.md "Consortium
membership and key rotation"). :func:`check_rotation` is the strict decoder
of an untrusted rotation; what a member does with one is
:mod:`simtrust.fraudshare._membership`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simtrust.errors import DecodeError, InvalidInput
from simtrust.identity import (
    DidResolver,
    Signer,
    VerificationFailed,
    add_proof,
    canonicalize,
    decode_multikey,
    verify_proofs,
    x25519_multikey,
)

__all__ = [
    "CONSORTIUM_TAG",
    "KeyAgreementKey",
    "Rotation",
    "check_rotation",
    "decode_rotation_payload",
    "key_agreement_of",
    "rotation",
    "rotation_payload",
]

#: The ledger tagged-data tag of consortium key rotations (version 1).
CONSORTIUM_TAG = b"simtrust/fraud-consortium/1"
ROTATION_TYPE = "ConsortiumKeyRotation"
MAX_MEMBERS = 64
MAX_ROTATION_BYTES = 48 * 1024
KEY_BYTES = 32
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
#: HPKE enc (32) + sealed key (32) + AEAD tag (16).
_SEALED_BYTES = 32 + KEY_BYTES + 16
_EPOCH = re.compile(r"[A-Za-z0-9._-]{1,32}")
_FIELDS = frozenset({"type", "coordinator", "epoch", "sequence", "members", "keys", "proof"})
_ENTRY = frozenset({"member", "keyAgreement", "sealed"})


def _malformed(detail: str) -> VerificationFailed:
    return VerificationFailed("malformed", detail)


class KeyAgreementKey:
    """A member's X25519 key-agreement key (the private half never leaves; never printed).

    ``verification_method`` is the DID URL its DID document lists under ``keyAgreement``.
    """

    __slots__ = ("_private", "verification_method")

    def __init__(self, private: X25519PrivateKey, verification_method: str) -> None:
        self._private = private
        self.verification_method = verification_method

    @classmethod
    def generate(cls, verification_method: str) -> KeyAgreementKey:
        return cls(X25519PrivateKey.generate(), verification_method)

    @classmethod
    def from_ed25519_seed(cls, seed: bytes, verification_method: str) -> KeyAgreementKey:
        """The X25519 key of an Ed25519 seed (RFC 8032 §5.1.5 scalar; RFC 7748 clamps it).

        This is the private half of the ``keyAgreement`` key a did:key Ed25519
        document derives (did:key v0.9 §3.1.2), as libsodium's
        ``crypto_sign_ed25519_sk_to_curve25519`` computes it.
        """
        scalar = hashlib.sha512(bytes(seed)).digest()[:32]
        return cls(X25519PrivateKey.from_private_bytes(scalar), verification_method)

    @property
    def public(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def controller(self) -> str:
        return self.verification_method.split("#", 1)[0]

    def open(self, sealed: bytes, info: bytes) -> bytes:
        """The key sealed to this member; :class:`VerificationFailed` if it does not open."""
        try:
            key = _SUITE.decrypt(sealed, self._private, info=info)
        except (InvalidTag, ValueError) as exc:
            raise VerificationFailed("undecryptable", "the sealed key does not open with this"
                                     " member's key-agreement key") from exc
        if len(key) != KEY_BYTES:
            raise VerificationFailed("malformed", "the sealed key is not 32 bytes")
        return key

    def __repr__(self) -> str:
        return f"KeyAgreementKey({self.verification_method!r})"


def key_agreement_of(resolver: DidResolver, did: str) -> tuple[str, bytes]:
    """(verification method URL, X25519 public key) of the first X25519 ``keyAgreement`` key."""
    document = resolver.resolve(did).document
    methods = {str(m.get("id", "")): m for m in document.get("verificationMethod", [])
               if isinstance(m, dict)}
    for entry in document.get("keyAgreement", []) or []:
        method = entry if isinstance(entry, dict) else methods.get(
            did + entry if isinstance(entry, str) and entry.startswith("#") else str(entry))
        if not isinstance(method, dict):
            continue
        vm = str(method.get("id", ""))
        vm = did + vm if vm.startswith("#") else vm
        value = str(method.get("publicKeyMultibase", ""))
        try:
            _, public = decode_multikey(value)
        except DecodeError:
            continue
        if x25519_multikey(public) == value:
            return vm, public
    raise InvalidInput(f"{did} lists no X25519 keyAgreement key", field="members")


def _info(coordinator: str, epoch: str, sequence: int, member: str, vm: str) -> bytes:
    return b"simtrust-fraud-consortium/1 key|" + canonicalize(
        {"coordinator": coordinator, "epoch": epoch, "sequence": sequence, "member": member,
         "keyAgreement": vm})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rotation(
    signer: Signer,
    resolver: DidResolver,
    *,
    epoch: str,
    sequence: int,
    members: Iterable[str],
    now: datetime,
) -> dict[str, Any]:
    """The signed rotation starting ``epoch``: a fresh key sealed to each member.

    The coordinator (``signer``'s DID) is always a member. The key itself is in
    the document only sealed; :func:`check_rotation` and a member's key open it.
    """
    if not _EPOCH.fullmatch(epoch):
        raise InvalidInput("a key epoch is 1-32 letters, digits, '.', '_' or '-'", field="epoch")
    if not isinstance(sequence, int) or sequence < 1:
        raise InvalidInput("a rotation sequence is a positive integer", field="sequence")
    everyone = sorted(set(members) | {signer.controller})
    if len(everyone) > MAX_MEMBERS:
        raise InvalidInput(f"a consortium has at most {MAX_MEMBERS} members", field="members")
    key = secrets.token_bytes(KEY_BYTES)
    entries = []
    for member in everyone:
        vm, public = key_agreement_of(resolver, member)
        sealed = _SUITE.encrypt(key, X25519PublicKey.from_public_bytes(public),
                                info=_info(signer.controller, epoch, sequence, member, vm))
        entries.append({"member": member, "keyAgreement": vm, "sealed": _b64(sealed)})
    document = {"type": ROTATION_TYPE, "coordinator": signer.controller, "epoch": epoch,
                "sequence": sequence, "members": everyone, "keys": entries}
    return add_proof(document, signer, created=now)


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation whose form and coordinator's proof were checked (the key still sealed)."""

    coordinator: str
    epoch: str
    sequence: int
    members: frozenset[str]
    #: member → (keyAgreement URL, HPKE enc ‖ ciphertext)
    sealed: dict[str, tuple[str, bytes]] = field(repr=False)

    def open(self, key: KeyAgreementKey) -> bytes:
        """This member's copy of the epoch key (:class:`VerificationFailed` with a reason)."""
        me = key.controller
        if me not in self.members or me not in self.sealed:
            raise VerificationFailed("not-a-recipient",
                                     f"epoch {self.epoch} does not include {me}")
        vm, sealed = self.sealed[me]
        if vm != key.verification_method:
            raise VerificationFailed("wrong-key-agreement-key",
                                     f"the key is sealed to {vm}, this member holds"
                                     f" {key.verification_method}")
        return key.open(sealed, _info(self.coordinator, self.epoch, self.sequence, me, vm))

    def to_json(self) -> dict[str, Any]:
        return {"coordinator": self.coordinator, "epoch": self.epoch, "sequence": self.sequence,
                "members": sorted(self.members)}


def _did(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("did:") or not 4 < len(value) <= 200:
        raise _malformed("members and the coordinator are DIDs of at most 200 characters")
    return value


def check_rotation(doc: object, *, resolver: DidResolver, now: datetime) -> Rotation:
    """Decode an untrusted rotation and verify the coordinator's proof (reason on failure)."""
    if not isinstance(doc, dict) or set(doc) != _FIELDS or doc["type"] != ROTATION_TYPE:
        raise _malformed(f"a {ROTATION_TYPE} has exactly {', '.join(sorted(_FIELDS))}")
    coordinator = _did(doc["coordinator"])
    epoch, sequence = doc["epoch"], doc["sequence"]
    if not isinstance(epoch, str) or not _EPOCH.fullmatch(epoch):
        raise _malformed("a key epoch is 1-32 letters, digits, '.', '_' or '-'")
    if type(sequence) is not int or not 1 <= sequence < 2**53:
        raise _malformed("the sequence is a positive integer")
    members, entries = doc["members"], doc["keys"]
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
        raise _malformed(f"members is a list of 1-{MAX_MEMBERS} DIDs")
    listed = {_did(m) for m in members}
    if len(listed) != len(members) or coordinator not in listed:
        raise _malformed("members are distinct and include the coordinator")
    if not isinstance(entries, list) or len(entries) != len(members):
        raise _malformed("keys has one entry per member")
    sealed: dict[str, tuple[str, bytes]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != _ENTRY:
            raise _malformed("a key entry has member, keyAgreement and sealed")
        member, vm, value = _did(entry["member"]), entry["keyAgreement"], entry["sealed"]
        if member not in listed or member in sealed:
            raise _malformed("each member has exactly one key entry")
        if not isinstance(vm, str) or not vm.startswith(member + "#") or len(vm) > 300:
            raise _malformed("keyAgreement is a verification method of the member")
        if not isinstance(value, str) or len(value) > 200:
            raise _malformed("sealed is base64url")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError) as exc:
            raise _malformed("sealed is base64url") from exc
        if len(raw) != _SEALED_BYTES or _b64(raw) != value:
            raise _malformed(f"sealed is {_SEALED_BYTES} bytes in unpadded base64url")
        sealed[member] = (vm, raw)
    proofs = verify_proofs(doc, resolver=resolver, now=now)
    if not any(p.controller == coordinator for p in proofs):
        raise VerificationFailed("key-not-authorized", "the rotation is not signed by its"
                                 " coordinator")
    return Rotation(coordinator, epoch, sequence, frozenset(listed), sealed)


def rotation_payload(doc: dict[str, Any]) -> bytes:
    """The tagged-data body: JCS of ``{"v": 1, "kind": "rotation", "rotation": doc}``."""
    data = canonicalize({"v": 1, "kind": "rotation", "rotation": doc})
    if len(data) > MAX_ROTATION_BYTES:
        raise InvalidInput("a rotation payload is at most 48 KiB")
    return data


def decode_rotation_payload(data: bytes) -> dict[str, Any]:
    """The rotation document of an untrusted payload, or :class:`DecodeError`."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_ROTATION_BYTES:
        raise DecodeError("a rotation payload is at most 48 KiB of bytes")
    try:
        envelope = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError("a rotation payload is JSON") from exc
    if (not isinstance(envelope, dict) or envelope.get("v") != 1
            or envelope.get("kind") != "rotation" or set(envelope) != {"v", "kind", "rotation"}
            or not isinstance(envelope["rotation"], dict)):
        raise DecodeError("a rotation payload is {v: 1, kind: rotation, rotation: {...}}")
    return dict(envelope["rotation"])
