"""The device side: a SIM applet that runs AKA and keeps Ks, K_AUSF, K_AKMA and key pairs inside.

:class:`SimApplet` is a :class:`simtrust.identity.SecureElement` (Ed25519 slots
addressed by label, GSMA IoT SAFE shape) that also holds the USIM and acts as a
GBA_ME / AKMA client: it answers AKA challenges (TS 33.102 §6.3.3), keeps Ks =
CK ‖ IK under the B-TID the BSF returns (TS 33.220 §4.5.2), derives K_AUSF, K_AKMA
and the A-KID after 5G AKA (TS 33.501 A.2, TS 33.535 Annex A), and uses
Ks_NAF / K_AF only inside: it computes the NAF's Digest response and binds the
public keys of its own P-256 and Ed25519 slots to the NAF key (the CSR's
challengePassword). No method returns Ks, Ks_NAF, K_AF or a private key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from simtrust.bootstrap._csr import build_csr
from simtrust.bootstrap._digest import digest_response
from simtrust.bootstrap._kdf import (
    NafId,
    a_kid,
    a_tid,
    k_af,
    k_akma,
    ks_from_ck_ik,
    ks_naf,
    rand_of_b_tid,
)
from simtrust.errors import AuthenticationRequired, Conflict, InvalidInput, UnknownKey
from simtrust.identity import SoftwareSecureElement
from simtrust.subscriber.auc import Usim, kausf

__all__ = ["KEY_BINDING_LABEL", "SimApplet", "key_binding"]

#: Context string of the CSR key binding (see :func:`key_binding`).
KEY_BINDING_LABEL = b"simtrust-est-csr-key-binding/1\x00"


def key_binding(naf_key: bytes, spki_der: bytes) -> str:
    """base64(HMAC-SHA-256(Ks_NAF or K_AF, label ‖ SHA-256(SubjectPublicKeyInfo))).

    The SIM computes it only for key pairs in its own slots; the certificate
    server recomputes it, so a CSR for a key the SIM does not hold is refused.
    """
    digest = hashlib.sha256(spki_der).digest()
    return base64.b64encode(hmac.digest(naf_key, KEY_BINDING_LABEL + digest, "sha256")).decode()


class SimApplet(SoftwareSecureElement):
    """A USIM with GBA_ME and AKMA functions and P-256 / Ed25519 key slots (in memory)."""

    __slots__ = ("_akma", "_gba", "_p256", "_pending", "_usim", "impi", "supi")

    def __init__(self, iccid: str, usim: Usim, *, impi: str, supi: str) -> None:
        super().__init__(iccid)
        self._usim = usim
        self.impi = impi
        self.supi = supi
        self._pending: dict[bytes, bytes] = {}
        self._gba: tuple[str, bytes, bytes, datetime] | None = None
        self._akma: tuple[str, bytes] | None = None
        self._p256: dict[str, ec.EllipticCurvePrivateKey] = {}

    def __repr__(self) -> str:
        return f"SimApplet({self.element_id!r}, impi={self.impi!r})"

    # -- AKA -------------------------------------------------------------------

    def aka(self, rand: bytes, autn: bytes) -> bytes:
        """Run AKA; returns RES and keeps CK ‖ IK for this RAND (SyncFailure carries AUTS)."""
        answer, self._usim = self._usim.authenticate(rand, autn)
        self._pending = {rand: ks_from_ck_ik(answer.ck, answer.ik)}
        return answer.res

    def gba_commit(self, b_tid: str, expires_at: datetime) -> None:
        """Keep Ks under the B-TID the BSF returned (its RAND must be the last challenge)."""
        rand = rand_of_b_tid(b_tid)
        ks = self._pending.pop(rand, None)
        if ks is None:
            raise Conflict("B-TID does not belong to the last AKA run", reason="b-tid-rand")
        self._gba = (b_tid, rand, ks, expires_at)

    def aka_5g(self, rand: bytes, autn: bytes, sn_name: str, *, routing_indicator: str,
               realm: str) -> bytes:
        """5G AKA (TS 33.501 §6.1.3.2); returns RES* and anchors K_AKMA / A-KID inside."""
        answer, self._usim = self._usim.authenticate(rand, autn, require_separation_bit=True)
        k_ausf = kausf(answer.ck, answer.ik, sn_name, autn[:6])
        self._akma = (a_kid(a_tid(k_ausf, self.supi), routing_indicator, realm),
                      k_akma(k_ausf, self.supi))
        return answer.res_star(sn_name, rand)

    @property
    def b_tid(self) -> str | None:
        return None if self._gba is None else self._gba[0]

    @property
    def a_kid(self) -> str | None:
        return None if self._akma is None else self._akma[0]

    def _naf_key(self, kind: str, naf_id: NafId, now: datetime) -> tuple[str, bytes]:
        if kind == "gba":
            if self._gba is None:
                raise AuthenticationRequired("no GBA bootstrapping yet", reason="no-b-tid")
            b_tid, rand, ks, expires = self._gba
            if expires <= now:
                raise AuthenticationRequired("B-TID key lifetime has ended",
                                             reason="expired-b-tid")
            return b_tid, ks_naf(ks, rand, self.impi, naf_id)
        if kind == "akma":
            if self._akma is None:
                raise AuthenticationRequired("no AKMA anchor yet", reason="no-a-kid")
            return self._akma[0], k_af(self._akma[1], naf_id)
        raise InvalidInput("kind is gba or akma", field="kind")

    def naf_username(self, kind: str, naf_id: NafId, now: datetime) -> str:
        """The Digest user name towards the NAF: the B-TID or the A-KID."""
        return self._naf_key(kind, naf_id, now)[0]

    def naf_digest(self, kind: str, naf_id: NafId, now: datetime, *, algorithm: str,
                   realm: str, method: str, uri: str, nonce: str, nc: str, cnonce: str,
                   qop: str) -> str:
        """The Digest ``response`` with base64(Ks_NAF / K_AF) as password (TS 33.222 §5.3)."""
        user, key = self._naf_key(kind, naf_id, now)
        return digest_response(algorithm=algorithm, username=user, realm=realm,
                               password=base64.b64encode(key), method=method, uri=uri,
                               nonce=nonce, nc=nc, cnonce=cnonce, qop=qop)

    # -- key slots -------------------------------------------------------------

    def generate_p256(self, label: str) -> ec.EllipticCurvePublicKey:
        """A P-256 key pair created inside under ``label``."""
        if label in self._p256 or label in self.labels():
            raise Conflict(f"slot {label!r} of {self.element_id} is already in use")
        key = ec.generate_private_key(ec.SECP256R1())
        self._p256[label] = key
        return key.public_key()

    def _public(self, label: str) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
        if label in self._p256:
            return self._p256[label].public_key()
        return ed25519.Ed25519PublicKey.from_public_bytes(self.public_key(label))

    def _sign_any(self, label: str, data: bytes) -> bytes:
        if label in self._p256:
            return self._p256[label].sign(data, ec.ECDSA(hashes.SHA256()))
        if label not in self.labels():
            raise UnknownKey(f"no key in slot {label!r} of {self.element_id}")
        return self.sign(label, data)

    def public_key_spki(self, label: str) -> bytes:
        return self._public(label).public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)

    def csr(self, label: str, kind: str, naf_id: NafId, now: datetime, *,
            common_name: str, sans: list[x509.GeneralName] | None = None,
            subject: x509.Name | None = None) -> x509.CertificateSigningRequest:
        """A CSR for the key in ``label``, signed inside, bound to the NAF key."""
        public = self._public(label)
        _, key = self._naf_key(kind, naf_id, now)
        binding = key_binding(key, self.public_key_spki(label))
        if subject is None:
            subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
        return build_csr(public, subject, lambda data: self._sign_any(label, data),
                         sans=sans or [], challenge_password=binding)

    def tls_key_pem(self, label: str) -> bytes:
        """The private key of a P-256 slot as PKCS#8 PEM for the TLS stack of the same device.

        A real SIM would sign the TLS handshake itself (PKCS#11 / IoT SAFE); a
        software applet hands its TLS library the key, and only for P-256 slots.
        """
        key = self._p256.get(label)
        if key is None:
            raise UnknownKey(f"no P-256 key in slot {label!r} of {self.element_id}")
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
