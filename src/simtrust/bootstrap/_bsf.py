"""The BSF: GBA bootstrapping over Ub with HTTP Digest AKA (TS 33.220 §4.5.2, TS 24.109 §5.2).

1. The device sends ``Authorization: Digest username="<IMPI>"`` (no response yet).
2. The BSF takes a UMTS AV from the AuC (Zh, TS 29.109) and answers 401 with
   ``nonce = base64(RAND ‖ AUTN)``, ``algorithm=AKAv1-MD5``, ``qop="auth-int"`` (RFC 3310 §3.1).
3. The device answers with RES as the Digest password (RFC 3310 §3.3), or with
   ``auts=`` and an empty password after a synchronisation failure (§3.4): the BSF
   re-synchronises the AuC and challenges again.
4. On success Ks = CK ‖ IK is stored sealed under the B-TID (base64(RAND)@BSF domain)
   with its key lifetime and the BSF answers 200 with the BootstrappingInfo of TS 24.109
   Annex C; a new bootstrapping of the IMPI replaces its older contexts.

Challenges are stateless: the AV's XRES, CK and IK, the IMPI's binding and an expiry
are sealed (AEAD under the master keyring, bound to the IMPI and RAND ‖ AUTN) into the
nonce's server-specific data (RFC 3310 §3.1 ``nonce = base64(RAND ‖ AUTN ‖ server data)``),
so the 401 writes nothing and any BSF process holding the keyring answers the response.
Single use holds: the answer to a response records the nonce's hash as used in the
transaction that already writes its outcome (B-TID context or failure audit); a second
response with the same nonce finds it there and is refused. Used entries are kept until
the challenge's expiry (docs/decisions/bootstrap-commit-waits.md).
Over Zn the BSF derives Ks_(ext)_NAF for a B-TID and a NAF_Id (:meth:`Bsf.naf_key`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from simtrust.audit import AuditLog
from simtrust.bootstrap._digest import (
    check_response,
    digest_response,
    format_challenge,
    parse_digest,
)
from simtrust.bootstrap._kdf import NafId, b_tid, ks_from_ck_ik, ks_naf, rand_of_b_tid
from simtrust.crypto import Keyring
from simtrust.errors import (
    AuthenticationFailure,
    AuthenticationRequired,
    DecodeError,
    DecryptionFailed,
    NotFound,
    UnknownKey,
)
from simtrust.store import Database
from simtrust.subscriber import Imsi
from simtrust.subscriber.auc import UmtsVector

__all__ = [
    "BootstrapInfo",
    "Bsf",
    "NafKey",
    "VectorSource",
    "bootstrapping_info_xml",
    "imsi_of_impi",
    "parse_bootstrapping_info",
]

_IMPI = re.compile(r"(\d{6,15})@ims\.mnc(\d{3})\.mcc(\d{3})\.3gppnetwork\.org")
_INFO = re.compile(
    r'<\?xml version="1\.0" encoding="UTF-8"\?>\s*<BootstrappingInfo xmlns="uri:3gpp-gba">\s*'
    r"<btid>([^<]{1,300})</btid>\s*<lifetime>([^<]{1,40})</lifetime>\s*</BootstrappingInfo>\s*"
)


class VectorSource(Protocol):
    """What the BSF needs from the HSS/AuC over Zh (``simtrust.subscriber.AuthService``)."""

    def umts_vector(self, imsi: Imsi, *, actor: str = ...) -> UmtsVector: ...

    def resynchronise(self, imsi: Imsi, rand: bytes, auts: bytes, *, actor: str = ...) -> bytes:
        ...


@dataclass(frozen=True, slots=True)
class BootstrapInfo:
    """What a successful Ub run gives the device: the B-TID and the key lifetime."""

    b_tid: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NafKey:
    """Ks_NAF (or K_AF) for one subscriber and NAF, with who it belongs to."""

    identity: str
    key: bytes = field(repr=False)
    imsi: str
    expires_at: datetime
    kind: str = "gba"


def imsi_of_impi(impi: str) -> Imsi:
    """The IMSI of an IMPI derived from it (TS 23.003 §13.3); DecodeError otherwise."""
    m = _IMPI.fullmatch(impi)
    if m is None:
        raise DecodeError("IMPI must be <IMSI>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org",
                          field="username")
    digits, mnc, mcc = m.groups()
    if digits[:3] != mcc:
        raise DecodeError("IMPI realm does not match the IMSI's MCC", field="username")
    mnc_length = 3 if digits[3:6] == mnc else 2
    if mnc_length == 2 and "0" + digits[3:5] != mnc:
        raise DecodeError("IMPI realm does not match the IMSI's MNC", field="username")
    return Imsi(digits, mnc_length)


def bootstrapping_info_xml(info: BootstrapInfo) -> bytes:
    """The 200 OK body of TS 24.109 Annex C (``application/vnd.3gpp.bsf+xml``)."""
    lifetime = info.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<BootstrappingInfo xmlns="uri:3gpp-gba">\n'
        f"  <btid>{info.b_tid}</btid>\n  <lifetime>{lifetime}</lifetime>\n"
        "</BootstrappingInfo>\n"
    ).encode()


def parse_bootstrapping_info(body: bytes) -> BootstrapInfo:
    """Parse what :func:`bootstrapping_info_xml` writes (the device side)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("BootstrappingInfo is not UTF-8") from None
    m = _INFO.fullmatch(text)
    if m is None:
        raise DecodeError("BootstrappingInfo does not parse")
    try:
        expires = datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise DecodeError("BootstrappingInfo lifetime is not a UTC time") from None
    rand_of_b_tid(m.group(1))
    return BootstrapInfo(m.group(1), expires)


class Bsf:
    """Bootstrapping server function: Ub (Digest AKA) and Zn (Ks_NAF for a NAF)."""

    __slots__ = ("_audit", "_clock", "_db", "_keyring", "_lifetime", "_rand", "_ttl",
                 "_vectors", "domain")

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        vectors: VectorSource,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        domain: str,
        lifetime: timedelta = timedelta(hours=24),
        challenge_ttl: timedelta = timedelta(seconds=120),
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._vectors = vectors
        self._audit = audit
        self._clock = clock
        self.domain = domain
        self._lifetime = lifetime
        self._ttl = challenge_ttl
        self._rand = rand

    def __repr__(self) -> str:
        return f"Bsf({self.domain!r})"

    # -- Ub --------------------------------------------------------------------

    def challenge(self, impi: str) -> str:
        """Step 2: a fresh AV for the IMPI, sealed into the nonce; returns the
        WWW-Authenticate value. Nothing is stored."""
        imsi = imsi_of_impi(impi)
        av = self._vectors.umts_vector(imsi, actor="bsf")
        expires = (self._clock() + self._ttl).isoformat().encode("ascii")
        secret = (bytes((len(expires),)) + expires + bytes((len(av.xres),)) + av.xres
                  + av.ck + av.ik)
        sealed = self._keyring.seal(secret, self._nonce_aad(impi, av.rand + av.autn))
        nonce = base64.b64encode(av.rand + av.autn + sealed).decode("ascii")
        return format_challenge(self.domain, nonce, algorithm="AKAv1-MD5", qop="auth-int")

    @staticmethod
    def _nonce_aad(impi: str, rand_autn: bytes) -> bytes:
        return b"simtrust/bootstrap/gba/nonce/" + impi.encode() + b"/" + rand_autn

    @staticmethod
    def _aad(key: str) -> bytes:
        return f"simtrust/bootstrap/gba/{key}".encode()

    def respond(self, authorization: str, method: str, body: bytes) -> tuple[int, str, bytes]:
        """One Ub request: ``(status, header, body)``.

        401 with a challenge (header is WWW-Authenticate), or 200 with the
        BootstrappingInfo (header is Authentication-Info with ``rspauth``).
        Errors: DecodeError (400), AuthenticationFailure (403), NotFound (404).
        """
        params = parse_digest(authorization)
        username = params.get("username")
        if not username:
            raise DecodeError("Digest credentials need a username (the IMPI)")
        if not params.get("response") and not params.get("nonce"):
            return 401, self.challenge(username), b""
        for name in ("nonce", "uri", "response", "qop", "nc", "cnonce", "realm"):
            if name not in params:
                raise DecodeError(f"Digest credentials lack {name!r}", field=name)
        if params.get("algorithm", "AKAv1-MD5") != "AKAv1-MD5":
            raise DecodeError("Ub uses algorithm AKAv1-MD5")
        if params["realm"] != self.domain:
            raise AuthenticationFailure("Digest realm is not this BSF's", reason="realm")
        nonce = params["nonce"]
        impi, imsi, xres, ck, ik, expires = self._read_challenge(nonce, username)
        rand = base64.b64decode(nonce)[:16]
        auts_text = params.get("auts")
        password = b"" if auts_text is not None else xres

        def expected(body_bytes: bytes) -> str:
            return digest_response(
                algorithm="AKAv1-MD5", username=username, realm=params["realm"],
                password=password, method=method, uri=params["uri"], nonce=nonce,
                nc=params["nc"], cnonce=params["cnonce"], qop=params["qop"], body=body_bytes,
            )

        if not check_response(expected(body), params["response"]):
            with self._db.transaction():
                self._consume(nonce, expires)
                self._audit.append(
                    actor="bsf", action="gba.bootstrap", subject=f"impi:{impi}",
                    outcome="failure",
                    reason="res-mismatch" if auts_text is None else "auts-digest",
                )
            raise AuthenticationFailure("Digest AKA response does not verify", reason="res")
        if auts_text is not None:
            with self._db.transaction():
                self._consume(nonce, expires)
            try:
                auts = base64.b64decode(auts_text, validate=True)
            except (binascii.Error, ValueError):
                raise DecodeError("auts is not base64", field="auts") from None
            if len(auts) != 14:
                raise DecodeError("AUTS is 14 octets", field="auts")
            self._vectors.resynchronise(imsi, rand, auts, actor="bsf")
            return 401, self.challenge(impi), b""
        info = self._establish(nonce, expires, impi, imsi, rand, ks_from_ck_ik(ck, ik))
        xml = bootstrapping_info_xml(info)
        # RFC 3310 §3.5 / RFC 7616 §3.5: rspauth over ":uri[:H(body)]" lets the device check us.
        rspauth = digest_response(
            algorithm="AKAv1-MD5", username=username, realm=params["realm"], password=xres,
            method="", uri=params["uri"], nonce=nonce, nc=params["nc"],
            cnonce=params["cnonce"], qop=params["qop"], body=xml,
        )
        header = (f'qop={params["qop"]}, rspauth="{rspauth}", cnonce="{params["cnonce"]}", '
                  f'nc={params["nc"]}')
        return 200, header, xml

    def _read_challenge(self, nonce: str,
                        impi: str) -> tuple[str, Imsi, bytes, bytes, bytes, datetime]:
        """The challenge sealed in a nonce (no store access). A nonce not sealed by
        this BSF for this IMPI, or past its expiry, is refused here without a write;
        otherwise it is used up by whatever answer the request gets (:meth:`_consume`,
        in the transaction of the answer's own writes)."""
        imsi = imsi_of_impi(impi)
        try:
            raw = base64.b64decode(nonce, validate=True)
        except (binascii.Error, ValueError):
            raise AuthenticationFailure("unknown nonce", reason="stale-nonce") from None
        try:
            secret = self._keyring.open(raw[32:], self._nonce_aad(impi, raw[:32]))
        except (DecryptionFailed, UnknownKey, DecodeError, ValueError):  # not ours
            raise AuthenticationFailure("unknown nonce, or issued to another IMPI",
                                        reason="stale-nonce") from None
        n = secret[0]
        expires = datetime.fromisoformat(secret[1:1 + n].decode("ascii"))
        if expires < self._clock():
            raise AuthenticationFailure("challenge expired", reason="stale-nonce")
        m = secret[1 + n]
        xres, rest = secret[2 + n:2 + n + m], secret[2 + n + m:]
        return impi, imsi, xres, rest[:16], rest[16:32], expires

    def _consume(self, nonce: str, expires: datetime) -> None:
        """Record the nonce as used inside the caller's transaction; AuthenticationFailure
        (rolling it back) when another request with the same nonce was answered first."""
        digest = hashlib.sha256(nonce.encode("ascii")).hexdigest()
        taken = self._db.execute(
            "INSERT INTO boot_gba_used_nonces (nonce_hash, expires_at) VALUES (?, ?)"
            " ON CONFLICT (nonce_hash) DO NOTHING", (digest, expires.isoformat()))
        if taken != 1:
            raise AuthenticationFailure("unknown or already used nonce", reason="stale-nonce")

    def _establish(self, nonce: str, expires: datetime, impi: str, imsi: Imsi, rand: bytes,
                   ks: bytes) -> BootstrapInfo:
        now = self._clock()
        info = BootstrapInfo(b_tid(rand, self.domain), now + self._lifetime)
        # Sealed before the transaction: no cipher work while the store is locked.
        sealed = self._keyring.seal(ks, self._aad(info.b_tid))
        with self._db.transaction():
            # The challenge is used up in the same commit that stores its B-TID.
            self._consume(nonce, expires)
            replaced = self._db.execute("DELETE FROM boot_gba_contexts WHERE impi = ?", (impi,))
            self._db.execute(
                "INSERT INTO boot_gba_contexts (b_tid, impi, imsi, ks_sealed, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (info.b_tid, impi, imsi.value, sealed, now.isoformat(),
                 info.expires_at.isoformat()),
            )
            self._db.execute("DELETE FROM boot_gba_used_nonces WHERE expires_at < ?",
                             (now.isoformat(),))
            self._audit.append(
                actor="bsf", action="gba.bootstrap", subject=f"impi:{impi}", outcome="success",
                details={"b_tid": info.b_tid, "expires_at": info.expires_at.isoformat(),
                         "replaced": replaced},
            )
        return info

    # -- Zn --------------------------------------------------------------------

    def naf_key(self, b_tid_value: str, naf_id: NafId) -> NafKey:
        """Ks_(ext)_NAF for a B-TID (TS 33.220 §4.5.3); NotFound for an unknown or
        replaced B-TID, AuthenticationRequired when its key lifetime has ended."""
        rand = rand_of_b_tid(b_tid_value)
        row = self._db.query_one(
            "SELECT impi, imsi, ks_sealed, expires_at FROM boot_gba_contexts WHERE b_tid = ?",
            (b_tid_value,),
        )
        if row is None:
            raise NotFound("unknown B-TID (never issued, or replaced by a newer bootstrapping)",
                           reason="unknown-b-tid")
        expires = datetime.fromisoformat(str(row[3]))
        if expires <= self._clock():
            raise AuthenticationRequired("B-TID key lifetime has ended; bootstrap again",
                                         reason="expired-b-tid")
        ks = self._keyring.open(bytes(row[2]), self._aad(b_tid_value))
        return NafKey(b_tid_value, ks_naf(ks, rand, str(row[0]), naf_id), str(row[1]), expires)

    def forget(self, imsi: str) -> int:
        """Drop a subscriber's bootstrapping contexts (its SIM was suspended or terminated)."""
        return self._db.execute("DELETE FROM boot_gba_contexts WHERE imsi = ?", (imsi,))
