"""DER bodies of the CMP requests a delegated CA sends besides ``p10cr``.

- ``kur`` (RFC 4210 §5.3.5, Lightweight CMP Profile RFC 9483 §4.1.3): one CRMF
  ``CertReqMsg`` (RFC 4211 §3) with ``certReqId`` 0, a ``CertTemplate`` holding the
  subject, public key and requested extensions of the device's re-enrolment CSR,
  the ``oldCertID`` control (RFC 4211 §6.5) naming the certificate being renewed,
  and ``raVerified`` proof of possession (RFC 4211 §4; RFC 9483 §5.2.3.2): the
  device proved possession by signing its PKCS#10 CSR, which simtrust verified
  before building this request (docs/decisions/bootstrap-cmp-renewal-revocation.md).
- ``rr`` (RFC 4210 §5.3.9, RFC 9483 §4.2 and §5.3.2): one ``RevDetails`` whose
  ``certDetails`` carry exactly the issuer and serial number of the certificate,
  and whose ``crlEntryDetails`` carry the reasonCode (RFC 5280 §5.3.1).

The CRMF and PKIX1 modules use implicit tags; ``Name`` is a CHOICE, so its tags
are explicit. PKIBody's own tags are explicit (RFC 4210 Appendix F).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import encoder
from pyasn1.type import univ

from simtrust.bootstrap._cmp_wire import der_length, der_sequence

__all__ = ["kur_body", "rr_body"]

#: id-regCtrl-oldCertID (RFC 4211 §6.5).
OLD_CERT_ID_OID = b"\x06\x09\x2b\x06\x01\x05\x05\x07\x05\x01\x05"
#: id-ce-cRLReasons (RFC 5280 §5.3.1).
REASON_CODE_OID = b"\x06\x03\x55\x1d\x15"

REASON_CODES = {
    x509.ReasonFlags.unspecified: 0, x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2, x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4, x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6, x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def _integer(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return raw


def _content(der: bytes) -> bytes:
    """The content octets of one DER TLV (to re-tag it implicitly)."""
    length = der[1]
    if length < 0x80:
        return der[2:]
    return der[2 + (length & 0x7F):]


def kur_body(csr: x509.CertificateSigningRequest, old: x509.Certificate) -> bytes:
    """The ``kur`` PKIBody (tag [7]) renewing ``old`` for the key of ``csr``."""
    spki = csr.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    template = _tlv(0xA5, csr.subject.public_bytes()) + _tlv(0xA6, _content(spki))
    try:
        requested = csr.extensions
    except ValueError:
        requested = x509.Extensions([])
    if len(requested):
        # The requested extensions, as the CSR's extensionRequest carried them.
        exts = b"".join(_extension(e) for e in requested)
        template += _tlv(0xA9, exts)
    cert_id = der_sequence(_tlv(0xA4, old.issuer.public_bytes())
                           + _tlv(0x02, _integer(old.serial_number)))
    controls = der_sequence(der_sequence(OLD_CERT_ID_OID + cert_id))
    request = der_sequence(_tlv(0x02, b"\x00") + der_sequence(template) + controls)
    message = der_sequence(request + b"\x80\x00")  # popo raVerified [0] NULL
    return _tlv(0xA7, der_sequence(message))


def _extension(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    value = ext.value.public_bytes()
    critical = b"\x01\x01\xff" if ext.critical else b""
    return der_sequence(_tlv(0x06, _oid(ext.oid.dotted_string)) + critical
                        + _tlv(0x04, value))


def _oid(dotted: str) -> bytes:
    return bytes(encoder.encode(univ.ObjectIdentifier(dotted)))[2:]


def rr_body(cert_issuer: x509.Name, serial: int, reason: x509.ReasonFlags) -> bytes:
    """The ``rr`` PKIBody (tag [11]) revoking ``serial`` of ``cert_issuer`` for ``reason``."""
    details = _tlv(0x81, _integer(serial)) + _tlv(0xA3, cert_issuer.public_bytes())
    code = _tlv(0x0A, bytes([REASON_CODES.get(reason, 0)]))
    entry = der_sequence(der_sequence(REASON_CODE_OID + _tlv(0x04, code)))
    return _tlv(0xAB, der_sequence(der_sequence(der_sequence(details) + entry)))
