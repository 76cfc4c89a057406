"""The certificate server: a NAF speaking EST (RFC 7030) to devices bootstrapped from their SIM.

Authentication (TS 33.222 §5.3, decision docs/decisions/bootstrap-naf-auth.md):
HTTP Digest over server-authenticated TLS, user name the B-TID (GBA) or A-KID
(AKMA), password base64(Ks_NAF) or base64(K_AF) for this NAF_Id, realm
``3GPP-bootstrapping@<NAF FQDN>``, algorithm SHA-256, qop ``auth`` (RFC 7616).
Re-enrolment authenticates with the current certificate over TLS client auth
(RFC 7030 §3.3.2). Operations (RFC 7030 §4): ``/.well-known/est[/label]/``, the
label being the CA's EST label ``<tenant>.<label>`` or, on authenticated
operations, the device's own tenant's label for it;
``cacerts``, ``simpleenroll``, ``simplereenroll``, ``csrattrs``, ``serverkeygen``;
requests and answers are base64 DER with ``Content-Transfer-Encoding: base64``
and certificates travel as certs-only PKCS#7 (§4.1.3, §4.2.3). The CSR must carry
the SIM's key binding as challengePassword (see :func:`key_binding`), so a key
the SIM does not hold is refused. Errors are 4xx/5xx with a ``text/plain``
sentence (§4.2.3); nothing is issued on any error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from simtrust.audit import AuditLog
from simtrust.bootstrap._akma import Aanf
from simtrust.bootstrap._bsf import Bsf, NafKey
from simtrust.bootstrap._ca import (
    CaRecord,
    CertificateAuthorities,
    DeviceClaims,
    challenge_password,
    load_csr,
)
from simtrust.bootstrap._csr import csr_attrs
from simtrust.bootstrap._device import key_binding
from simtrust.bootstrap._digest import (
    check_response,
    digest_response,
    format_challenge,
    parse_digest,
)
from simtrust.bootstrap._kdf import NafId, rand_of_b_tid
from simtrust.crypto import Keyring
from simtrust.errors import (
    AuthenticationRequired,
    Conflict,
    DecodeError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SimtrustError,
)
from simtrust.store import Database
from simtrust.subscriber import Iccid, Imsi, Sim, SimState

__all__ = ["EST_OPERATIONS", "CertificateServer", "EstRequest", "EstResponse", "SimDirectory",
           "shared_nonce_key"]

EST_OPERATIONS = ("cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen")
_PREFIX = "/.well-known/est"
_NONCE_TTL = 300
#: Every this many remembered credentials, expired replay-cache entries are deleted.
_PRUNE_EVERY = 1_000
_MAX_BODY = 16_384


class SimDirectory(Protocol):
    """The SIM inventory as the certificate server reads it (``subscriber.Inventory``)."""

    def find_sim(self, imsi: Imsi) -> Sim | None: ...

    def get_sim(self, iccid: Iccid) -> Sim: ...

    def bindings(self, iccid: Iccid) -> list[dict[str, str]]: ...


@dataclass(frozen=True, slots=True)
class EstRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    peer_certificate: x509.Certificate | None = None


@dataclass(slots=True)
class EstResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _b64_body(data: bytes) -> bytes:
    return base64.encodebytes(data)


def _certs_only(certs: list[x509.Certificate]) -> bytes:
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


def _text(status: int, message: str, *extra: tuple[str, str]) -> EstResponse:
    return EstResponse(status, [("Content-Type", "text/plain; charset=utf-8"), *extra],
                       (message + "\n").encode())


def shared_nonce_key(db: Database, keyring: Keyring) -> bytes:
    """The key of the NAF's Digest nonces, one for every process on this store.

    Made once, sealed by the master key (``boot_secrets``); so a nonce one process
    handed out verifies in another, and the store-backed replay cache covers both.
    """
    aad = b"simtrust/bootstrap/secret/naf-nonce"
    for _attempt in range(2):
        row = db.query_one("SELECT secret_sealed FROM boot_secrets WHERE name = ?",
                           ("naf-nonce",))
        if row is not None:
            return keyring.open(bytes(row[0]), aad)
        try:
            with db.transaction():
                db.execute("INSERT INTO boot_secrets (name, secret_sealed) VALUES (?, ?)",
                           ("naf-nonce", keyring.seal(os.urandom(32), aad)))
        except Conflict:
            continue  # another process made it first: read theirs
    raise Conflict("NAF nonce key could not be read or made")


class CertificateServer:
    """NAF + EST server over the CA store, the BSF (Zn) and the AAnF."""

    __slots__ = ("_aanf", "_audit", "_bsf", "_cas", "_clock", "_db", "_lock", "_remembered",
                 "_secret", "_sims", "naf_id", "realm")

    def __init__(
        self,
        cas: CertificateAuthorities,
        bsf: Bsf,
        aanf: Aanf,
        sims: SimDirectory,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        naf_id: NafId,
        db: Database,
        secret: bytes | None = None,
    ) -> None:
        self._cas = cas
        self._bsf = bsf
        self._aanf = aanf
        self._sims = sims
        self._audit = audit
        self._clock = clock
        self.naf_id = naf_id
        self.realm = f"3GPP-bootstrapping@{naf_id.fqdn}"
        self._secret = secret or os.urandom(32)
        self._db = db
        self._remembered = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CertificateServer({self.naf_id})"

    # -- Digest (TS 33.222 §5.3) -----------------------------------------------

    def _nonce(self) -> str:
        head = struct.pack(">Q", int(self._clock().timestamp())) + os.urandom(8)
        return base64.b64encode(head + hmac.digest(self._secret, head, "sha256")[:16]).decode()

    def _nonce_fresh(self, nonce: str) -> bool:
        try:
            raw = base64.b64decode(nonce, validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) != 32 or not hmac.compare_digest(
                hmac.digest(self._secret, raw[:16], "sha256")[:16], raw[16:]):
            return False
        issued = int(struct.unpack(">Q", raw[:8])[0])
        return 0 <= self._clock().timestamp() - issued <= _NONCE_TTL

    def challenge(self, stale: bool = False) -> str:
        return format_challenge(self.realm, self._nonce(), algorithm="SHA-256", qop="auth",
                                stale=stale)

    def _unauthorized(self, message: str, stale: bool = False) -> EstResponse:
        return _text(401, message, ("WWW-Authenticate", self.challenge(stale)))

    def naf_key(self, username: str) -> NafKey:
        """Ks_NAF from the BSF (a B-TID) or K_AF from the AAnF (an A-KID)."""
        try:
            rand_of_b_tid(username)
        except InvalidInput:
            return self._aanf.application_key(username, self.naf_id)
        return self._bsf.naf_key(username, self.naf_id)

    def authenticate(self, req: EstRequest) -> NafKey:
        """Verify the Digest credentials; AuthenticationRequired (→ 401) otherwise."""
        header = req.headers.get("authorization")
        if header is None:
            raise AuthenticationRequired("authenticate with the B-TID or A-KID (HTTP Digest)")
        params = parse_digest(header)
        for name in ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce"):
            if name not in params:
                raise DecodeError(f"Digest credentials lack {name!r}", field=name)
        if params["realm"] != self.realm:
            raise AuthenticationRequired("Digest realm is not this NAF's", reason="realm")
        if params["uri"] != req.path:
            raise AuthenticationRequired("Digest uri does not match the request", reason="uri")
        if not self._nonce_fresh(params["nonce"]):
            raise AuthenticationRequired("nonce expired or not ours", reason="stale-nonce",
                                         stale=True)
        key = self.naf_key(params["username"])
        algorithm = params.get("algorithm", "MD5")
        expected = digest_response(
            algorithm=algorithm, username=params["username"], realm=self.realm,
            password=base64.b64encode(key.key), method=req.method, uri=params["uri"],
            nonce=params["nonce"], nc=params["nc"], cnonce=params["cnonce"], qop=params["qop"],
        )
        if not check_response(expected, params["response"]):
            self._audit.append(actor="naf", action="naf.authenticate",
                               subject=f"{key.kind}:{key.identity}", outcome="failure",
                               reason="digest")
            raise AuthenticationRequired(
                "Digest response does not verify (wrong key or NAF id)", reason="digest")
        self._remember(params["nonce"], params["nc"], params["cnonce"])
        return key

    def _remember(self, nonce: str, nc: str, cnonce: str) -> None:
        """Refuse a (nonce, nc, cnonce) seen before by any process sharing the store.

        The replay cache is a table: a second use of the same credentials fails its
        primary key whichever process answered the first. Entries older than a
        nonce's lifetime can never match again (the nonce is refused as stale first)
        and are pruned now and then.
        """
        now = int(self._clock().timestamp())
        try:
            with self._db.transaction():
                self._db.execute(
                    "INSERT INTO boot_digest_seen (nonce, nc, cnonce, seen_at)"
                    " VALUES (?, ?, ?, ?)", (nonce, nc, cnonce, now))
        except Conflict:
            raise AuthenticationRequired("replayed Digest credentials", reason="replay") from None
        with self._lock:
            self._remembered += 1
            prune = self._remembered % _PRUNE_EVERY == 0
        if prune:
            with self._db.transaction():
                self._db.execute("DELETE FROM boot_digest_seen WHERE seen_at < ?",
                                 (now - _NONCE_TTL - 60,))

    # -- dispatch --------------------------------------------------------------

    def handle(self, req: EstRequest) -> EstResponse:
        """Answer one EST request; every simtrust error becomes its HTTP status."""
        if not req.path.startswith(_PREFIX + "/"):
            return _text(404, "not an EST path")
        parts = req.path[len(_PREFIX) + 1:].split("/")
        if len(parts) == 1:
            label, op = None, parts[0]
        elif len(parts) == 2:
            label, op = parts
        else:
            return _text(404, "not an EST path")
        if op not in EST_OPERATIONS:
            return _text(404, f"unknown EST operation {op!r}")
        wanted = "GET" if op in ("cacerts", "csrattrs") else "POST"
        if req.method != wanted:
            return _text(405, f"{op} takes {wanted}", ("Allow", wanted))
        if len(req.body) > _MAX_BODY:
            return _text(413, "request body too large")
        try:
            return self._dispatch(op, label, req)
        except AuthenticationRequired as exc:
            return self._unauthorized(exc.detail, bool(exc.context.get("stale")))
        except NotFound as exc:
            if exc.context.get("reason") in ("unknown-b-tid", "unknown-a-kid"):
                return self._unauthorized(exc.detail)
            return _text(404, exc.detail)
        except SimtrustError as exc:
            extra: list[tuple[str, str]] = []
            if "retry_after" in exc.context:
                extra.append(("Retry-After", str(exc.context["retry_after"])))
            return _text(exc.status if exc.status < 500 else 503, exc.detail, *extra)

    def _ca(self, label: str | None, tenant_id: str | None) -> CaRecord:
        """The CA an EST path names: its EST label (``<tenant>.<label>``), or, once the
        device's tenant is known (an authenticated request), that tenant's own label."""
        if label is None:
            if tenant_id is None:
                raise NotFound("name the CA: /.well-known/est/<tenant>.<label>/cacerts")
            cas = self._cas.cas(tenant_id)
            if len(cas) != 1:
                raise NotFound("the tenant has several or no CAs; use /.well-known/est/<label>/",
                               reason="unknown-ca")
            return cas[0]
        if tenant_id is not None and "." not in label:
            return self._cas.find(tenant_id, label)
        ca = self._cas.get(label)
        if ca.tenant_id is None or (tenant_id is not None and ca.tenant_id != tenant_id):
            raise NotFound(f"unknown CA {label!r}", reason="unknown-ca")
        return ca

    def _dispatch(self, op: str, label: str | None, req: EstRequest) -> EstResponse:
        if op == "cacerts":
            ca = self._ca(label, None)
            return EstResponse(200, [("Content-Type", "application/pkcs7-mime"),
                                     ("Content-Transfer-Encoding", "base64")],
                               _b64_body(_certs_only([ca.certificate])))
        if op == "csrattrs":
            return EstResponse(200, [("Content-Type", "application/csrattrs"),
                                     ("Content-Transfer-Encoding", "base64")],
                               _b64_body(csr_attrs()))
        if op == "simplereenroll":
            return self._reenroll(label, req)
        key = self.authenticate(req)
        device = self._device(key.imsi)
        ca = self._ca(label, device.tenant_id)
        if op == "serverkeygen":
            cert, pkcs8 = self._cas.generate_key_and_issue(ca, device,
                                                           actor=f"naf:{key.identity}")
            return self._multipart(cert, pkcs8)
        csr = self._csr(req)
        binding = challenge_password(csr)
        spki = csr.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        if binding is None or not hmac.compare_digest(binding.encode(),
                                                      key_binding(key.key, spki).encode()):
            self._audit.append(actor=f"naf:{key.identity}", action="pki.issue",
                               subject=f"sim:{device.iccid}", outcome="failure",
                               reason="key-binding", tenant_id=device.tenant_id)
            raise PermissionDenied("CSR key is not bound to the SIM (challengePassword)",
                                   reason="key-binding")
        cert = self._cas.issue(ca, csr, device, actor=f"naf:{key.identity}")
        return self._certs(cert)

    def _csr(self, req: EstRequest) -> x509.CertificateSigningRequest:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/pkcs10":
            raise DecodeError("simpleenroll takes Content-Type application/pkcs10")
        try:
            der = base64.b64decode(b"".join(req.body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("CSR body is not base64 (RFC 7030 §4.2.1)") from None
        return load_csr(der)

    def _certs(self, cert: x509.Certificate) -> EstResponse:
        return EstResponse(200, [("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),
                                 ("Content-Transfer-Encoding", "base64")],
                           _b64_body(_certs_only([cert])))

    def _multipart(self, cert: x509.Certificate, pkcs8: bytes) -> EstResponse:
        boundary = "est-" + hashlib.sha256(pkcs8).hexdigest()[:24]
        body = (
            f"--{boundary}\r\nContent-Type: application/pkcs8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _b64_body(pkcs8) + (
            f"--{boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _b64_body(
            _certs_only([cert])) + f"--{boundary}--\r\n".encode()
        return EstResponse(200, [("Content-Type", f"multipart/mixed; boundary={boundary}")],
                           body)

    def _device(self, imsi_value: str) -> DeviceClaims:
        sim = self._sims.find_sim(Imsi(imsi_value))
        if sim is None:
            raise NotFound("SIM not in the inventory")
        if sim.state not in (SimState.ACTIVE, SimState.TEST):
            raise PermissionDenied(f"SIM is {sim.state}", reason=f"sim-{sim.state}")
        imei = None
        for binding in self._sims.bindings(sim.iccid):
            imei = binding.get("imei") or imei
        return DeviceClaims(sim.tenant_id, sim.iccid.value, sim.imsi.value, imei)

    def _reenroll(self, label: str | None, req: EstRequest) -> EstResponse:
        current = req.peer_certificate
        if current is None:
            return _text(401, "simplereenroll needs the current certificate (TLS client auth)")
        serial = format(current.serial_number, "x")
        try:
            record = self._cas.certificate(serial)
        except NotFound:
            return _text(403, "client certificate was not issued here")
        ca = self._ca(label, record.tenant_id)
        try:
            current.verify_directly_issued_by(ca.certificate)
        except (ValueError, TypeError, CryptoInvalidSignature):
            return _text(403, "client certificate is not from this CA")
        if record.status != "good":
            return _text(403, "client certificate is revoked")
        if current.not_valid_after_utc <= self._clock():
            return _text(403, "client certificate has expired")
        csr = self._csr(req)
        if csr.subject != current.subject:
            return _text(400, "re-enrolment CSR must keep the subject (RFC 7030 §4.2.2)")
        device = self._device(self._sims.get_sim(Iccid(record.iccid)).imsi.value)
        cert = self._cas.issue(ca, csr, device, actor=f"cert:{serial}", renewing=current)
        return self._certs(cert)
