"""A CMP client: a tenant CA delegated to the enterprise's own CMP server.

Why it is written here: no maintained Python CMP client exists (the CMP
implementations in use are OpenSSL's ``openssl cmp``/libcrypto, Bouncy Castle,
EJBCA and the Siemens "LightweightCmpRa" in Java); the structures are those of
``pyasn1-modules`` (``rfc4210`` PKIMessage, ``rfc2314`` PKCS#10, ``rfc8018``
PBKDF2/PBMAC1), the cryptography that of ``cryptography``. Only the transactions
a delegated CA needs are implemented, as the Lightweight CMP Profile (RFC 9483)
describes them: enrolment of a device's PKCS#10 request (p10cr, §4.1.4), its
renewal (kur, §4.1.3; bodies in :mod:`simtrust.bootstrap._cmp_bodies`) and
revocation (rr, §4.2 / §5.3.2), over HTTP or HTTPS (trust: the system's CAs and
the registered CA; docs/decisions/bootstrap-cmp-renewal-revocation.md).

- Transfer: HTTP POST of a DER PKIMessage with ``Content-Type:
  application/pkixcmp``, the answer likewise (RFC 6712 §3.1, §3.3, §3.4).
- Transaction: ``p10cr`` with the device's CSR unchanged, so the CSR's own
  signature is the proof of possession (RFC 9483 §4.1.4; RFC 4210 §5.3.4 as
  updated by RFC 9480), answered by ``cp`` (RFC 4210 §5.3.4); the certificate is
  confirmed with ``certConf`` and ``pkiConf`` closes the transaction (RFC 4210
  §5.3.18, §5.3.17; RFC 9483 §4.1.1). A certificate that fails our checks is
  answered with a ``certConf`` of status rejection (RFC 9483 §4.1.1).
- Header: ``pvno`` cmp2000 (2), as RFC 9480 §2.20 requires when no cmp2021
  feature is used (answers with 2 or 3 are accepted); a fresh 128-bit
  ``transactionID`` and ``senderNonce``; ``recipNonce`` echoes the server's last
  ``senderNonce``; ``messageTime`` (RFC 4210 §5.1.1, RFC 9483 §3.1).
- Protection (RFC 4210 §5.1.3): by MAC over a shared secret with
  PasswordBasedMac (RFC 4210 §5.1.3.1, RFC 9481 §6.1.1; owf SHA-256, HMAC-SHA256)
  or PBMAC1 (RFC 9481 §6.1.2, RFC 8018 §7.1: PBKDF2 with HMAC-SHA256), the
  secret's reference as ``senderKID`` and the NULL-DN as sender (RFC 9483 §3.1);
  or by signature with a client certificate (RFC 9481 §3: ECDSA with SHA-256 or
  Ed25519), whose subject is the sender, its subjectKeyIdentifier the
  ``senderKID``, and which travels first in ``extraCerts`` (RFC 9483 §3.3).
- Checks of every answer (RFC 9483 §3.5): protection present and valid (a MAC by
  the same secret, or a signature by a certificate that is the registered CA or
  issued directly by it), ``transactionID`` ours, ``recipNonce`` our
  ``senderNonce``, the body the expected one. PKIStatus and PKIFailureInfo
  (RFC 4210 §5.2.3) become problems: a refused protection (badMessageCheck,
  wrongIntegrity, notAuthorized, signerNotTrusted, badSenderNonce...) says to
  check the shared secret or client certificate; other rejections carry the
  server's failure bits and status text. An error message whose protection we
  cannot verify is still reported as a refusal (the transaction fails either
  way), marked as unauthenticated. ``waiting`` (RFC 9483 §4.4) ends
  :meth:`CmpClient.start` with a :class:`Waiting`; :meth:`CmpClient.resume` sends
  one ``pollReq`` (``pollRep`` or the final answer back); the store keeps waiting
  transactions durably and answers the device EST 202 meanwhile
  (:mod:`simtrust.bootstrap._ca_waiting`). :meth:`CmpClient.enrol` and
  :meth:`CmpClient.update` poll in the calling thread for at most
  :attr:`CmpClient.max_wait` seconds.
- Untrusted answers are size-limited before decoding; the MAC or signature is
  computed over the received header and body bytes as they are (RFC 4210 §5.1.3
  ProtectedPart); both in :mod:`simtrust.bootstrap._cmp_wire`.
- Each message goes on its own HTTP connection (``Connection: close``, RFC 6712
  §3.4): OpenSSL's server cancels a transaction whose kept-alive connection
  idles (docs/decisions/bootstrap-cmp-delegation.md).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pyasn1.codec.der import decoder, encoder
from pyasn1_modules import rfc2459, rfc4210, rfc8018

from simtrust.bootstrap._cmp_bodies import kur_body, rr_body
from simtrust.bootstrap._cmp_wire import (
    ECDSA_SHA256_OID,
    ED25519_OID,
    FAILURE_BITS,
    HMAC_SHA256_OID,
    IMPLICIT_CONFIRM_OID,
    MEDIA_TYPE,
    PBKDF2_OID,
    PBM_OID,
    PBMAC1_OID,
    SHA256_OID,
    CmpMessage,
    algorithm_id,
    algorithm_params,
    certificate_of,
    conf_hash,
    decode_message,
    der_length,
    der_sequence,
    free_text,
    hmac_of,
    pbm_key,
    refusal,
    status_of,
    verify_mac,
    verify_signature,
)
from simtrust.errors import InvalidInput, InvalidSignature, PermissionDenied, StoreError

__all__ = ["CmpClient", "CmpProtection", "Waiting"]
_MIN_ITERATIONS = 100

#: Largest CMP answer read (a certificate, its chain and the CA certificates).
@dataclass(frozen=True, slots=True)
class CmpProtection:
    """How our requests are protected: ``pbm`` or ``pbmac1`` with ``secret`` and its
    ``reference`` (senderKID), or ``signature`` with ``cert`` and ``key``."""

    kind: Literal["pbm", "pbmac1", "signature"]
    secret: bytes = field(default=b"", repr=False)
    reference: bytes = b""
    cert: x509.Certificate | None = field(default=None, repr=False)
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = field(
        default=None, repr=False)
    iterations: int = 10_000

    def __post_init__(self) -> None:
        if self.kind in ("pbm", "pbmac1"):
            if not self.secret:
                raise InvalidInput("CMP MAC protection needs a shared secret", field="cmp_secret")
            if len(self.reference) > 128:
                raise InvalidInput("CMP secret reference is at most 128 bytes",
                                   field="cmp_reference")
        elif self.kind == "signature":
            if self.cert is None or self.key is None:
                raise InvalidInput("CMP signature protection needs a client certificate and key",
                                   field="cmp_client_cert_pem")
            if not isinstance(self.key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise InvalidInput("CMP client keys are EC (P-256/P-384) or Ed25519",
                                   field="cmp_client_key_pem")
            if self.cert.public_key() != self.key.public_key():
                raise InvalidInput("CMP client key does not match its certificate",
                                   field="cmp_client_key_pem")
        else:
            raise InvalidInput("CMP protection is pbm, pbmac1 or signature", field="cmp_mac")
        if not _MIN_ITERATIONS <= self.iterations <= 100_000:
            raise InvalidInput("iterations are 100-100000", field="iterations")

@dataclass(frozen=True, slots=True)
class Waiting:
    """A transaction the CMP server answered ``waiting`` (RFC 9483 §4.4): what the next
    pollReq needs, and the seconds the server asked us to wait (checkAfter)."""

    tid: bytes
    server_nonce: bytes
    cert_req_id: int
    check_after: int
    rep: str


# -- the client ----------------------------------------------------------------------


class CmpClient:
    """One delegated CA's CMP endpoint; :meth:`enrol` runs p10cr → cp → certConf → pkiConf."""

    __slots__ = ("_clock", "_protection", "_recipient", "_timeout", "_tls", "_transport",
                 "_trust",
                 "max_wait", "url")

    def __init__(self, url: str, protection: CmpProtection, *, trust: x509.Certificate,
                 recipient: x509.Name | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 15.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.url = url
        self._protection = protection
        self._trust = trust
        self._recipient = recipient if recipient is not None else trust.subject
        self._transport = transport
        self._timeout = timeout
        self._tls: ssl.SSLContext | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        #: Longest a delayed enrolment is polled for, seconds (the device's EST request
        #: waits meanwhile).
        self.max_wait = 30

    def __repr__(self) -> str:
        return f"CmpClient({self.url!r}, {self._protection.kind})"

    @property
    def _verify(self) -> ssl.SSLContext | bool:
        """TLS trust for an ``https`` endpoint: the system's CAs and the registered
        enterprise CA (which commonly issues its CMP server's certificate), with the
        host name checked (RFC 6712 §3.7 leaves HTTPS optional; RFC 9110 §4.3.4)."""
        if not self.url.startswith("https://"):
            return True
        if self._tls is None:
            context = ssl.create_default_context()
            context.load_verify_locations(
                cadata=self._trust.public_bytes(serialization.Encoding.PEM).decode())
            self._tls = context
        return self._tls

    # -- building ------------------------------------------------------------------

    @staticmethod
    def _general_name(name: x509.Name) -> Any:
        der = name.public_bytes()
        value, _ = decoder.decode(b"\xa4" + der_length(len(der)) + der,
                                  asn1Spec=rfc2459.GeneralName())
        return value

    def _header(self, tid: bytes, nonce: bytes, recip_nonce: bytes | None) -> Any:
        p = self._protection
        header = rfc4210.PKIHeader()
        header["pvno"] = 2
        sender = p.cert.subject if p.kind == "signature" and p.cert else x509.Name([])
        header["sender"] = self._general_name(sender)
        header["recipient"] = self._general_name(self._recipient)
        header["messageTime"] = header["messageTime"].clone(
            self._clock().astimezone(UTC).strftime("%Y%m%d%H%M%SZ"))
        if p.kind == "pbm":
            params = rfc4210.PBMParameter()
            params["salt"] = os.urandom(16)
            params["owf"] = algorithm_id(SHA256_OID)
            params["iterationCount"] = p.iterations
            params["mac"] = algorithm_id(HMAC_SHA256_OID)
            alg = algorithm_id(PBM_OID, params)
        elif p.kind == "pbmac1":
            kdf = rfc8018.PBKDF2_params()
            kdf["salt"]["specified"] = os.urandom(16)
            kdf["iterationCount"] = p.iterations
            kdf["keyLength"] = 32
            kdf["prf"] = algorithm_id(HMAC_SHA256_OID)
            params = rfc8018.PBMAC1_params()
            params["keyDerivationFunc"] = algorithm_id(PBKDF2_OID, kdf)
            params["messageAuthScheme"] = algorithm_id(HMAC_SHA256_OID)
            alg = algorithm_id(PBMAC1_OID, params)
        else:
            alg = algorithm_id(ED25519_OID if isinstance(p.key, ed25519.Ed25519PrivateKey)
                       else ECDSA_SHA256_OID)
        header["protectionAlg"]["algorithm"] = alg["algorithm"]
        if alg["parameters"].isValue:
            header["protectionAlg"]["parameters"] = alg["parameters"]
        kid = p.reference if p.kind != "signature" else self._ski()
        if kid:
            header["senderKID"] = header["senderKID"].clone(kid)
        header["transactionID"] = header["transactionID"].clone(tid)
        header["senderNonce"] = header["senderNonce"].clone(nonce)
        if recip_nonce is not None:
            header["recipNonce"] = header["recipNonce"].clone(recip_nonce)
        return header

    def _ski(self) -> bytes:
        cert = self._protection.cert
        assert cert is not None
        try:
            return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest

    def _protect(self, header: Any, body_der: bytes) -> bytes:
        """The DER PKIMessage of ``header`` and the encoded ``body``, protected."""
        p = self._protection
        header_der = encoder.encode(header)
        protected = der_sequence(header_der + body_der)
        if p.kind == "signature":
            assert p.key is not None
            value = (p.key.sign(protected) if isinstance(p.key, ed25519.Ed25519PrivateKey)
                     else p.key.sign(protected, ec.ECDSA(hashes.SHA256())))
        else:
            alg = header["protectionAlg"]
            value = self._mac_with(alg, protected)
        protection = b"\x03" + der_length(len(value) + 1) + b"\x00" + value
        content = header_der + body_der + b"\xa0" + der_length(len(protection)) + protection
        if p.kind == "signature":
            assert p.cert is not None
            certs = der_sequence(p.cert.public_bytes(serialization.Encoding.DER))
            content += b"\xa1" + der_length(len(certs)) + certs
        return der_sequence(content)

    def _mac_with(self, alg: Any, data: bytes) -> bytes:
        secret = self._protection.secret
        if str(alg["algorithm"]) == PBM_OID:
            params = algorithm_params(alg, rfc4210.PBMParameter())
            key = pbm_key(secret, bytes(params["salt"]), hashes.SHA256(),
                           int(params["iterationCount"]))
            return hmac_of(key, hashes.SHA256(), data)
        params = algorithm_params(alg, rfc8018.PBMAC1_params())
        kdf = algorithm_params(params["keyDerivationFunc"], rfc8018.PBKDF2_params())
        key = hashlib.pbkdf2_hmac("sha256", secret, bytes(kdf["salt"]["specified"]),
                                  int(kdf["iterationCount"]), 32)
        return hmac_of(key, hashes.SHA256(), data)

    @staticmethod
    def _body(der: bytes) -> bytes:
        """Check that ``der`` decodes as a PKIBody (what we send is well formed)."""
        value, rest = decoder.decode(der, asn1Spec=rfc4210.PKIBody())
        if rest:
            raise StoreError("internal: PKIBody with trailing bytes")
        return bytes(encoder.encode(value))

    # -- checking --------------------------------------------------------------------

    def _authentic(self, msg: CmpMessage) -> str:
        """``ok`` if the answer's protection verifies (RFC 9483 §3.5), ``mac`` if it
        is a MAC our secret does not reproduce, else ``no``."""
        protection = msg.message["protection"]
        alg = msg.header["protectionAlg"]
        if not protection.isValue or not alg.isValue:
            return "no"
        value = protection.asOctets()
        oid = str(alg["algorithm"])
        if oid in (PBM_OID, PBMAC1_OID):
            if self._protection.kind == "signature":
                return "no"
            ok = verify_mac(alg, self._protection.secret, msg.protected_part, value)
            return "ok" if ok else "mac"
        extra = msg.message["extraCerts"]
        # The protection certificate travels first in extraCerts (RFC 9483 §3.3); a
        # server that leaves it out (OpenSSL's) must have signed with the CA itself.
        signer = certificate_of(extra[0]) if extra.isValue and len(extra) else self._trust
        if signer != self._trust:
            try:
                signer.verify_directly_issued_by(self._trust)
            except (ValueError, TypeError, CryptoInvalidSignature):
                return "no"
        return "ok" if verify_signature(alg, signer, msg.protected_part, value) else "no"

    def _check(self, msg: CmpMessage, tid: bytes, nonce: bytes, *expect: str) -> None:
        authentic = self._authentic(msg)
        if msg.body_type == "error":
            info = msg.body["pKIStatusInfo"]
            status, failures, text = status_of(info)
            detail = free_text(msg.body["errorDetails"])
            said = "; ".join(t for t in (text, detail) if t)
            if authentic == "mac":
                raise PermissionDenied(
                    "enterprise CMP server refused the request and its answer's MAC does not "
                    f"verify with our secret either: the shared secret differs ({said})",
                    reason="delegate-auth")
            raise refusal("answered with an error", status, failures, said,
                           authenticated=authentic == "ok")
        if authentic != "ok":
            raise InvalidSignature("enterprise CMP answer's protection does not verify "
                                   "(wrong shared secret, or not signed by the registered CA)",
                                   reason="delegate-protection")
        if int(msg.header["pvno"]) not in (2, 3):
            raise StoreError("enterprise CMP answer has an unsupported pvno",
                             reason="delegate-bad-answer")
        if msg.octets("transactionID") != tid:
            raise StoreError("enterprise CMP answer is for another transaction",
                             reason="delegate-bad-answer")
        if msg.octets("recipNonce") != nonce:
            raise StoreError("enterprise CMP answer does not echo our nonce",
                             reason="delegate-bad-answer")
        if msg.body_type not in expect:
            raise StoreError(f"enterprise CMP server answered {msg.body_type}, not "
                             f"{' or '.join(expect)}",
                             reason="delegate-bad-answer")

    # -- transfer ----------------------------------------------------------------------

    @staticmethod
    def _post(client: httpx.Client, url: str, message: bytes) -> CmpMessage:
        """One request and its answer; a transaction's messages share one connection
        where the server keeps it open (RFC 6712 §3.4; OpenSSL's server ends a
        transaction whose connection closes)."""
        try:
            response = client.post(url, content=message,
                                   headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE,
                                            "Connection": "close"})
        except httpx.HTTPError as exc:
            said = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in said:
                why = said.split("certificate verify failed:", 1)[-1].split("(_ssl", maxsplit=1)[0]
                raise StoreError("enterprise CMP server's TLS certificate is not trusted "
                                 f"({why.strip()[:120]}); it must chain to the registered "
                                 "CA or a system CA and name the host",
                                 reason="delegate-tls") from None
            raise StoreError(f"enterprise CMP server unreachable ({type(exc).__name__})",
                             reason="delegate-unreachable") from None
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != MEDIA_TYPE:
            raise StoreError(f"enterprise CMP server answered HTTP {response.status_code} "
                             f"without a CMP message", reason="delegate-refused")
        return decode_message(response.content)

    # -- the transaction ---------------------------------------------------------------

    def start(self, csr: x509.CertificateSigningRequest,
              renewing: x509.Certificate | None = None) -> x509.Certificate | Waiting:
        """Send the request without waiting: p10cr with ``csr`` (RFC 9483 §4.1.4), or
        kur renewing ``renewing`` (§4.1.3), falling back to p10cr if the CA refuses
        the RA-verified proof of possession (badPOP). Returns the confirmed
        certificate, or what :meth:`resume` needs when the CA answers ``waiting``."""
        if renewing is not None:
            try:
                return self._begin(csr, self._kur(csr, renewing), "kup")
            except PermissionDenied as exc:
                if "badPOP" not in exc.context.get("failures", ()):
                    raise
        return self._begin(csr, self._p10cr(csr), "cp")

    def enrol(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """p10cr with ``csr``; the certificate for its key, issued by the trusted CA,
        confirmed with certConf (RFC 9483 §4.1.4, §4.1.1), polled for at most
        :attr:`max_wait` seconds."""
        return self._wait(csr, self._begin(csr, self._p10cr(csr), "cp"))

    def update(self, csr: x509.CertificateSigningRequest,
               old: x509.Certificate) -> x509.Certificate:
        """kur renewing ``old`` for the key of ``csr`` (RFC 9483 §4.1.3), answered by kup,
        polled for at most :attr:`max_wait` seconds (no p10cr fallback)."""
        return self._wait(csr, self._begin(csr, self._kur(csr, old), "kup"))

    def _p10cr(self, csr: x509.CertificateSigningRequest) -> bytes:
        csr_der = csr.public_bytes(serialization.Encoding.DER)
        return self._body(b"\xa4" + der_length(len(csr_der)) + csr_der)

    def _kur(self, csr: x509.CertificateSigningRequest, old: x509.Certificate) -> bytes:
        """The device proved possession of the key by signing ``csr``; that signature is
        checked here, so the request carries raVerified (RFC 9483 §5.2.3.2)."""
        if not csr.is_signature_valid:
            raise InvalidSignature("re-enrolment CSR signature does not verify",
                                   reason="csr-signature")
        return self._body(kur_body(csr, old))

    def revoke(self, issuer: x509.Name, serial: int, reason: x509.ReasonFlags) -> str:
        """rr for the certificate ``serial`` of ``issuer`` (RFC 9483 §4.2, §5.3.2), answered
        by rp; returns ``revoked``, or ``already`` when the CA had revoked it before.
        A refusal raises PermissionDenied, a transport or answer problem StoreError."""
        tid, nonce = os.urandom(16), os.urandom(16)
        body = self._body(rr_body(issuer, serial, reason))
        with httpx.Client(transport=self._transport, timeout=self._timeout,
                          verify=self._verify) as client:
            answer = self._post(client, self.url, self._protect(self._header(tid, nonce, None),
                                                                body))
        self._check(answer, tid, nonce, "rp")
        statuses = answer.body["status"]
        if len(statuses) != 1:
            raise StoreError("enterprise CMP revocation answer holds no single status",
                             reason="delegate-bad-answer")
        status, failures, text = status_of(statuses[0])
        if status in (0, 1):
            return "revoked"
        if "certRevoked" in failures:
            return "already"
        raise refusal("refused the revocation", status, failures, text)

    def _client(self) -> httpx.Client:
        return httpx.Client(transport=self._transport, timeout=self._timeout,
                            verify=self._verify)

    def _begin(self, csr: x509.CertificateSigningRequest, body: bytes,
               rep: str) -> x509.Certificate | Waiting:
        tid, nonce = os.urandom(16), os.urandom(16)
        with self._client() as client:
            answer = self._post(client, self.url,
                                self._protect(self._header(tid, nonce, None), body))
            self._check(answer, tid, nonce, rep)
            return self._settle(client, csr, tid, answer, rep)

    def resume(self, csr: x509.CertificateSigningRequest,
               waiting: Waiting) -> x509.Certificate | Waiting:
        """One pollReq of a waiting transaction (RFC 9483 §4.4, RFC 4210 §5.3.22): the
        certificate (confirmed) once the CA has it, else the next :class:`Waiting`."""
        content = rfc4210.PollReqContent()
        item = content.componentType.clone()
        item["certReqId"] = waiting.cert_req_id
        content.append(item)
        content_der = encoder.encode(content)
        body = self._body(b"\xb9" + der_length(len(content_der)) + content_der)
        nonce = os.urandom(16)
        with self._client() as client:
            answer = self._post(client, self.url, self._protect(
                self._header(waiting.tid, nonce, waiting.server_nonce), body))
            self._check(answer, waiting.tid, nonce, waiting.rep, "pollRep")
            return self._settle(client, csr, waiting.tid, answer, waiting.rep)

    def _wait(self, csr: x509.CertificateSigningRequest,
              result: x509.Certificate | Waiting) -> x509.Certificate:
        """Poll in this thread for at most :attr:`max_wait` seconds in all."""
        waited = 0
        while isinstance(result, Waiting):
            after = result.check_after
            if after > self.max_wait - waited:
                raise StoreError(f"enterprise CMP server still waiting after {waited} s (asks "
                                 f"to poll again in {after} s)", reason="delegate-waiting")
            time.sleep(after)
            waited += after
            result = self.resume(csr, result)
        return result

    def _settle(self, client: httpx.Client, csr: x509.CertificateSigningRequest, tid: bytes,
                answer: CmpMessage, rep: str) -> x509.Certificate | Waiting:
        """The certificate of a final answer, or the :class:`Waiting` of a ``waiting``
        one (checkAfter of a pollRep; 1 s after a waiting cp/kup)."""
        response = self._single(answer)
        if answer.body_type == rep and int(response["status"]["status"]) != 3:
            return self._final(client, csr, tid, answer, response)
        after = 1 if answer.body_type == rep else int(response["checkAfter"])
        server_nonce = answer.octets("senderNonce")
        if after < 0 or server_nonce is None:
            raise StoreError("enterprise CMP waiting answer without a usable checkAfter or "
                             "senderNonce", reason="delegate-bad-answer")
        return Waiting(tid, server_nonce, int(response["certReqId"]), after, rep)

    def _final(self, client: httpx.Client, csr: x509.CertificateSigningRequest, tid: bytes,
               answer: CmpMessage, response: Any) -> x509.Certificate:
        status, failures, text = status_of(response["status"])
        if status not in (0, 1):
            raise refusal("rejected the request", status, failures, text)
        pair = response["certifiedKeyPair"]
        if not pair.isValue or pair["certOrEncCert"].getName() != "certificate":
            raise StoreError("enterprise CMP answer holds no plain certificate",
                             reason="delegate-bad-answer")
        cert = certificate_of(pair["certOrEncCert"]["certificate"])
        problem: Exception | None = None
        if cert.public_key() != csr.public_key():
            problem = StoreError("enterprise CMP answer's certificate is not for the CSR key",
                                 reason="delegate-bad-answer")
        else:
            try:
                cert.verify_directly_issued_by(self._trust)
            except (ValueError, TypeError, CryptoInvalidSignature):
                problem = InvalidSignature("delegated certificate is not issued by the "
                                           "registered CA", reason="delegate-protection")
        if not self._implicit(answer):
            self._confirm(client, tid, answer, cert, int(response["certReqId"]),
                          accepted=problem is None)
        if problem is not None:
            raise problem
        return cert

    @staticmethod
    def _single(answer: CmpMessage) -> Any:
        responses = answer.body
        if answer.body_type in ("cp", "kup"):
            responses = responses["response"]
        if len(responses) != 1:
            raise StoreError("enterprise CMP answer holds no single response",
                             reason="delegate-bad-answer")
        return responses[0]

    @staticmethod
    def _implicit(answer: CmpMessage) -> bool:
        info = answer.header["generalInfo"]
        return info.isValue and any(str(item["infoType"]) == IMPLICIT_CONFIRM_OID for item in info)

    def _confirm(self, client: httpx.Client, tid: bytes, answer: CmpMessage, cert: x509.Certificate,
                 cert_req_id: int, *, accepted: bool) -> None:
        """certConf for ``cert`` and the pkiConf that answers it (RFC 4210 §5.3.18)."""
        digest = hashes.Hash(conf_hash(cert))
        digest.update(cert.public_bytes(serialization.Encoding.DER))
        status = rfc4210.CertStatus()
        status["certHash"] = digest.finalize()
        status["certReqId"] = cert_req_id
        status["statusInfo"]["status"] = 0 if accepted else 2
        if not accepted:
            status["statusInfo"]["failInfo"] = rfc4210.PKIFailureInfo(
                "'" + "0" * FAILURE_BITS.index("badCertTemplate") + "1'B")
        content = rfc4210.CertConfirmContent()
        content.append(status)
        content_der = encoder.encode(content)
        body = self._body(b"\xb8" + der_length(len(content_der)) + content_der)
        nonce = os.urandom(16)
        server_nonce = answer.octets("senderNonce")
        if server_nonce is None:
            raise StoreError("enterprise CMP answer has no senderNonce",
                             reason="delegate-bad-answer")
        message = self._protect(self._header(tid, nonce, server_nonce), body)
        conf = self._post(client, self.url, message)
        self._check(conf, tid, nonce, "pkiconf")
