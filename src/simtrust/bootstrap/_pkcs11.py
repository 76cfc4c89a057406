"""Tenant CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests), through python-pkcs11.

The key pair is generated inside the token (CKM_EC_KEY_PAIR_GEN on P-256, token
object, not extractable) and signs with CKM_ECDSA over a SHA-256 digest made here
(PKCS#11 v2.40 §2.3.6). ``cryptography`` only signs with keys it holds, so a
certificate, CRL or OCSP response is built by ``cryptography`` with a throwaway
P-256 key of the same algorithm, and its to-be-signed bytes are signed by the token
and re-assembled: Certificate and CertificateList (RFC 5280 §4.1, §5.1) and
BasicOCSPResponse inside OCSPResponse (RFC 6960 §4.2.1).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import ocsp
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from simtrust.bootstrap._csr import der, der_oid
from simtrust.errors import ConfigError, InvalidInput

__all__ = ["Pkcs11Key", "sign_certificate", "sign_crl", "sign_ocsp"]

_ECDSA_SHA256 = der(0x30, der_oid("1.2.840.10045.4.3.2"))
_OCSP_BASIC = "1.3.6.1.5.5.7.48.1.1"
_THROWAWAY = ec.generate_private_key(ec.SECP256R1())
_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()


def _lib(module: str) -> Any:
    with _LIBS_LOCK:
        if module not in _LIBS:
            try:
                _LIBS[module] = pkcs11.lib(module)
            except (RuntimeError, OSError, pkcs11.PKCS11Error) as exc:
                raise ConfigError(f"cannot load PKCS#11 module {module}: "
                                  f"{type(exc).__name__}") from None
        return _LIBS[module]


_SESSIONS: dict[tuple[str, str], tuple[bytes, Any, threading.Lock]] = {}


def _session(module: str, token_label: str, pin: str) -> tuple[Any, threading.Lock]:
    """One logged-in session per token and process (PKCS#11 login state is per
    application); a later caller must present the same PIN."""
    pin_hash = hashlib.sha256(pin.encode()).digest()
    with _LIBS_LOCK:
        known = _SESSIONS.get((module, token_label))
    if known is not None:
        if not hmac.compare_digest(known[0], pin_hash):
            raise InvalidInput("PKCS#11 PIN does not match the token's session", field="pin")
        return known[1], known[2]
    try:
        token = _lib(module).get_token(token_label=token_label)
        session = token.open(user_pin=pin, rw=True)
    except pkcs11.NoSuchToken:
        raise InvalidInput(f"no PKCS#11 token {token_label!r}", field="token") from None
    except pkcs11.PKCS11Error as exc:
        raise InvalidInput(f"PKCS#11 login failed ({type(exc).__name__})",
                           field="pin") from None
    with _LIBS_LOCK:
        _SESSIONS[(module, token_label)] = (pin_hash, session, threading.Lock())
        return _SESSIONS[(module, token_label)][1:]


class Pkcs11Key:
    """A P-256 private key in a token slot, addressed by token label and key label."""

    __slots__ = ("_lock", "_private", "_public", "_session", "key_label", "module",
                 "token_label")

    def __init__(self, module: str, token_label: str, pin: str, key_label: str) -> None:
        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self._session, self._lock = _session(module, token_label, pin)
        self._private: Any = None
        self._public: ec.EllipticCurvePublicKey | None = None

    def __repr__(self) -> str:
        return f"Pkcs11Key({self.token_label!r}, {self.key_label!r})"

    def generate(self) -> ec.EllipticCurvePublicKey:
        """Create the key pair inside the token (not extractable, sensitive)."""
        with self._lock:
            params = self._session.create_domain_parameters(
                pkcs11.KeyType.EC,
                {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True)
            public, private = params.generate_keypair(
                store=True, label=self.key_label,
                private_template={pkcs11.Attribute.SENSITIVE: True,
                                  pkcs11.Attribute.EXTRACTABLE: False})
            self._private = private
            self._public = self._load_public(public)
        return self._public

    @staticmethod
    def _load_public(public: Any) -> ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(encode_ec_public_key(public))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidInput("token key is not an EC key", field="key_label")
        return key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        with self._lock:
            if self._public is None:
                try:
                    public = self._session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY,
                                                   label=self.key_label)
                except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
                    raise InvalidInput(f"no single key {self.key_label!r} in the token",
                                       field="key_label") from None
                self._public = self._load_public(public)
            return self._public

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-with-SHA-256 signature of ``data`` made by the token."""
        digest = hashlib.sha256(data).digest()
        with self._lock:
            if self._private is None:
                self._private = self._session.get_key(
                    object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=self.key_label)
            raw = self._private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                    int.from_bytes(raw[half:], "big"))



def _signed(tbs: bytes, signature: bytes) -> bytes:
    return der(0x30, tbs + _ECDSA_SHA256 + der(0x03, b"\x00" + signature))


def sign_certificate(builder: x509.CertificateBuilder, key: Pkcs11Key) -> x509.Certificate:
    tbs = builder.sign(_THROWAWAY, hashes.SHA256()).tbs_certificate_bytes
    return x509.load_der_x509_certificate(_signed(tbs, key.sign(tbs)))


def sign_crl(builder: x509.CertificateRevocationListBuilder,
             key: Pkcs11Key) -> x509.CertificateRevocationList:
    tbs = builder.sign(_THROWAWAY, hashes.SHA256()).tbs_certlist_bytes
    return x509.load_der_x509_crl(_signed(tbs, key.sign(tbs)))


def _stand_in(subject: x509.Name) -> x509.Certificate:
    """A certificate naming the CA but holding the throwaway key: cryptography wants the
    responder's certificate and key to match, and byName only uses the subject."""
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(_THROWAWAY.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(_THROWAWAY, hashes.SHA256()))


def sign_ocsp(builder: ocsp.OCSPResponseBuilder, key: Pkcs11Key, subject: x509.Name) -> bytes:
    """A successful OCSPResponse with ResponderID byName (RFC 6960 §4.2.2.3), token-signed."""
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, _stand_in(subject))
    tbs = builder.sign(_THROWAWAY, hashes.SHA256()).tbs_response_bytes
    basic = _signed(tbs, key.sign(tbs))
    response_bytes = der(0x30, der_oid(_OCSP_BASIC) + der(0x04, basic))
    return der(0x30, der(0x0A, b"\x00") + der(0xA0, response_bytes))
