"""DID resolution and verification-method dereferencing (W3C DID Resolution §4, §5).

:class:`DidResolver` routes a DID to its method (did:key built in, did:simtrust
through the ledger-backed registry) and answers the one question verifiers
ask: which Ed25519 key does this verification method hold, and is it
authorised for this proof purpose (W3C DID Core §5.3)?
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simtrust.errors import DecodeError
from simtrust.identity._didkey import cached_did_key, resolve_did_key
from simtrust.identity._ecdsa import decode_p256_multikey
from simtrust.identity._errors import DidNotFound, InvalidDid, VerificationFailed
from simtrust.identity._keys import decode_multikey
from simtrust.identity._multibase import ED25519_PUB, b58decode

__all__ = ["DidMethod", "DidResolver", "Resolution", "parse_did"]

_DID = re.compile(r"did:([a-z0-9]+):([A-Za-z0-9._:%-]*[A-Za-z0-9._%-])")


def parse_did(value: str) -> tuple[str, str]:
    """(method, method-specific id) of a DID (DID Core §3.1 syntax), or :class:`InvalidDid`."""
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidDid("a DID is a string of at most 2048 characters")
    match = _DID.fullmatch(value)
    if match is None:
        raise InvalidDid("not a DID (did:<method>:<id>)")
    return match.group(1), match.group(2)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The three parts of a DID Resolution result (DID Resolution §4.1)."""

    document: dict[str, Any]
    document_metadata: dict[str, Any] = field(default_factory=dict)
    resolution_metadata: dict[str, Any] = field(
        default_factory=lambda: {"contentType": "application/did+ld+json"}
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "@context": "https://w3id.org/did-resolution/v1",
            "didDocument": self.document,
            "didDocumentMetadata": self.document_metadata,
            "didResolutionMetadata": self.resolution_metadata,
        }


class DidMethod(Protocol):
    """A DID method driver: resolves its own DIDs, raising DidNotFound/InvalidDid."""

    def resolve(
        self,
        did: str,
        *,
        version_id: str | None = None,
        version_time: datetime | None = None,
    ) -> Resolution: ...


class DidResolver:
    """Resolves did:key and any registered methods (``simtrust`` → the DID registry)."""

    __slots__ = ("_methods",)

    def __init__(self, methods: dict[str, DidMethod] | None = None) -> None:
        self._methods: dict[str, DidMethod] = dict(methods or {})

    def register(self, method: str, driver: DidMethod) -> None:
        self._methods[method] = driver

    def resolve(
        self,
        did: str,
        *,
        version_id: str | None = None,
        version_time: datetime | None = None,
    ) -> Resolution:
        method, _ = parse_did(did)
        if method == "key":
            if version_id not in (None, "1") or version_time is not None:
                raise DidNotFound("did:key has a single version")
            return Resolution(document=resolve_did_key(did))
        driver = self._methods.get(method)
        if driver is None:
            raise InvalidDid(f"DID method {method!r} is not supported", error="methodNotSupported")
        return driver.resolve(did, version_id=version_id, version_time=version_time)

    def verification_key(self, vm_url: str, purpose: str) -> bytes:
        """The raw Ed25519 key of ``vm_url`` if authorised for ``purpose``; else raise.

        Raises :class:`VerificationFailed` (``unresolvable`` or
        ``key-not-authorized``) rather than resolution errors, so a verifier
        reports one reason per failed proof.
        """
        if not isinstance(vm_url, str) or "#" not in vm_url:
            raise VerificationFailed("key-not-authorized", "verificationMethod must be a DID URL")
        did = vm_url.split("#", 1)[0]
        try:
            # did:key documents are immutable: read the cached one without copying it.
            resolution = (
                Resolution(cached_did_key(did)) if did.startswith("did:key:") else self.resolve(did)
            )
        except (DidNotFound, InvalidDid) as exc:
            raise VerificationFailed(
                "unresolvable", f"cannot resolve {did}: {exc.detail}", verificationMethod=vm_url
            ) from exc
        if resolution.document_metadata.get("deactivated"):
            raise VerificationFailed(
                "key-not-authorized", f"{did} is deactivated", verificationMethod=vm_url
            )
        return method_key(resolution.document, vm_url, purpose)

    def verification_p256_key(self, vm_url: str, purpose: str) -> bytes:
        """The compressed P-256 key of ``vm_url`` if authorised for ``purpose``; else raise."""
        if not isinstance(vm_url, str) or "#" not in vm_url:
            raise VerificationFailed("key-not-authorized", "verificationMethod must be a DID URL")
        did = vm_url.split("#", 1)[0]
        try:
            resolution = (
                Resolution(cached_did_key(did)) if did.startswith("did:key:") else self.resolve(did)
            )
        except (DidNotFound, InvalidDid) as exc:
            raise VerificationFailed(
                "unresolvable", f"cannot resolve {did}: {exc.detail}", verificationMethod=vm_url
            ) from exc
        if resolution.document_metadata.get("deactivated"):
            raise VerificationFailed(
                "key-not-authorized", f"{did} is deactivated", verificationMethod=vm_url
            )
        method = _listed_method(resolution.document, vm_url, purpose)

        try:
            return decode_p256_multikey(str(method.get("publicKeyMultibase", "")))
        except DecodeError as exc:
            raise VerificationFailed("key-not-authorized", f"{vm_url} is not a P-256 key") from exc


def _absolute(reference: str, did: str) -> str:
    return did + reference if reference.startswith("#") else reference


def method_key(document: dict[str, Any], vm_url: str, purpose: str) -> bytes:
    """Find ``vm_url`` under ``purpose`` in ``document`` and return its Ed25519 key."""
    return _ed25519_of(_listed_method(document, vm_url, purpose), vm_url)


def _listed_method(document: dict[str, Any], vm_url: str, purpose: str) -> dict[str, Any]:
    """The verification method ``vm_url`` if ``document`` lists it under ``purpose``."""
    did = str(document.get("id", ""))
    relationship = document.get(purpose)
    if not isinstance(relationship, list):
        relationship = []
    method: dict[str, Any] | None = None
    listed = False
    for entry in relationship:
        if isinstance(entry, str) and _absolute(entry, did) == vm_url:
            listed = True
        elif isinstance(entry, dict) and _absolute(str(entry.get("id", "")), did) == vm_url:
            listed, method = True, entry
    if not listed:
        raise VerificationFailed(
            "key-not-authorized",
            f"{vm_url} is not listed under {purpose} in {did}",
            verificationMethod=vm_url,
        )
    if method is None:
        for candidate in document.get("verificationMethod", []) or []:
            if (
                isinstance(candidate, dict)
                and _absolute(str(candidate.get("id", "")), did) == vm_url
            ):
                method = candidate
                break
    if method is None:
        raise VerificationFailed(
            "key-not-authorized", f"{vm_url} is not a verification method of {did}"
        )
    return method


def _ed25519_of(method: dict[str, Any], vm_url: str) -> bytes:
    try:
        if "publicKeyMultibase" in method:
            codec, key = decode_multikey(str(method["publicKeyMultibase"]))
            if codec == ED25519_PUB:
                return key
        elif method.get("type") == "Ed25519VerificationKey2018" and "publicKeyBase58" in method:
            key = b58decode(str(method["publicKeyBase58"]))
            if len(key) == 32:
                return key
    except DecodeError as exc:
        raise VerificationFailed("key-not-authorized", f"{vm_url}: {exc.detail}") from exc
    raise VerificationFailed("key-not-authorized", f"{vm_url} is not an Ed25519 key")
