"""Tenant CAs (bring your own CA), certificate profiles, issuance, CRLs and OCSP.

- A tenant registers its issuing CA under a label of its own (unique per tenant;
  its EST label is ``<tenant>.<label>``, unique in the store, see
  :func:`est_label`): *hosted* (its key sealed
  at rest by the master key, generated here or imported) or *delegated* (CSRs are
  forwarded to the enterprise's own EST server, RFC 7030 §4.2, or CMP server,
  RFC 9483 §4.1.4 in :mod:`simtrust.bootstrap._cmp`, and its answer returned).
  The operator's tier-1 CA (``tenant_id`` NULL) only certifies the
  operator's own TLS servers and its packet gateways as RadSec clients (RFC 6614);
  :meth:`CertificateAuthorities.issue` refuses it for devices.
- The profile per CA fixes the subject organisation, the SANs (device DID as URI,
  IMEI as ``urn:imei:`` of RFC 7254, ICCID as ``urn:iccid:``), the key types
  (P-256, Ed25519), the lifetime and EKU clientAuth (RFC 5280 §4.2.1.12).
- Every issuance and revocation is audited; issuance is rate-limited per SIM.
- CRLs per CA (RFC 5280 §5) and OCSP responses (RFC 6960 §4.2) signed by the CA
  itself (§4.2.2.2), built with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from simtrust.audit import AuditEntry, AuditLog
from simtrust.bootstrap._cmp import CmpClient, CmpProtection, loaded, stored
from simtrust.bootstrap._pkcs11 import Pkcs11Key, sign_certificate, sign_crl, sign_ocsp
from simtrust.crypto import Keyring
from simtrust.errors import (
    Conflict,
    DecodeError,
    InvalidInput,
    InvalidSignature,
    NotFound,
    PermissionDenied,
    RateLimited,
    StoreError,
)
from simtrust.store import Database, GroupCommit

__all__ = [
    "REVOCATION_REASONS",
    "CaRecord",
    "CertProfile",
    "CertificateAuthorities",
    "DeviceClaims",
    "IssuedCert",
]

#: RFC 5280 §5.3.1 reasons by the names the API and CLI use.
REVOCATION_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}
_KEY_TYPES = ("p256", "ed25519")
#: How long a signed OCSP response is reused for nonce-less requests (RFC 5019).
_OCSP_REUSE = timedelta(seconds=60)
_OCSP_CACHE_MAX = 100_000
_MAX_CSR = 16_384
#: The fixed extensions of every tier-2 certificate (RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.12).
_END_ENTITY = x509.BasicConstraints(ca=False, path_length=None)
_DEVICE_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=False,
    crl_sign=False, encipher_only=False, decipher_only=False)
_CLIENT_AUTH = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


@dataclass(frozen=True, slots=True)
class CertProfile:
    """What a tenant's certificates look like (per CA)."""

    organization: str = ""
    key_types: tuple[str, ...] = _KEY_TYPES
    lifetime_s: int = 7 * 86_400
    san_did: bool = True
    san_imei: bool = True
    san_iccid: bool = True
    max_per_hour: int = 20

    def __post_init__(self) -> None:
        if not self.key_types or any(k not in _KEY_TYPES for k in self.key_types):
            raise InvalidInput("key types are p256 and/or ed25519", field="key_types")
        if not 60 <= self.lifetime_s <= 825 * 86_400:
            raise InvalidInput("lifetime must be 60 s to 825 days", field="lifetime_s")
        if not 1 <= self.max_per_hour <= 100_000:
            raise InvalidInput("max_per_hour must be 1-100000", field="max_per_hour")
        if len(self.organization) > 64:
            raise InvalidInput("organization is at most 64 characters", field="organization")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key_types"] = list(self.key_types)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertProfile:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "key_types" in known:
            known["key_types"] = tuple(known["key_types"])
        try:
            return cls(**known)
        except TypeError as exc:
            raise InvalidInput(f"bad profile: {exc}", field="profile") from None


def _check_label(label: str) -> None:
    if not (label.replace("-", "").replace("_", "").isalnum() and label.isascii()
            and 1 <= len(label) <= 64):
        raise InvalidInput("CA label is 1-64 of [A-Za-z0-9_-]", field="label")


def est_label(tenant_id: str | None, label: str) -> str:
    """The store-wide EST label of a tenant's CA label: ``<tenant>.<label>``.

    Tenant ids are ``[a-z0-9-]`` and labels ``[A-Za-z0-9_-]``, so the dot is
    unambiguous and two tenants' labels never collide; the operator's own CA
    (no tenant) keeps its bare label. CAs registered before labels were per
    tenant keep their bare label as EST label (bootstrap migration 3).
    """
    return label if tenant_id is None else f"{tenant_id}.{label}"


@dataclass(frozen=True, slots=True)
class CaRecord:
    """A registered CA: ``label`` is its tenant's name for it, ``est_label`` the
    store-wide name in EST paths and CRL URLs."""

    ca_id: str
    tenant_id: str | None
    label: str
    mode: str
    certificate: x509.Certificate = field(repr=False)
    profile: CertProfile
    delegate_url: str | None = None
    est_label: str = ""
    #: ``est`` or ``cmp`` for a delegated CA, else None.
    delegate_kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ca_id": self.ca_id, "tenant_id": self.tenant_id, "label": self.label,
            "est_label": self.est_label,
            "mode": self.mode, "subject": self.certificate.subject.rfc4514_string(),
            "not_after": self.certificate.not_valid_after_utc.isoformat(),
            "certificate_pem": self.certificate.public_bytes(
                serialization.Encoding.PEM).decode(),
            "delegate_url": self.delegate_url, "delegate_kind": self.delegate_kind,
            "profile": self.profile.to_json(),
        }


@dataclass(frozen=True, slots=True)
class DeviceClaims:
    """Who the certificate is for, as the certificate server established it."""

    tenant_id: str
    iccid: str
    imsi: str
    imei: str | None = None
    did: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCert:
    serial: str
    ca_id: str
    tenant_id: str
    iccid: str
    subject: str
    not_before: str
    not_after: str
    status: str
    revoked_at: str | None
    revocation_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _issued(row: Sequence[Any]) -> IssuedCert:
    text = [None if v is None else str(v) for v in row]
    return IssuedCert(str(text[0]), str(text[1]), str(text[2]), str(text[3]), str(text[4]),
                      str(text[5]), str(text[6]), str(text[7]), text[8], text[9])


def _imei_urn(imei: str) -> str:
    """``urn:imei:TAC-SNR-CD`` (RFC 7254 §3); the check digit is recomputed when absent."""
    digits = imei[:14]
    total = 0
    for i, c in enumerate(digits):
        d = int(c) * (2 if i % 2 else 1)
        total += d // 10 + d % 10
    cd = (10 - total % 10) % 10
    return f"urn:imei:{digits[:8]}-{digits[8:14]}-{cd}"


def _key_type(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "p256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "unsupported"


def load_csr(body: bytes) -> x509.CertificateSigningRequest:
    """A DER or PEM CSR whose self-signature verifies (proof of possession)."""
    if len(body) > _MAX_CSR:
        raise DecodeError("CSR too large")
    try:
        csr = (x509.load_pem_x509_csr(body) if body.lstrip().startswith(b"-----")
               else x509.load_der_x509_csr(body))
        valid = csr.is_signature_valid
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType):
        raise DecodeError("not a PKCS#10 certification request") from None
    except Exception as exc:  # noqa: BLE001 - cryptography raises assorted errors on bad DER
        raise DecodeError(f"CSR does not parse ({type(exc).__name__})") from None
    if not valid:
        raise InvalidSignature("CSR signature does not verify (no proof of possession)")
    return csr


def challenge_password(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        value = csr.attributes.get_attribute_for_oid(x509.ObjectIdentifier("1.2.840.113549.1.9.7"))
    except x509.AttributeNotFound:
        return None
    raw = value.value
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _did_of(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("did:") and len(uri) <= 512:
            return uri
    return None


class CertificateAuthorities:
    """The store of CAs and certificates; keys unsealed once per process and cached."""

    __slots__ = (
        "_akis",
        "_audit",
        "_by_key_hash",
        "_cache_lock",
        "_clock",
        "_cmp_clients",
        "_commits",
        "_db",
        "_keyring",
        "_keys",
        "_listeners",
        "_ocsp_cache",
        "_records",
        "_transport",
        "generation",
        "public_base_url",
    )

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        public_base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self.public_base_url = public_base_url
        self._transport = transport
        self._keys: dict[str, ec.EllipticCurvePrivateKey | Pkcs11Key] = {}
        self._akis: dict[str, x509.AuthorityKeyIdentifier] = {}
        self._records: dict[str, CaRecord] = {}
        self._cmp_clients: dict[str, CmpClient] = {}
        self._by_key_hash: dict[bytes, str] = {}
        self._cache_lock = threading.Lock()
        self._ocsp_cache: dict[tuple[bytes, bytes, int, str, str], tuple[bytes, datetime]] = {}
        #: Bumped when this process registers a CA (listeners rebuild their client trust).
        self.generation = 0
        self._listeners: list[Callable[[str, str], None]] = []
        #: Issuance records of concurrent requests share one transaction (group commit);
        #: every caller returns only after the transaction holding its record committed.
        self._commits: GroupCommit[tuple[tuple[Any, ...], AuditEntry]] = GroupCommit(
            self._write_issued)

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(event, iccid)`` after a certificate of a SIM is issued
        (``issued``) or revoked (``revoked``) and the change committed."""
        self._listeners.append(listener)

    def _notify(self, event: str, iccid: str) -> None:
        for listener in self._listeners:
            listener(event, iccid)

    def __repr__(self) -> str:
        return f"CertificateAuthorities({self._db!r})"

    # -- registration ----------------------------------------------------------

    @staticmethod
    def _aad(ca_id: str) -> bytes:
        return f"simtrust/bootstrap/ca/{ca_id}".encode()

    def _self_signed(self, common_name: str, key: ec.EllipticCurvePrivateKey,
                     days: int) -> x509.Certificate:
        now = self._clock()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        return (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )

    def _insert(self, tenant_id: str | None, label: str, mode: str, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey | None, profile: CertProfile,
                delegate_url: str | None, actor: str, *, ca_id: str | None = None,
                token: dict[str, str] | None = None, pin: str | None = None,
                delegate: tuple[str, dict[str, Any] | None, bytes | None] | None = None,
                ) -> CaRecord:
        _check_label(label)
        key_label = est_label(tenant_id, label)
        ca_id = ca_id or "ca-" + uuid.uuid4().hex[:16]
        sealed = None
        pin_sealed = None if pin is None else self._keyring.seal(
            pin.encode(), self._aad(ca_id) + b"/pin")
        if key is not None:
            raw = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            sealed = self._keyring.seal(raw, self._aad(ca_id))
        kind, config, secret = delegate or (None, None, None)
        secret_sealed = None if secret is None else self._keyring.seal(
            secret, self._aad(ca_id) + b"/delegate")
        with self._db.transaction():
            self._refuse_taken(tenant_id, label)
            self._db.execute(
                "INSERT INTO boot_cas (ca_id, tenant_id, label, name, mode, cert_pem,"
                " key_sealed, delegate_url, profile, created_at, token, pin_sealed,"
                " delegate_kind, delegate_config, delegate_secret_sealed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ca_id, tenant_id, key_label, label, mode,
                 cert.public_bytes(serialization.Encoding.PEM).decode(), sealed, delegate_url,
                 json.dumps(profile.to_json()), self._clock().isoformat(),
                 None if token is None else json.dumps(token), pin_sealed,
                 kind, None if config is None else json.dumps(config), secret_sealed),
            )
            self.generation += 1
            self._audit.append(actor=actor, action="pki.ca.register", subject=f"ca:{ca_id}",
                               outcome="success", tenant_id=tenant_id,
                               details={"label": label, "est_label": key_label,
                                        "mode": mode,
                                        "subject": cert.subject.rfc4514_string()})
        return self.get(key_label)

    def _refuse_taken(self, tenant_id: str | None, label: str) -> None:
        """Conflict if the tenant already has a CA with ``label`` (only its own CAs
        are looked at: another tenant's labels are no concern of this one)."""
        if tenant_id is None:
            row = self._db.query_one("SELECT 1 FROM boot_cas WHERE label = ?", (label,))
        else:
            row = self._db.query_one(
                "SELECT 1 FROM boot_cas WHERE tenant_id = ? AND name = ?", (tenant_id, label))
        if row is not None:
            raise Conflict(f"a CA with label {label!r} exists", field="label")

    def create_hosted(self, tenant_id: str, label: str, *, common_name: str,
                      profile: CertProfile | None = None, actor: str) -> CaRecord:
        """A new hosted CA: P-256 key generated here and sealed by the master key."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._self_signed(common_name, key, 3650)
        return self._insert(tenant_id, label, "hosted", cert, key, profile or CertProfile(),
                            None, actor)

    def import_hosted(self, tenant_id: str, label: str, *, cert_pem: bytes, key_pem: bytes,
                      profile: CertProfile | None = None, actor: str) -> CaRecord:
        """The tenant's own CA certificate and P-256 key (sealed at rest from here on)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise DecodeError("CA certificate or key PEM does not parse") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or _key_type(key.public_key()) != "p256":
            raise InvalidInput("hosted CA keys are P-256", field="key_pem")
        if cert.public_key() != key.public_key():
            raise InvalidInput("CA key does not match the certificate", field="key_pem")
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise InvalidInput("certificate is not a CA (basicConstraints cA)", field="cert_pem")
        return self._insert(tenant_id, label, "hosted", cert, key, profile or CertProfile(),
                            None, actor)

    def create_pkcs11(self, tenant_id: str, label: str, *, module: str, token_label: str,
                      pin: str, key_label: str, common_name: str,
                      profile: CertProfile | None = None, actor: str) -> CaRecord:
        """A CA whose P-256 key is generated in a PKCS#11 token and never leaves it.

        The token PIN is sealed by the master key; the self-signed CA certificate is
        signed by the token.
        """
        _check_label(label)
        self._refuse_taken(tenant_id, label)
        key = Pkcs11Key(module, token_label, pin, key_label)
        public = key.generate()
        now = self._clock()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        cert = sign_certificate(builder, key)
        ca_id = "ca-" + uuid.uuid4().hex[:16]
        with self._cache_lock:
            self._keys[ca_id] = key
        return self._insert(tenant_id, label, "pkcs11", cert, None, profile or CertProfile(),
                            None, actor, ca_id=ca_id,
                            token={"module": module, "token": token_label, "key": key_label},
                            pin=pin)

    def register_delegated(self, tenant_id: str, label: str, *, est_url: str | None = None,
                           ca_pem: bytes, profile: CertProfile | None = None, actor: str,
                           kind: str = "est", cmp_url: str | None = None,
                           cmp: CmpProtection | None = None,
                           cmp_recipient: str | None = None) -> CaRecord:
        """The enterprise's own EST server (``kind`` est, at ``est_url``) or CMP server
        (``kind`` cmp, at ``cmp_url``, requests protected by ``cmp``) issues;
        ``ca_pem`` is its issuing CA. The CMP secret or client key is sealed."""
        try:
            cert = x509.load_pem_x509_certificate(ca_pem)
        except ValueError:
            raise DecodeError("CA certificate PEM does not parse") from None
        if kind == "est":
            if not est_url or not est_url.startswith("https://"):
                raise InvalidInput("the delegated EST URL must be https", field="est_url")
            return self._insert(tenant_id, label, "delegated", cert, None,
                                profile or CertProfile(), est_url.rstrip("/"), actor,
                                delegate=("est", None, None))
        if kind != "cmp":
            raise InvalidInput("delegated CAs speak est or cmp", field="delegate_kind")
        # Message protection authenticates CMP (RFC 6712 §3, RFC 9483 §6), so plain
        # HTTP is allowed (docs/decisions/bootstrap-cmp-delegation.md).
        if not cmp_url or not cmp_url.startswith(("https://", "http://")) or len(cmp_url) > 512:
            raise InvalidInput("the delegated CMP URL must be http(s)://...", field="cmp_url")
        if cmp is None:
            raise InvalidInput("a CMP delegate needs its message protection",
                               field="cmp_protection")
        try:
            recipient = None if not cmp_recipient else x509.Name.from_rfc4514_string(
                cmp_recipient)
        except ValueError:
            raise InvalidInput("cmp_recipient is not an RFC 4514 name",
                               field="cmp_recipient") from None
        config, secret = stored(cmp, recipient)
        return self._insert(tenant_id, label, "delegated", cert, None,
                            profile or CertProfile(), cmp_url, actor,
                            delegate=("cmp", config, secret))

    def remove(self, label: str, *, actor: str, reason: str = "") -> None:
        """Deregister a tenant CA that never issued (Conflict otherwise, NotFound if absent)."""
        ca = self.get(label)
        if ca.tenant_id is None:
            raise Conflict("the operator CA cannot be removed", field="label")
        with self._db.transaction():
            if self._db.query_one("SELECT 1 FROM boot_certs WHERE ca_id = ?", (ca.ca_id,)):
                raise Conflict(f"CA {label!r} has issued certificates", field="label")
            self._db.execute("DELETE FROM boot_cas WHERE ca_id = ?", (ca.ca_id,))
            self.generation += 1
            self._audit.append(actor=actor, action="pki.ca.remove", subject=f"ca:{ca.ca_id}",
                               outcome="success", reason=reason, tenant_id=ca.tenant_id,
                               details={"label": label})
        with self._cache_lock:
            self._records.pop(label, None)
            self._keys.pop(ca.ca_id, None)
            self._cmp_clients.pop(ca.ca_id, None)

    def operator_ca(self) -> CaRecord:
        """The operator's tier-1 CA (created on first use); it certifies the operator's TLS
        servers and RadSec gateways only."""
        try:
            return self.get("operator-tier1")
        except NotFound:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = self._self_signed("simtrust operator tier-1 CA", key, 3650)
            try:
                return self._insert(None, "operator-tier1", "hosted", cert, key, CertProfile(),
                                    None, "system")
            except Conflict:
                return self.get("operator-tier1")

    def server_certificate(self, hostnames: Sequence[str], *, days: int = 30,
                           ) -> tuple[bytes, bytes]:
        """(certificate chain PEM, key PEM) for a TLS server, from the tier-1 CA."""
        ca = self.operator_ca()
        ca_key = self._software_key(ca)
        key = ec.generate_private_key(ec.SECP256R1())
        now = self._clock()
        sans: list[x509.GeneralName] = []
        for h in hostnames:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca.certificate.public_bytes(
            serialization.Encoding.PEM)
        return chain, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())

    def gateway_certificate(self, name: str, *, days: int = 365, actor: str
                            ) -> tuple[bytes, bytes]:
        """(certificate chain PEM, key PEM) a packet gateway presents as a RadSec client
        (RFC 6614 §2.3), from the tier-1 CA: clientAuth only, CN ``name``. Audited."""
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidInput("gateway name must be 1..64 printable characters", field="name")
        ca = self.operator_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = self._clock()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._software_key(ca), hashes.SHA256())
        )
        self._audit.append(actor=actor, action="radius-gateway.certificate",
                           subject=f"radius-gateway:{name}", outcome="success",
                           details={"serial": format(cert.serial_number, "x"), "days": days})
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca.certificate.public_bytes(
            serialization.Encoding.PEM)
        return chain, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())

    def set_profile(self, label: str, profile: CertProfile, *, actor: str) -> CaRecord:
        """Replace the profile of the CA with EST label ``label``."""
        ca = self.get(label)
        self._db.execute("UPDATE boot_cas SET profile = ? WHERE ca_id = ?",
                         (json.dumps(profile.to_json()), ca.ca_id))
        self._audit.append(actor=actor, action="pki.ca.profile", subject=f"ca:{ca.ca_id}",
                           outcome="success", tenant_id=ca.tenant_id, details=profile.to_json())
        with self._cache_lock:
            self._records.pop(label, None)
        return self.get(label)

    # -- look-ups --------------------------------------------------------------

    def get(self, label: str) -> CaRecord:
        """The CA registered under an EST label (NotFound: unknown CA)."""
        record = self._records.get(label)
        if record is not None:
            return record
        row = self._db.query_one(
            "SELECT ca_id, tenant_id, name, mode, cert_pem, delegate_url, profile,"
            " delegate_kind FROM boot_cas WHERE label = ?", (label,),
        )
        if row is None:
            raise NotFound(f"unknown CA {label!r}", reason="unknown-ca")
        record = CaRecord(
            str(row[0]), None if row[1] is None else str(row[1]), str(row[2]), str(row[3]),
            x509.load_pem_x509_certificate(str(row[4]).encode()),
            CertProfile.from_json(json.loads(str(row[6]))),
            None if row[5] is None else str(row[5]),
            label,
            # Delegated CAs registered before migration 5 are EST delegates.
            str(row[7]) if row[7] is not None else
            ("est" if str(row[3]) == "delegated" else None),
        )
        with self._cache_lock:
            self._records[label] = record
        return record

    def find(self, tenant_id: str, label: str) -> CaRecord:
        """The tenant's CA it calls ``label`` (NotFound: unknown CA, whatever other
        tenants call theirs)."""
        row = self._db.query_one(
            "SELECT label FROM boot_cas WHERE tenant_id = ? AND name = ?", (tenant_id, label))
        if row is None:
            raise NotFound(f"unknown CA {label!r}", reason="unknown-ca")
        return self.get(str(row[0]))

    def trust_stamp(self) -> tuple[int, int, str]:
        """Changes whenever any process sharing the store registers or removes a CA.

        (this process's generation, number of CAs, latest registration time): a
        listener that sees a new stamp rebuilds its client-certificate trust.
        """
        row = self._db.query_one(
            "SELECT COUNT(*), COALESCE(MAX(created_at), '') FROM boot_cas")
        count, latest = (0, "") if row is None else (int(row[0]), str(row[1]))
        return self.generation, count, latest

    def cas(self, tenant_id: str | None = None) -> list[CaRecord]:
        sql = "SELECT label FROM boot_cas WHERE tenant_id IS NOT NULL"
        params: tuple[Any, ...] = ()
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params = (tenant_id,)
        return [self.get(str(r[0])) for r in self._db.query(sql + " ORDER BY label", params)]

    def _key(self, ca: CaRecord) -> ec.EllipticCurvePrivateKey | Pkcs11Key:
        key = self._keys.get(ca.ca_id)
        if key is not None:
            return key
        row = self._db.query_one(
            "SELECT key_sealed, token, pin_sealed FROM boot_cas WHERE ca_id = ?", (ca.ca_id,))
        if row is not None and row[1] is not None and row[2] is not None:
            token = json.loads(str(row[1]))
            pin = self._keyring.open(bytes(row[2]), self._aad(ca.ca_id) + b"/pin").decode()
            loaded: object = Pkcs11Key(token["module"], token["token"], pin, token["key"])
        elif row is not None and row[0] is not None:
            loaded = serialization.load_der_private_key(
                self._keyring.open(bytes(row[0]), self._aad(ca.ca_id)), password=None)
        else:
            raise Conflict(f"CA {ca.label!r} has no hosted key", reason="delegated-ca")
        if not isinstance(loaded, ec.EllipticCurvePrivateKey | Pkcs11Key):
            raise StoreError("stored CA key is not P-256")
        with self._cache_lock:
            self._keys[ca.ca_id] = loaded
        return loaded

    def _software_key(self, ca: CaRecord) -> ec.EllipticCurvePrivateKey:
        key = self._key(ca)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise Conflict(f"CA {ca.label!r} keeps its key in a token", reason="token-ca")
        return key

    # -- issuance --------------------------------------------------------------

    def check_rate(self, ca: CaRecord, iccid: str) -> None:
        since = (self._clock() - timedelta(hours=1)).isoformat()
        row = self._db.query_one(
            "SELECT COUNT(*) FROM boot_certs WHERE iccid = ? AND issued_at > ?", (iccid, since))
        if row is not None and int(row[0]) >= ca.profile.max_per_hour:
            raise RateLimited(f"SIM {iccid} reached {ca.profile.max_per_hour} certificates "
                              "per hour", retry_after=3600)

    def issue(self, ca: CaRecord, csr: x509.CertificateSigningRequest, device: DeviceClaims,
              *, actor: str, key_override: x509.Certificate | None = None) -> x509.Certificate:
        """Sign a verified CSR under the tenant CA's profile; stored and audited."""
        if ca.tenant_id is None:
            raise PermissionDenied("the operator's tier-1 CA never signs tier-2 certificates",
                                   reason="tier1-ca")
        if ca.tenant_id != device.tenant_id:
            raise NotFound(f"unknown CA {ca.label!r}", reason="unknown-ca")
        public = csr.public_key()
        kind = _key_type(public)
        if kind not in ca.profile.key_types:
            raise InvalidInput(f"key type {kind} is not allowed by the profile", field="csr")
        self.check_rate(ca, device.iccid)
        cert = self._delegate(ca, csr) if ca.mode == "delegated" else self._sign(ca, csr, device)
        self._record(ca, cert, device, actor, kind)
        self._notify("issued", device.iccid)
        return cert

    def _sign(self, ca: CaRecord, csr: x509.CertificateSigningRequest,
              device: DeviceClaims) -> x509.Certificate:
        profile = ca.profile
        now = self._clock()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, device.iccid)]
        if profile.organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.organization))
        sans: list[x509.GeneralName] = []
        did = device.did or _did_of(csr)
        if profile.san_did and did:
            sans.append(x509.UniformResourceIdentifier(did))
        if profile.san_imei and device.imei:
            sans.append(x509.UniformResourceIdentifier(_imei_urn(device.imei)))
        if profile.san_iccid:
            sans.append(x509.UniformResourceIdentifier(f"urn:iccid:{device.iccid}"))
        public = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs)).issuer_name(ca.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(seconds=profile.lifetime_s),
                                 ca.certificate.not_valid_after_utc))
            .add_extension(_END_ENTITY, critical=True)
            .add_extension(_DEVICE_KEY_USAGE, critical=True)
            .add_extension(_CLIENT_AUTH, critical=False)
            .add_extension(self._aki(ca), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if self.public_base_url:
            base = self.public_base_url.rstrip("/")
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(f"{base}/ocsp"))]),
                critical=False)
            builder = builder.add_extension(x509.CRLDistributionPoints([
                x509.DistributionPoint([x509.UniformResourceIdentifier(
                    f"{base}/crl/{ca.est_label}.crl")], None, None, None)]), critical=False)
        key = self._key(ca)
        if isinstance(key, Pkcs11Key):
            return sign_certificate(builder, key)
        return builder.sign(key, hashes.SHA256())

    def _aki(self, ca: CaRecord) -> x509.AuthorityKeyIdentifier:
        """The CA's AuthorityKeyIdentifier, computed once per CA and process."""
        aki = self._akis.get(ca.ca_id)
        if aki is None:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.certificate.public_key())  # type: ignore[arg-type]  # CA keys are P-256
            with self._cache_lock:
                self._akis[ca.ca_id] = aki
        return aki

    def _delegate(self, ca: CaRecord, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """RFC 7030 §4.2.1 simpleenroll at the enterprise's EST server (or CMP p10cr)."""
        if ca.delegate_kind == "cmp":
            return self._cmp_client(ca).enrol(csr)
        if ca.delegate_url is None:
            raise Conflict(f"CA {ca.label!r} has no EST endpoint", reason="no-delegate")
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        try:
            with httpx.Client(transport=self._transport, timeout=15.0) as client:
                response = client.post(
                    f"{ca.delegate_url}/simpleenroll", content=body,
                    headers={"Content-Type": "application/pkcs10",
                             "Content-Transfer-Encoding": "base64"})
        except httpx.HTTPError as exc:
            raise StoreError(f"enterprise EST server unreachable ({type(exc).__name__})",
                             reason="delegate-unreachable") from None
        if response.status_code != 200:
            raise PermissionDenied(f"enterprise EST server answered {response.status_code}",
                                   reason="delegate-refused")
        try:
            certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))
        except ValueError:
            raise DecodeError("enterprise EST answer is not base64 PKCS#7") from None
        for cert in certs:
            if cert.public_key() == csr.public_key():
                try:
                    cert.verify_directly_issued_by(ca.certificate)
                except (ValueError, TypeError, CryptoInvalidSignature):
                    raise InvalidSignature("delegated certificate is not issued by the "
                                           "registered CA") from None
                return cert
        raise DecodeError("enterprise EST answer holds no certificate for the CSR key")

    def _cmp_client(self, ca: CaRecord) -> CmpClient:
        """The CMP client of a CMP-delegated CA, its secret unsealed once per process."""
        client = self._cmp_clients.get(ca.ca_id)
        if client is not None:
            return client
        row = self._db.query_one(
            "SELECT delegate_config, delegate_secret_sealed FROM boot_cas WHERE ca_id = ?",
            (ca.ca_id,))
        if row is None or row[0] is None or row[1] is None or ca.delegate_url is None:
            raise Conflict(f"CA {ca.label!r} has no CMP settings", reason="no-delegate")
        secret = self._keyring.open(bytes(row[1]), self._aad(ca.ca_id) + b"/delegate")
        protection, recipient = loaded(json.loads(str(row[0])), secret)
        client = CmpClient(ca.delegate_url, protection, trust=ca.certificate,
                           recipient=recipient, transport=self._transport, clock=self._clock)
        with self._cache_lock:
            self._cmp_clients[ca.ca_id] = client
        return client

    def _record(self, ca: CaRecord, cert: x509.Certificate, device: DeviceClaims,
                actor: str, kind: str) -> None:
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        serial = format(cert.serial_number, "x")
        now = self._clock().isoformat()
        row = (serial, ca.ca_id, device.tenant_id, device.iccid,
               cert.subject.rfc4514_string(), hashlib.sha256(spki).hexdigest(),
               cert.not_valid_before_utc.isoformat(), cert.not_valid_after_utc.isoformat(),
               now, cert.public_bytes(serialization.Encoding.DER))
        entry = AuditEntry(actor, "pki.issue", f"sim:{device.iccid}", "success", "",
                           device.tenant_id, {"serial": serial, "ca": ca.label,
                                              "key_type": kind,
                                              "not_after": cert.not_valid_after_utc.isoformat()})
        if self._db.in_transaction:
            # Inside a caller's transaction the record commits (or rolls back) with it.
            self._write_issued([(row, entry)])
        else:
            self._commits.submit((row, entry))

    def _write_issued(self, batch: Sequence[tuple[tuple[Any, ...], AuditEntry]]) -> None:
        """One transaction for the certificates and audit records of ``batch``."""
        with self._db.transaction():
            self._db.executemany(
                "INSERT INTO boot_certs (serial, ca_id, tenant_id, iccid, subject, spki_sha256,"
                " not_before, not_after, issued_at, der, status) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'good')", [row for row, _ in batch])
            self._audit.append_many([entry for _, entry in batch])

    def generate_key_and_issue(self, ca: CaRecord, device: DeviceClaims, *, actor: str,
                               ) -> tuple[x509.Certificate, bytes]:
        """serverkeygen (RFC 7030 §4.4): the key is made here; returns (cert, PKCS#8 DER)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device.iccid)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
            key, hashes.SHA256())
        cert = self.issue(ca, csr, device, actor=actor)
        return cert, key.private_bytes(serialization.Encoding.DER,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    # -- certificates and revocation -------------------------------------------

    def certificates(self, *, tenant_id: str | None = None, iccid: str | None = None,
                     limit: int = 100) -> list[IssuedCert]:
        sql = ("SELECT serial, ca_id, tenant_id, iccid, subject, not_before, not_after, status,"
               " revoked_at, revocation_reason FROM boot_certs WHERE 1 = 1")
        params: list[Any] = []
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id)
        if iccid is not None:
            sql += " AND iccid = ?"
            params.append(iccid)
        rows = self._db.query(sql + " ORDER BY issued_at DESC, serial LIMIT ?",
                              (*params, limit))
        return [_issued(r) for r in rows]

    def certificate(self, serial: str) -> IssuedCert:
        found = self._select("serial = ?", (serial.lower(),))
        if not found:
            raise NotFound(f"no certificate with serial {serial}")
        return found[0]

    def _select(self, where: str, params: tuple[Any, ...]) -> list[IssuedCert]:
        rows = self._db.query(
            "SELECT serial, ca_id, tenant_id, iccid, subject, not_before, not_after, status,"
            f" revoked_at, revocation_reason FROM boot_certs WHERE {where}", params)
        return [_issued(r) for r in rows]

    def revoke(self, serial: str, *, reason: str = "unspecified", actor: str) -> IssuedCert:
        if reason not in REVOCATION_REASONS:
            raise InvalidInput(f"unknown revocation reason {reason!r}", field="reason")
        cert = self.certificate(serial)
        if cert.status == "revoked":
            return cert
        with self._db.transaction():
            self._db.execute(
                "UPDATE boot_certs SET status = 'revoked', revoked_at = ?, revocation_reason = ?"
                " WHERE serial = ? AND status = 'good'",
                (self._clock().isoformat(), reason, cert.serial))
            self._audit.append(actor=actor, action="pki.revoke", subject=f"sim:{cert.iccid}",
                               outcome="success", tenant_id=cert.tenant_id,
                               details={"serial": cert.serial, "reason": reason})
        self._notify("revoked", cert.iccid)
        return self.certificate(serial)

    def revoke_sim(self, iccid: str, *, reason: str, actor: str, why: str = "") -> list[str]:
        """Revoke every valid certificate of a SIM; returns their serials."""
        if reason not in REVOCATION_REASONS:
            raise InvalidInput(f"unknown revocation reason {reason!r}", field="reason")
        now = self._clock().isoformat()
        with self._db.transaction():
            rows = self._db.query(
                "SELECT serial, tenant_id FROM boot_certs WHERE iccid = ? AND status = 'good'",
                (iccid,))
            serials = [str(r[0]) for r in rows]
            if serials:
                self._db.execute(
                    "UPDATE boot_certs SET status = 'revoked', revoked_at = ?,"
                    " revocation_reason = ? WHERE iccid = ? AND status = 'good'",
                    (now, reason, iccid))
                self._audit.append(actor=actor, action="pki.revoke-sim", subject=f"sim:{iccid}",
                                   outcome="success", tenant_id=str(rows[0][1]),
                                   reason=why, details={"serials": serials, "reason": reason})
        if serials:
            self._notify("revoked", iccid)
        return serials

    def crl(self, label: str, *, validity: timedelta = timedelta(hours=1)) -> bytes:
        """A fresh DER CRL of the CA (RFC 5280 §5) with an increasing cRLNumber."""
        ca = self.get(label)
        key = self._key(ca)
        now = self._clock()
        with self._db.transaction():
            self._db.execute("UPDATE boot_cas SET crl_number = crl_number + 1 WHERE ca_id = ?",
                             (ca.ca_id,))
            row = self._db.query_one("SELECT crl_number FROM boot_cas WHERE ca_id = ?",
                                     (ca.ca_id,))
            revoked = self._db.query(
                "SELECT serial, revoked_at, revocation_reason FROM boot_certs"
                " WHERE ca_id = ? AND status = 'revoked'", (ca.ca_id,))
        number = int(row[0]) if row else 1
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
            .last_update(now - timedelta(minutes=1)).next_update(now + validity)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                key.public_key()), critical=False)
        )
        for serial, at, reason in revoked:
            entry = (
                x509.RevokedCertificateBuilder().serial_number(int(str(serial), 16))
                .revocation_date(datetime.fromisoformat(str(at)))
            )
            flag = REVOCATION_REASONS.get(str(reason), x509.ReasonFlags.unspecified)
            if flag is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        if isinstance(key, Pkcs11Key):
            return sign_crl(builder, key).public_bytes(serialization.Encoding.DER)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # -- OCSP ------------------------------------------------------------------

    def _ca_by_key_hash(self, key_hash: bytes, algorithm: hashes.HashAlgorithm) -> CaRecord | None:
        cache_key = algorithm.name.encode() + b":" + key_hash
        found = self._by_key_hash.get(cache_key)
        if found is None:
            rows = self._db.query("SELECT label FROM boot_cas WHERE mode IN ('hosted', 'pkcs11')")
            for (label,) in rows:
                ca = self.get(str(label))
                digest = hashes.Hash(algorithm)
                # issuerKeyHash is over the subjectPublicKey BIT STRING value (RFC 6960 §4.1.1).
                digest.update(ca.certificate.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
                if digest.finalize() == key_hash:
                    found = ca.est_label
                    with self._cache_lock:
                        self._by_key_hash[cache_key] = found
                    break
        return None if found is None else self.get(found)

    def ocsp_response(self, request_der: bytes) -> bytes:
        """An RFC 6960 response to a DER OCSPRequest (malformedRequest / unauthorized on error)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            key_hash = request.issuer_key_hash
            algorithm = request.hash_algorithm
            serial = request.serial_number
        except (ValueError, TypeError, NotImplementedError):
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER)
        ca = self._ca_by_key_hash(key_hash, algorithm)
        if ca is None or ca.tenant_id is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        row = self._db.query_one(
            "SELECT status, revoked_at, revocation_reason FROM boot_certs"
            " WHERE serial = ? AND ca_id = ?", (format(serial, "x"), ca.ca_id))
        now = self._clock()
        revocation_time = None
        reason = None
        if row is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif str(row[0]) == "revoked":
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = datetime.fromisoformat(str(row[1]))
            flag = REVOCATION_REASONS.get(str(row[2]))
            reason = None if flag in (None, x509.ReasonFlags.unspecified) else flag
        else:
            status = ocsp.OCSPCertStatus.GOOD
        nonce = next((e.value for e in request.extensions if isinstance(e.value, x509.OCSPNonce)),
                     None)
        # RFC 5019 §2.2 / §6: without a nonce a signed response may be reused while fresh.
        # The status is read from the store on every request, so a revocation made by
        # any process shows at once; only the signature is reused.
        cache_key = (request.issuer_name_hash, key_hash, serial, algorithm.name, status.name)
        if nonce is None:
            cached = self._ocsp_cache.get(cache_key)
            if cached is not None and now - cached[1] < _OCSP_REUSE:
                return cached[0]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=key_hash,
            serial_number=serial, algorithm=algorithm, cert_status=status,
            this_update=now - timedelta(minutes=1), next_update=now + timedelta(minutes=10),
            revocation_time=revocation_time, revocation_reason=reason,
        )
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        key = self._key(ca)
        if isinstance(key, Pkcs11Key):
            der = sign_ocsp(builder, key, ca.certificate.subject)
        else:
            der = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate).sign(
                key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        if nonce is None:
            with self._cache_lock:
                if len(self._ocsp_cache) >= _OCSP_CACHE_MAX:
                    self._ocsp_cache.clear()
                self._ocsp_cache[cache_key] = (der, now)
        return der

