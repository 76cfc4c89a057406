"""LwM2M X.509 certificate mode (OMA LwM2M 1.1 Transport §5.2.8.3, Security object
resource 2 = 2 "Certificate"; RFC 7925 §4.4) for the device-management server: device
certificates issued by a tenant CA of ``simtrust.bootstrap`` (EST, RFC 7030) authenticate
the device over DTLS.

- The server's own certificate comes from the operator's tier-1 CA
  (``CertificateAuthorities.server_certificate``), the trust anchors are the tenant CAs.
- mbed TLS validates the client's chain (RFC 5280 §6: signature, validity, clientAuth
  usage). This module then binds the certificate to a SIM: its issuer must be a tenant CA
  (directly issued), its serial must be one simtrust issued and recorded for that tenant,
  still ``good`` (not revoked, RFC 5280 §5.3.1), and the SIM of its ICCID must exist.
  Anything else is refused and counted by reason. A revocation ends the SIM's certificate
  sessions already up (``DeviceServices``); its next handshake is refused.
- The identity handed to the management server is ``x509:<serial>``, with the SIM's IMSI
  and tenant and the IMEI of the certificate's ``urn:imei:`` SAN (RFC 7254): the endpoint
  client name must name that SIM and IMEI (Transport §5.2.8.3 leaves the binding of the
  endpoint name to the certificate to the server; ours is the SAN).
- :meth:`DeviceCertificates.provision` is the bootstrap server's side: for a tenant with a
  CA labelled ``lwm2m`` it makes the device a key and a certificate of that CA (EST
  serverkeygen, RFC 7030 §4.4, recorded and audited like any issuance) to be written into
  the device's Security object over the SIM-keyed bootstrap session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simtrust.bootstrap import CertificateAuthorities, DeviceClaims
from simtrust.devices._credentials import DM
from simtrust.devices._transport import CertificateMode, PskEntry
from simtrust.errors import NotFound
from simtrust.subscriber import Sim

__all__ = ["PROVISIONING_CA", "X509_PREFIX", "DeviceCertificates"]

X509_PREFIX = "x509:"
#: The tenant CA label that makes the bootstrap server provision certificate mode.
PROVISIONING_CA = "lwm2m"
_MAX_CERT = 8192


def _imei_of(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("urn:imei:"):
            digits = uri[len("urn:imei:"):].replace("-", "")
            return digits if digits.isdigit() and len(digits) in (14, 15) else None
    return None


class DeviceCertificates:
    """The certificate side of the management server's DTLS link."""

    def __init__(self, cas: CertificateAuthorities, sim_by_iccid: Callable[[str], Sim | None],
                 hostnames: list[str], *, server_days: int = 30) -> None:
        self._cas = cas
        self._sim_by_iccid = sim_by_iccid
        self._hostnames = hostnames
        self._days = server_days
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, str] | None = None
        self._issuers: list[tuple[x509.Certificate, str]] = []
        self.refused: dict[str, int] = {}
        self.accepted = 0

    def __repr__(self) -> str:
        return f"DeviceCertificates({len(self._issuers)} tenant CAs)"

    def changed(self) -> bool:
        """A CA was registered or removed since :meth:`mode` last ran."""
        return self._cas.trust_stamp() != self._stamp

    def mode(self) -> CertificateMode:
        """A fresh server certificate and the tenant CAs as trust anchors."""
        stamp = self._cas.trust_stamp()
        chain_pem, key_pem = self._cas.server_certificate(self._hostnames, days=self._days)
        chain = tuple(c.public_bytes(serialization.Encoding.DER)
                      for c in x509.load_pem_x509_certificates(chain_pem))
        key = serialization.load_pem_private_key(key_pem, password=None).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        issuers = [(ca.certificate, ca.tenant_id) for ca in self._cas.cas()
                   if ca.tenant_id is not None]
        with self._lock:
            self._issuers = issuers
            self._stamp = stamp
        trust = tuple(c.public_bytes(serialization.Encoding.DER) for c, _ in issuers)
        return CertificateMode(chain, key, trust, self.identify)

    def provision(self, tenant_id: str, iccid: str, imsi: str, imei: str | None,
                  ) -> tuple[bytes, bytes, bytes] | None:
        """(certificate DER, PKCS#8 key DER, server trust anchor DER) for a device of a
        tenant with an ``lwm2m`` CA; None when the tenant has none (PSK mode)."""
        try:
            ca = self._cas.find(tenant_id, PROVISIONING_CA)
        except NotFound:
            return None
        cert, key = self._cas.generate_key_and_issue(
            ca, DeviceClaims(tenant_id, iccid, imsi, imei=imei), actor="lwm2m-bootstrap")
        trust = self._cas.operator_ca().certificate.public_bytes(serialization.Encoding.DER)
        return cert.public_bytes(serialization.Encoding.DER), key, trust

    def enrol(self, tenant_id: str, iccid: str, imsi: str,
              csr: x509.CertificateSigningRequest) -> tuple[bytes, bytes] | None:
        """Sign a device's own key (EST-coaps at the bootstrap server): (certificate DER,
        server trust anchor DER), or None when the tenant has no ``lwm2m`` CA. The CSR's
        signature is checked by the caller; its subject is replaced by the SIM's."""
        try:
            ca = self._cas.find(tenant_id, PROVISIONING_CA)
        except NotFound:
            return None
        cert = self._cas.issue(ca, csr, DeviceClaims(tenant_id, iccid, imsi),
                               actor="lwm2m-est")
        return cert.public_bytes(serialization.Encoding.DER), self.trust_anchor()

    def trust_anchor(self) -> bytes:
        """The management server's trust anchor for devices (the operator CA, DER)."""
        return self._cas.operator_ca().certificate.public_bytes(serialization.Encoding.DER)

    def imsi_of(self, iccid: str) -> str | None:
        sim = self._sim_by_iccid(iccid)
        return None if sim is None else sim.imsi.value

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """``listener(event, iccid)`` after an issuance or revocation committed."""
        self._cas.subscribe(listener)

    def _refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def identify(self, der: bytes) -> tuple[str, PskEntry] | None:
        """The device a chain-validated client certificate authenticates, or None."""
        if len(der) > _MAX_CERT:
            self._refuse("malformed")
            return None
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            self._refuse("malformed")
            return None
        tenant: str | None = None
        with self._lock:
            issuers = list(self._issuers)
        for ca_cert, tenant_id in issuers:
            if cert.issuer != ca_cert.subject:
                continue
            try:
                cert.verify_directly_issued_by(ca_cert)
            except Exception:  # noqa: BLE001,S112 - any failure means "not this CA"
                continue
            tenant = tenant_id
            break
        if tenant is None:
            self._refuse("unknown-issuer")
            return None
        serial = format(cert.serial_number, "x")
        try:
            record = self._cas.certificate(serial)
        except NotFound:
            self._refuse("unknown-certificate")
            return None
        if record.tenant_id != tenant:
            self._refuse("unknown-certificate")
            return None
        if record.status != "good":
            self._refuse("revoked")
            return None
        sim = self._sim_by_iccid(record.iccid)
        if sim is None or sim.tenant_id != tenant:
            self._refuse("unknown-sim")
            return None
        self.accepted += 1
        return X509_PREFIX + serial, PskEntry(b"", sim.imsi.value, tenant, DM, _imei_of(cert))
