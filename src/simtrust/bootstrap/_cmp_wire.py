"""CMP messages on the wire: DER framing, decoding, protection checks, PKIStatus.

The half of the CMP client (:mod:`simtrust.bootstrap._cmp`, whose docstring says
why it is written here) that reads what a server sends:

- :func:`split_message` finds the ProtectedPart (RFC 4210 §5.1.3) of a received
  PKIMessage from its header and body bytes as received, so that a MAC or
  signature is checked over exactly what the server protected (X.690 §10 DER
  lengths, single-byte tags).
- :func:`decode_message` decodes an untrusted PKIMessage with ``pyasn1-modules``
  ``rfc4210`` after a size limit; every failure is a ``delegate-bad-answer``.
- :func:`verify_mac`: PasswordBasedMac (RFC 4210 §5.1.3.1, RFC 9481 §6.1.1) and
  PBMAC1 (RFC 9481 §6.1.2, RFC 8018 §7.1), iteration counts bounded;
  :func:`verify_signature`: ECDSA, Ed25519 and RSA PKCS#1 v1.5 (RFC 9481 §3).
- :func:`status_of` and :func:`refusal`: PKIStatusInfo and PKIFailureInfo (RFC 4210
  §5.2.3 as updated by RFC 9480 §2.1) turned into problems.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import constraint, namedtype, tag, univ
from pyasn1_modules import rfc2459, rfc4210, rfc8018

from simtrust.errors import PermissionDenied, StoreError

__all__ = [
    "ED25519_OID",
    "FAILURE_BITS",
    "HMAC_SHA256_OID",
    "IMPLICIT_CONFIRM_OID",
    "MAX_MESSAGE",
    "MEDIA_TYPE",
    "PBKDF2_OID",
    "PBMAC1_OID",
    "PBM_OID",
    "SHA256_OID",
    "CmpMessage",
    "algorithm_id",
    "algorithm_params",
    "certificate_of",
    "conf_hash",
    "decode_message",
    "der_length",
    "der_sequence",
    "free_text",
    "hmac_of",
    "pbm_key",
    "refusal",
    "split_message",
    "status_of",
    "verify_mac",
    "verify_signature",
]

MAX_MESSAGE = 256 * 1024
MEDIA_TYPE = "application/pkixcmp"
PBM_OID = "1.2.840.113533.7.66.13"
PBMAC1_OID = "1.2.840.113549.1.5.14"
PBKDF2_OID = "1.2.840.113549.1.5.12"
# HMAC-SHA1 only to verify answers: OpenSSL's PasswordBasedMac default (RFC 9481 §6.1.1
# keeps it for interoperability); what we send uses SHA-256.
_HMAC = {"1.3.6.1.5.5.8.1.2": hashes.SHA1(),  # noqa: S303
         "1.2.840.113549.2.7": hashes.SHA1(),  # noqa: S303
         "1.2.840.113549.2.9": hashes.SHA256(), "1.2.840.113549.2.10": hashes.SHA384(),
         "1.2.840.113549.2.11": hashes.SHA512()}
_OWF = {"1.3.14.3.2.26": hashes.SHA1(),  # noqa: S303 - verifying answers only
        "2.16.840.1.101.3.4.2.1": hashes.SHA256(),
        "2.16.840.1.101.3.4.2.2": hashes.SHA384(), "2.16.840.1.101.3.4.2.3": hashes.SHA512()}
HMAC_SHA256_OID = "1.2.840.113549.2.9"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
_ECDSA = {"1.2.840.10045.4.3.2": hashes.SHA256(), "1.2.840.10045.4.3.3": hashes.SHA384(),
          "1.2.840.10045.4.3.4": hashes.SHA512()}
_RSA = {"1.2.840.113549.1.1.11": hashes.SHA256(), "1.2.840.113549.1.1.12": hashes.SHA384(),
        "1.2.840.113549.1.1.13": hashes.SHA512()}
ED25519_OID = "1.3.101.112"
IMPLICIT_CONFIRM_OID = "1.3.6.1.5.5.7.4.13"
#: PasswordBasedMac and PBKDF2 iteration counts accepted in answers (RFC 9481 §6.1:
#: bounded so that an answer cannot make us hash without end).
_MIN_ITERATIONS, _MAX_ITERATIONS = 100, 1_000_000
#: PKIFailureInfo bit names (RFC 4210 §5.2.3 as updated by RFC 9480 §2.1).
FAILURE_BITS = (
    "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId", "badDataFormat",
    "wrongAuthority", "incorrectData", "missingTimeStamp", "badPOP", "certRevoked",
    "certConfirmed", "wrongIntegrity", "badRecipientNonce", "timeNotAvailable",
    "unacceptedPolicy", "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
    "badCertTemplate", "signerNotTrusted", "transactionIdInUse", "unsupportedVersion",
    "notAuthorized", "systemUnavail", "systemFailure", "duplicateCertReq",
)
#: Failures that mean the server did not accept who we are.
_AUTH_FAILURES = {"badMessageCheck", "wrongIntegrity", "notAuthorized", "signerNotTrusted",
                  "badSenderNonce", "badRecipientNonce", "badAlg"}
_STATUS = ("accepted", "grantedWithMods", "rejection", "waiting", "revocationWarning",
           "revocationNotification", "keyUpdateWarning")


ECDSA_SHA256_OID = "1.2.840.10045.4.3.2"



@dataclass(frozen=True, slots=True)
class CmpMessage:
    """A decoded PKIMessage and the bytes its protection covers."""

    message: Any = field(repr=False)
    protected_part: bytes = field(repr=False)
    body_type: str = ""

    @property
    def header(self) -> Any:
        return self.message["header"]

    @property
    def body(self) -> Any:
        return self.message["body"][self.body_type]

    def octets(self, name: str) -> bytes | None:
        value = self.header[name]
        return bytes(value) if value.isValue else None


# -- DER framing -------------------------------------------------------------------


def der_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag byte, content start, end) of the DER element at ``pos`` (X.690 §8.1, §10.1:
    single-byte tags, definite minimal lengths)."""
    if pos + 2 > len(data):
        raise StoreError("CMP answer is truncated", reason="delegate-bad-answer")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise StoreError("CMP answer uses a multi-byte tag", reason="delegate-bad-answer")
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise StoreError("CMP answer has a bad length", reason="delegate-bad-answer")
        length = int.from_bytes(data[start:start + count], "big")
        if length < 0x80 or data[start] == 0:
            raise StoreError("CMP answer is not DER (length)", reason="delegate-bad-answer")
        start += count
    end = start + length
    if end > len(data):
        raise StoreError("CMP answer is truncated", reason="delegate-bad-answer")
    return tag, start, end


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_sequence(content: bytes) -> bytes:
    return b"\x30" + der_length(len(content)) + content


def split_message(data: bytes) -> bytes:
    """The DER ProtectedPart (SEQUENCE of header and body, RFC 4210 §5.1.3) of a
    PKIMessage, built from its received header and body bytes."""
    tag, start, end = der_tlv(data, 0)
    if tag != 0x30 or end != len(data):
        raise StoreError("CMP answer is not one DER SEQUENCE", reason="delegate-bad-answer")
    h_tag, _, h_end = der_tlv(data, start)
    b_tag, _, b_end = der_tlv(data, h_end)
    if h_tag != 0x30 or b_tag & 0xE0 != 0xA0:
        raise StoreError("CMP answer has no header and body", reason="delegate-bad-answer")
    return der_sequence(data[start:b_end])


class _CertId(univ.Sequence):  # type: ignore[misc]
    """CRMF CertId (RFC 4211 §6.5) with a real GeneralName: ``pyasn1_modules.rfc2511``
    declares its GeneralName as an OCTET STRING placeholder, so an ``rp`` carrying
    ``revCerts`` (OpenSSL's does) would not decode."""

    componentType = namedtype.NamedTypes(  # noqa: N815  (pyasn1 API)
        namedtype.NamedType("issuer", rfc2459.GeneralName()),
        namedtype.NamedType("serialNumber", univ.Integer()))


def _replaced(types: Any, name: str, asn1: Any) -> namedtype.NamedTypes:
    return namedtype.NamedTypes(*(
        (namedtype.OptionalNamedType if isinstance(nt, namedtype.OptionalNamedType)
         else namedtype.NamedType)(name, asn1) if nt.name == name else nt
        for nt in types.namedTypes))


class _RevRepContent(univ.Sequence):  # type: ignore[misc]
    componentType = _replaced(  # noqa: N815  (pyasn1 API)
        rfc4210.RevRepContent.componentType, "revCerts",
        univ.SequenceOf(componentType=_CertId()).subtype(
            sizeSpec=constraint.ValueSizeConstraint(1, rfc4210.MAX),
            explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0)))


class _PKIBody(univ.Choice):  # type: ignore[misc]
    componentType = _replaced(rfc4210.PKIBody.componentType, "rp", _RevRepContent().subtype(  # noqa: N815  (pyasn1 API)
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 12)))


class _PKIMessage(univ.Sequence):  # type: ignore[misc]
    componentType = _replaced(rfc4210.PKIMessage.componentType, "body", _PKIBody())  # noqa: N815  (pyasn1 API)


def decode_message(data: bytes) -> CmpMessage:
    """Decode an untrusted DER PKIMessage (StoreError ``delegate-bad-answer`` if it is not)."""
    if len(data) > MAX_MESSAGE:
        raise StoreError("CMP answer too large", reason="delegate-bad-answer")
    protected = split_message(data)
    try:
        message, rest = decoder.decode(data, asn1Spec=_PKIMessage())
        body_type = message["body"].getName()
        if rest or not body_type:
            raise PyAsn1Error("trailing data or no body")
    except (PyAsn1Error, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, RecursionError):
        raise StoreError("CMP answer does not decode as a PKIMessage",
                         reason="delegate-bad-answer") from None
    return CmpMessage(message, protected, body_type)


# -- protection ----------------------------------------------------------------------


def pbm_key(secret: bytes, salt: bytes, owf: hashes.HashAlgorithm, count: int) -> bytes:
    """BASEKEY of PasswordBasedMac: owf applied ``count`` times to secret‖salt (RFC 4210
    §5.1.3.1)."""
    key = secret + salt
    name = owf.name
    for _ in range(count):
        key = hashlib.new(name, key).digest()
    return key


def hmac_of(key: bytes, algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hmac.new(key, data, algorithm.name).digest()


def algorithm_id(oid: str, params: Any = None) -> rfc2459.AlgorithmIdentifier:
    alg = rfc2459.AlgorithmIdentifier()
    alg["algorithm"] = univ.ObjectIdentifier(oid)
    if params is not None:
        alg["parameters"] = univ.Any(encoder.encode(params))
    return alg


def algorithm_params(alg: Any, spec: Any) -> Any:
    if not alg["parameters"].isValue:
        raise StoreError("CMP MAC algorithm without parameters", reason="delegate-bad-answer")
    try:
        value, rest = decoder.decode(bytes(alg["parameters"]), asn1Spec=spec)
    except (PyAsn1Error, ValueError, TypeError):
        value, rest = None, b"x"
    if rest:
        raise StoreError("CMP MAC parameters do not decode", reason="delegate-bad-answer")
    return value


def _iterations(value: Any) -> int:
    count = int(value)
    if not _MIN_ITERATIONS <= count <= _MAX_ITERATIONS:
        raise StoreError(f"CMP MAC iteration count {count} out of bounds",
                         reason="delegate-bad-answer")
    return count


def verify_mac(alg: Any, secret: bytes, data: bytes, mac: bytes) -> bool:
    oid = str(alg["algorithm"])
    if oid == PBM_OID:
        params = algorithm_params(alg, rfc4210.PBMParameter())
        owf = _OWF.get(str(params["owf"]["algorithm"]))
        mac_alg = _HMAC.get(str(params["mac"]["algorithm"]))
        salt = bytes(params["salt"])
        if owf is None or mac_alg is None or len(salt) > 128:
            raise StoreError("CMP PasswordBasedMac with unsupported algorithms",
                             reason="delegate-bad-answer")
        key = pbm_key(secret, salt, owf, _iterations(params["iterationCount"]))
        return hmac.compare_digest(hmac_of(key, mac_alg, data), mac)
    if oid == PBMAC1_OID:
        params = algorithm_params(alg, rfc8018.PBMAC1_params())
        kdf = params["keyDerivationFunc"]
        mac_alg = _HMAC.get(str(params["messageAuthScheme"]["algorithm"]))
        if str(kdf["algorithm"]) != PBKDF2_OID or mac_alg is None:
            raise StoreError("CMP PBMAC1 with unsupported algorithms",
                             reason="delegate-bad-answer")
        kdf_params = algorithm_params(kdf, rfc8018.PBKDF2_params())
        prf = _HMAC.get(str(kdf_params["prf"]["algorithm"]))
        salt_choice = kdf_params["salt"]
        length = int(kdf_params["keyLength"]) if kdf_params["keyLength"].isValue else (
            mac_alg.digest_size)
        if prf is None or salt_choice.getName() != "specified" or not 16 <= length <= 64:
            raise StoreError("CMP PBMAC1 with unsupported PBKDF2 parameters",
                             reason="delegate-bad-answer")
        key = hashlib.pbkdf2_hmac(prf.name, secret, bytes(salt_choice["specified"]),
                                  _iterations(kdf_params["iterationCount"]), length)
        return hmac.compare_digest(hmac_of(key, mac_alg, data), mac)
    raise StoreError(f"CMP answer protected by unsupported algorithm {oid}",
                     reason="delegate-bad-answer")


def verify_signature(alg: Any, cert: x509.Certificate, data: bytes, sig: bytes) -> bool:
    oid = str(alg["algorithm"])
    public = cert.public_key()
    try:
        if oid in _ECDSA and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(sig, data, ec.ECDSA(_ECDSA[oid]))
        elif oid == ED25519_OID and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(sig, data)
        elif oid in _RSA and isinstance(public, rsa.RSAPublicKey):
            public.verify(sig, data, padding.PKCS1v15(), _RSA[oid])
        else:
            raise StoreError(f"CMP answer signed with unsupported algorithm {oid}",
                             reason="delegate-bad-answer")
    except CryptoInvalidSignature:
        return False
    return True


def certificate_of(value: Any) -> x509.Certificate:
    try:
        der = encoder.encode(value)
        if der[:1] != b"\x30":  # an explicitly tagged choice ([0] certificate)
            _, start, end = der_tlv(der, 0)
            der = der[start:end]
        return x509.load_der_x509_certificate(der)
    except (ValueError, PyAsn1Error):
        raise StoreError("CMP answer holds a certificate that does not parse",
                         reason="delegate-bad-answer") from None


def conf_hash(cert: x509.Certificate) -> hashes.HashAlgorithm:
    """certHash algorithm: the one of the certificate's signature (RFC 4210 §5.3.18),
    SHA-256 where that has none (Ed25519, RFC 9481 §2)."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        return hashes.SHA256()
    return algorithm


def free_text(value: Any) -> str:
    if not value.isValue:
        return ""
    text = " ".join(str(part) for part in value)
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:200]


def failures_of(info: Any) -> list[str]:
    if not info["failInfo"].isValue:
        return []
    bits = tuple(info["failInfo"])
    return [FAILURE_BITS[i] if i < len(FAILURE_BITS) else f"bit{i}"
            for i, bit in enumerate(bits[:64]) if bit]


def status_of(info: Any) -> tuple[int, list[str], str]:
    return int(info["status"]), failures_of(info), free_text(info["statusString"])


def refusal(what: str, status: int, failures: list[str], text: str, *,
             authenticated: bool = True) -> PermissionDenied:
    name = _STATUS[status] if 0 <= status < len(_STATUS) else str(status)
    bits = ", ".join(failures) or "no failure info"
    said = f": {text}" if text else ""
    unauth = "" if authenticated else " (answer not authenticated)"
    if _AUTH_FAILURES.intersection(failures):
        return PermissionDenied(
            f"enterprise CMP server refused our request's protection ({bits}){said}{unauth};"
            " check the CA's shared secret and reference or its client certificate",
            reason="delegate-auth", failures=failures)
    return PermissionDenied(f"enterprise CMP server {what} ({name}; {bits}){said}{unauth}",
                            reason="delegate-refused", failures=failures)
