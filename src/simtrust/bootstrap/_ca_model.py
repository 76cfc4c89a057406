"""The values of the tenant CAs: certificate profiles, CA and certificate records, CSR checks.

- :class:`CertProfile`: what a CA's device certificates carry (RFC 5280
  §4.2.1.6 SANs: device DID as URI, IMEI as ``urn:imei:`` of RFC 7254, ICCID as
  ``urn:iccid:``; key types; lifetime; EKU clientAuth §4.2.1.12).
- :class:`CaRecord`, :class:`IssuedCert`, :class:`DeviceClaims`: rows and claims.
- :func:`self_signed_ca`: a hosted CA's own certificate.
- :func:`load_csr`: a PKCS#10 request (RFC 2986) whose self-signature verifies.
- :class:`DeviceCertTemplate`: what every certificate of one CA shares, built once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from simtrust.errors import DecodeError, InvalidInput, InvalidSignature

__all__ = [
    "CLIENT_AUTH",
    "DEVICE_KEY_USAGE",
    "END_ENTITY",
    "KEY_TYPES",
    "REVOCATION_REASONS",
    "CaRecord",
    "CertProfile",
    "DeviceCertTemplate",
    "DeviceClaims",
    "IssuedCert",
    "challenge_password",
    "check_label",
    "did_of",
    "est_label",
    "imei_urn",
    "issued_from_row",
    "key_type",
    "load_csr",
    "self_signed_ca",
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
KEY_TYPES = ("p256", "ed25519")
MAX_CSR = 16_384
#: The fixed extensions of every tier-2 certificate (RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.12).
END_ENTITY = x509.BasicConstraints(ca=False, path_length=None)
DEVICE_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=False,
    crl_sign=False, encipher_only=False, decipher_only=False)
CLIENT_AUTH = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


@dataclass(frozen=True, slots=True)
class CertProfile:
    """What a tenant's certificates look like (per CA)."""

    organization: str = ""
    key_types: tuple[str, ...] = KEY_TYPES
    lifetime_s: int = 7 * 86_400
    san_did: bool = True
    san_imei: bool = True
    san_iccid: bool = True
    max_per_hour: int = 20

    def __post_init__(self) -> None:
        if not self.key_types or any(k not in KEY_TYPES for k in self.key_types):
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


def check_label(label: str) -> None:
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


def issued_from_row(row: Sequence[Any]) -> IssuedCert:
    text = [None if v is None else str(v) for v in row]
    return IssuedCert(str(text[0]), str(text[1]), str(text[2]), str(text[3]), str(text[4]),
                      str(text[5]), str(text[6]), str(text[7]), text[8], text[9])


def imei_urn(imei: str) -> str:
    """``urn:imei:TAC-SNR-CD`` (RFC 7254 §3); the check digit is recomputed when absent."""
    digits = imei[:14]
    total = 0
    for i, c in enumerate(digits):
        d = int(c) * (2 if i % 2 else 1)
        total += d // 10 + d % 10
    cd = (10 - total % 10) % 10
    return f"urn:imei:{digits[:8]}-{digits[8:14]}-{cd}"


def key_type(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "p256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "unsupported"


def load_csr(body: bytes) -> x509.CertificateSigningRequest:
    """A DER or PEM CSR whose self-signature verifies (proof of possession)."""
    if len(body) > MAX_CSR:
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


def did_of(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("did:") and len(uri) <= 512:
            return uri
    return None


def self_signed_ca(common_name: str, key: ec.EllipticCurvePrivateKey, days: int,
                   now: datetime) -> x509.Certificate:
    """A self-signed CA certificate (RFC 5280 §4.2.1.9 pathLen 0, keyCertSign and cRLSign)."""
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


@dataclass(frozen=True, slots=True)
class DeviceCertTemplate:
    """The part of a CA's device certificates that never changes, built once per CA.

    ``base``: a builder with the issuer and the fixed extensions (basicConstraints,
    keyUsage, EKU clientAuth, the CA's authorityKeyIdentifier; RFC 5280 §4.2.1.1,
    §4.2.1.3, §4.2.1.9, §4.2.1.12); ``tail``: the AIA (OCSP, RFC 5280 §4.2.2.1) and
    CRL distribution point (§4.2.1.13) extensions, added after the SANs.
    """

    base: x509.CertificateBuilder
    tail: tuple[x509.ExtensionType, ...]
    base_url: str | None

    @classmethod
    def build(cls, ca_cert: x509.Certificate, aki: x509.AuthorityKeyIdentifier,
              base_url: str | None, est_label: str) -> DeviceCertTemplate:
        base = (x509.CertificateBuilder().issuer_name(ca_cert.subject)
                .add_extension(END_ENTITY, critical=True)
                .add_extension(DEVICE_KEY_USAGE, critical=True)
                .add_extension(CLIENT_AUTH, critical=False)
                .add_extension(aki, critical=False))
        tail: tuple[x509.ExtensionType, ...] = ()
        if base_url:
            root = base_url.rstrip("/")
            tail = (
                x509.AuthorityInformationAccess([x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(f"{root}/ocsp"))]),
                x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(f"{root}/crl/{est_label}.crl")],
                    None, None, None)]),
            )
        return cls(base, tail, base_url)
