"""Tenant CAs (bring your own CA), certificate profiles, issuance, CRLs and OCSP.

- A tenant registers its issuing CA under a label of its own (unique per tenant;
  its EST label is ``<tenant>.<label>``, unique in the store, see
  :func:`est_label`): *hosted* (its key sealed at rest by the master key, generated
  here or imported) or *delegated* (CSRs forwarded to the enterprise's own EST
  server, RFC 7030 §4.2, or CMP server, RFC 9483 §4.1.4, and its answer returned).
  The operator's tier-1 CA (``tenant_id`` NULL) only certifies the operator's own
  TLS servers and its packet gateways as RadSec clients (RFC 6614);
  :meth:`CertificateAuthorities.issue` refuses it for devices.
- The profile per CA fixes the subject organisation, the SANs (device DID as URI,
  IMEI as ``urn:imei:`` of RFC 7254, ICCID as ``urn:iccid:``), the key types
  (P-256, Ed25519), the lifetime and EKU clientAuth (RFC 5280 §4.2.1.12).
- Every issuance and revocation is audited; issuance is rate-limited per SIM.
- CRLs per CA (RFC 5280 §5) and OCSP responses (RFC 6960 §4.2) signed by the CA
  itself (§4.2.2.2), built with ``cryptography``.

This module registers CAs and issues certificates; the values (profiles,
records, CSR checks) are in :mod:`._ca_model`, and the issued certificates'
list, revocation, CRLs and OCSP in :class:`~._ca_status.CertificateStatus`,
whose methods the :class:`CertificateAuthorities` also answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simtrust.audit import AuditEntry, AuditLog
from simtrust.bootstrap._ca_delegate import cmp_client, delegate_settings, enroll_at_delegate
from simtrust.bootstrap._ca_forward import RevocationForwarder
from simtrust.bootstrap._ca_model import (
    REVOCATION_REASONS,
    CaRecord,
    CertProfile,
    DeviceCertTemplate,
    DeviceClaims,
    IssuedCert,
    challenge_password,
    check_label,
    did_of,
    est_label,
    imei_urn,
    key_type,
    load_csr,
    self_signed_ca,
)
from simtrust.bootstrap._ca_status import CertificateStatus
from simtrust.bootstrap._ca_waiting import DelegatedEnrolments
from simtrust.bootstrap._cmp import CmpClient, CmpProtection
from simtrust.bootstrap._pkcs11 import Pkcs11Key, sign_certificate
from simtrust.crypto import Keyring
from simtrust.errors import (
    Conflict,
    DecodeError,
    InvalidInput,
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
    "challenge_password",
    "est_label",
    "load_csr",
]


class CertificateAuthorities:
    """The store of CAs and certificates; keys unsealed once per process and cached.

    CA records are cached at most ``RECORD_TTL_S`` s: another process's profile change
    or CA removal is seen here within that time; this process's own at once."""

    RECORD_TTL_S = 2.0

    __slots__ = ("_akis", "_audit", "_cache_lock", "_clock", "_commits", "_db",
                 "_keyring", "_keys", "_listeners", "_records", "_templates",
                 "_transport", "certificate", "certificates", "crl", "delegated",
                 "forwarder", "generation", "ocsp_response", "public_base_url", "revoke",
                 "revoke_sim", "status")

    def __init__(self, db: Database, keyring: Keyring, audit: AuditLog,
                 clock: Callable[[], datetime], *, public_base_url: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self.public_base_url = public_base_url
        self._transport = transport
        self._keys: dict[str, ec.EllipticCurvePrivateKey | Pkcs11Key] = {}
        self._akis: dict[str, x509.AuthorityKeyIdentifier] = {}
        self._templates: dict[str, DeviceCertTemplate] = {}
        self._records: dict[str, tuple[CaRecord, float]] = {}
        self._cache_lock = threading.Lock()
        #: Bumped when this process registers a CA (listeners rebuild their client trust).
        self.generation = 0
        self._listeners: list[Callable[[str, str], None]] = []
        #: Issuance records of concurrent requests share one transaction (group commit);
        #: every caller returns only after the transaction holding its record committed.
        self._commits: GroupCommit[tuple[tuple[Any, ...], AuditEntry]] = GroupCommit(
            self._write_issued)
        self.status = CertificateStatus(db, audit, clock, lookup=self.get,
                                        signing_key=self._key, notify=self._notify)
        self.certificates = self.status.certificates
        self.certificate = self.status.certificate
        self.revoke = self.status.revoke
        self.revoke_sim = self.status.revoke_sim
        self.crl = self.status.crl
        self.ocsp_response = self.status.ocsp_response
        #: Revocations owed to the enterprise CAs of CMP-delegated CAs (rr outbox).
        self.forwarder = RevocationForwarder(db, audit, clock,
                                             lambda ca_id: self._cmp(self._ca_by_id(ca_id)))
        #: Enrolments at CMP-delegated CAs, incl. those answered ``waiting`` (EST 202).
        self.delegated = DelegatedEnrolments(db, clock, ca_for=self._ca_by_id,
                                             client_for=self._cmp, record=self._record,
                                             notify=self._notify)

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(event, iccid)`` after a certificate of a SIM is issued
        (``issued``) or revoked (``revoked``) and the change committed."""
        self._listeners.append(listener)

    def _notify(self, event: str, iccid: str) -> None:
        if event == "revoked":
            self.forwarder.wake()
        for listener in self._listeners:
            listener(event, iccid)

    def __repr__(self) -> str:
        return f"CertificateAuthorities({self._db!r})"

    # -- registration ----------------------------------------------------------

    @staticmethod
    def _aad(ca_id: str) -> bytes:
        return f"simtrust/bootstrap/ca/{ca_id}".encode()

    def _insert(self, tenant_id: str | None, label: str, mode: str, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey | None, profile: CertProfile,
                delegate_url: str | None, actor: str, *, ca_id: str | None = None,
                token: dict[str, str] | None = None, pin: str | None = None,
                delegate: tuple[str, dict[str, Any] | None, bytes | None] | None = None,
                ) -> CaRecord:
        check_label(label)
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
        cert = self_signed_ca(common_name, key, 3650, self._clock())
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
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key_type(key.public_key()) != "p256":
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
        check_label(label)
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
        (``kind`` cmp, at ``cmp_url``, requests protected by ``cmp``, whose secret or
        key is sealed) issues; ``ca_pem`` is its issuing CA."""
        try:
            cert = x509.load_pem_x509_certificate(ca_pem)
        except ValueError:
            raise DecodeError("CA certificate PEM does not parse") from None
        url, delegate = delegate_settings(kind, est_url, cmp_url, cmp, cmp_recipient)
        return self._insert(tenant_id, label, "delegated", cert, None,
                            profile or CertProfile(), url, actor, delegate=delegate)

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

    def operator_ca(self) -> CaRecord:
        """The operator's tier-1 CA (created on first use); it certifies the operator's TLS
        servers and RadSec gateways only."""
        try:
            return self.get("operator-tier1")
        except NotFound:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = self_signed_ca("simtrust operator tier-1 CA", key, 3650, self._clock())
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
        cached = self._records.get(label)
        now = time.monotonic()
        if cached is not None and now - cached[1] < self.RECORD_TTL_S:
            return cached[0]
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
            label, None if row[7] is None else str(row[7]),
        )
        with self._cache_lock:
            self._records[label] = (record, now)
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
              *, actor: str, renewing: x509.Certificate | None = None) -> x509.Certificate:
        """Sign a verified CSR under the tenant CA's profile; stored and audited.
        ``renewing`` (re-enrolment) goes to a CMP delegate as kur, else as p10cr."""
        if ca.tenant_id is None:
            raise PermissionDenied("the operator's tier-1 CA never signs tier-2 certificates",
                                   reason="tier1-ca")
        if ca.tenant_id != device.tenant_id:
            raise NotFound(f"unknown CA {ca.label!r}", reason="unknown-ca")
        public = csr.public_key()
        kind = key_type(public)
        if kind not in ca.profile.key_types:
            raise InvalidInput(f"key type {kind} is not allowed by the profile", field="csr")
        self.check_rate(ca, device.iccid)
        if ca.mode == "delegated" and ca.delegate_kind == "cmp":
            cert, fresh = self.delegated.enrol(ca, csr, device, actor=actor, kind=kind,
                                               renewing=renewing)
            if not fresh:
                return cert
        elif ca.mode == "delegated":
            cert = enroll_at_delegate(ca, csr, self._transport)
        else:
            cert = self._sign(ca, csr, device)
        self._record(ca, cert, device, actor, kind)
        self._notify("issued", device.iccid)
        return cert

    def _ca_by_id(self, ca_id: str) -> CaRecord:
        row = self._db.query_one("SELECT label FROM boot_cas WHERE ca_id = ?", (ca_id,))
        if row is None:
            raise NotFound(f"unknown CA {ca_id}", reason="unknown-ca")
        return self.get(str(row[0]))

    def _cmp(self, ca: CaRecord) -> CmpClient:
        """The CMP client of a CMP-delegated CA, its secret or key unsealed."""
        row = self._db.query_one("SELECT delegate_config, delegate_secret_sealed FROM boot_cas"
                                 " WHERE ca_id = ?", (ca.ca_id,))
        if row is None or row[0] is None or row[1] is None:
            raise Conflict(f"CA {ca.label!r} has no CMP settings", reason="no-delegate")
        secret = self._keyring.open(bytes(row[1]), self._aad(ca.ca_id) + b"/delegate")
        return cmp_client(ca, json.loads(str(row[0])), secret, self._transport, self._clock)

    def _sign(self, ca: CaRecord, csr: x509.CertificateSigningRequest,
              device: DeviceClaims) -> x509.Certificate:
        profile = ca.profile
        now = self._clock()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, device.iccid)]
        if profile.organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.organization))
        sans: list[x509.GeneralName] = []
        did = device.did or did_of(csr)
        if profile.san_did and did:
            sans.append(x509.UniformResourceIdentifier(did))
        if profile.san_imei and device.imei:
            sans.append(x509.UniformResourceIdentifier(imei_urn(device.imei)))
        if profile.san_iccid:
            sans.append(x509.UniformResourceIdentifier(f"urn:iccid:{device.iccid}"))
        template = self._template(ca)
        builder = (
            template.base.subject_name(x509.Name(attrs)).public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(seconds=profile.lifetime_s),
                                 ca.certificate.not_valid_after_utc))
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        for extension in template.tail:
            builder = builder.add_extension(extension, critical=False)
        key = self._key(ca)
        if isinstance(key, Pkcs11Key):
            return sign_certificate(builder, key)
        return builder.sign(key, hashes.SHA256())

    def _template(self, ca: CaRecord) -> DeviceCertTemplate:
        """The CA's fixed certificate parts, built once per CA (and base URL) and process."""
        template = self._templates.get(ca.ca_id)
        if template is None or template.base_url != self.public_base_url:
            template = DeviceCertTemplate.build(ca.certificate, self._aki(ca),
                                                self.public_base_url, ca.est_label)
            with self._cache_lock:
                self._templates[ca.ca_id] = template
        return template

    def _aki(self, ca: CaRecord) -> x509.AuthorityKeyIdentifier:
        """The CA's AuthorityKeyIdentifier, computed once per CA and process."""
        aki = self._akis.get(ca.ca_id)
        if aki is None:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.certificate.public_key())  # type: ignore[arg-type]  # CA keys are P-256
            with self._cache_lock:
                self._akis[ca.ca_id] = aki
        return aki

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
        """One durable transaction (fsync) for the certificates and audit records of ``batch``."""
        with self._db.transaction(durable=True):
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
