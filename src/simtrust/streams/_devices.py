"""Device identity of a channel: a device certificate (a W3C VC) rooted in the SIM's DID.

A device (a smart meter) proves who it is with a ``DeviceCertificate``
verifiable credential (VCDM 2.0) whose ``credentialSubject`` is::

    {"id": <the SIM's did:simtrust DID>, "meter": <the meter's identity, a DID>,
     "iccid": <the SIM's ICCID>, "imei": <the device's IMEI>}

It is accepted when the credential verifies (Data Integrity or VC-JOSE proof
by its issuer, validity period, Bitstring Status List entry not set: a revoked
certificate is refused), the issuer is one the platform trusts, and the SIM's
DID resolves on the ledger to a document naming the channel author's Ed25519
key: the key that signs the readings is the one in the SIM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from simtrust.errors import DecodeError, Rejected
from simtrust.identity import (
    DidNotFound,
    IdentityService,
    InvalidDid,
    VerificationFailed,
    decode_multikey,
)

__all__ = ["DeviceBinding", "DeviceCredentials", "IdentityDeviceCredentials"]

_ED25519_PUB = 0xED


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """What a verified device certificate binds: SIM DID and its keys, meter, ICCID, IMEI."""

    sim_did: str
    meter: str
    iccid: str
    imei: str
    issuer: str
    keys: tuple[bytes, ...]
    credential: dict[str, Any] = field(repr=False)


class DeviceCredentials(Protocol):
    """Verifies a device certificate; raises :class:`Rejected` (unknown, revoked, forged)."""

    def verify(self, credential: object) -> DeviceBinding: ...


def _claim(subject: dict[str, Any], name: str) -> str:
    value = subject.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected("device-certificate", f"credentialSubject.{name} is missing")
    return value


class IdentityDeviceCredentials:
    """Device certificates checked with the identity service (resolver, status lists)."""

    __slots__ = ("_identity", "_trusted")

    def __init__(self, identity: IdentityService,
                 trusted_issuers: Callable[[], Iterable[str]] | None = None) -> None:
        self._identity = identity
        self._trusted = trusted_issuers or (lambda: [identity.issuer().controller])

    def __repr__(self) -> str:
        return "IdentityDeviceCredentials()"

    def verify(self, credential: object) -> DeviceBinding:
        if not isinstance(credential, dict):
            raise Rejected("device-certificate", "a device certificate is a JSON object (a VC)")
        types = credential.get("type")
        if "DeviceCertificate" not in (types if isinstance(types, list) else [types]):
            raise Rejected("device-certificate", "the credential is not a DeviceCertificate")
        try:
            verified = self._identity.verify_credential(credential)
        except VerificationFailed as exc:
            reason = "revoked" if exc.reason in ("revoked", "suspended") else "unverified"
            raise Rejected(reason, f"device certificate refused: {exc.reason}") from exc
        if verified.issuer not in set(self._trusted()):
            raise Rejected("unknown-issuer",
                           f"device certificate issuer {verified.issuer} is not trusted")
        subject = verified.credential.get("credentialSubject")
        if not isinstance(subject, dict):
            raise Rejected("device-certificate", "credentialSubject must be one object")
        sim_did, meter = _claim(subject, "id"), _claim(subject, "meter")
        if not meter.startswith("did:"):
            raise Rejected("device-certificate", "credentialSubject.meter must be a DID")
        try:
            document = self._identity.resolve(sim_did).document
        except (DidNotFound, InvalidDid) as exc:
            raise Rejected("unknown-sim", f"the SIM DID {sim_did} does not resolve") from exc
        keys = []
        for method in document.get("verificationMethod", []):
            value = method.get("publicKeyMultibase") if isinstance(method, dict) else None
            if isinstance(value, str):
                try:
                    codec, key = decode_multikey(value)
                except (DecodeError, ValueError):
                    continue
                if codec == _ED25519_PUB:
                    keys.append(key)
        if not keys:
            raise Rejected("unknown-sim", f"the SIM DID {sim_did} names no Ed25519 key")
        return DeviceBinding(sim_did, meter, _claim(subject, "iccid"), _claim(subject, "imei"),
                             verified.issuer, tuple(keys), dict(verified.credential))
