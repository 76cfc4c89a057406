"""The AAnF: AKMA anchor keys and application keys (TS 33.535 §6.1-§6.3, TS 29.535 §5).

After a successful primary authentication the AUSF derives K_AKMA and A-TID from
K_AUSF (Annex A.2, A.3), forms the A-KID and registers them here
(``Naanf_AKMA_AnchorKey_Register``). An AF (here the certificate server) presents
an A-KID and its AF_ID and receives K_AF = KDF(K_AKMA, 0x82, AF_ID) with its expiry
(``Naanf_AKMA_ApplicationKey_Get``). ``Naanf_AKMA_Context_Remove`` deletes a SUPI's
context. :func:`register_from_ausf` is the AUSF's half, checking RES* against XRES*
of the 5G HE AV before anchoring (TS 33.535 §6.1 step 2).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simtrust.audit import AuditLog
from simtrust.bootstrap._bsf import NafKey
from simtrust.bootstrap._kdf import NafId, a_kid, a_tid, k_af, k_akma
from simtrust.crypto import Keyring
from simtrust.errors import AuthenticationFailure, AuthenticationRequired, InvalidInput, NotFound
from simtrust.store import Database
from simtrust.subscriber.auc import HeAv5g

__all__ = ["Aanf", "AkmaAnchor", "register_from_ausf"]


@dataclass(frozen=True, slots=True)
class AkmaAnchor:
    """K_AKMA and its A-KID for one SUPI (the AUSF's output, TS 33.535 §6.1)."""

    supi: str
    a_kid: str
    k_akma: bytes = field(repr=False)


class Aanf:
    """AKMA anchor function over the store; keys sealed by the keyring."""

    __slots__ = ("_audit", "_clock", "_db", "_keyring", "_lifetime")

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        audit: AuditLog,
        clock: Callable[[], datetime],
        *,
        key_lifetime: timedelta = timedelta(hours=24),
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._lifetime = key_lifetime

    def __repr__(self) -> str:
        return f"Aanf({self._db!r})"

    @staticmethod
    def _aad(a_kid_value: str) -> bytes:
        return f"simtrust/bootstrap/akma/{a_kid_value}".encode()

    def register(self, anchor: AkmaAnchor, *, gpsi: str | None = None,
                 actor: str = "ausf") -> datetime:
        """Store K_AKMA under its A-KID, replacing the SUPI's older context (§6.1)."""
        if len(anchor.k_akma) != 32:
            raise InvalidInput("K_AKMA is 32 octets", field="kAkma")
        if "@" not in anchor.a_kid:
            raise InvalidInput("A-KID must be an NAI (username@realm)", field="aKId")
        now = self._clock()
        expires = now + self._lifetime
        with self._db.transaction():
            self._db.execute("DELETE FROM boot_akma_contexts WHERE supi = ? OR a_kid = ?",
                             (anchor.supi, anchor.a_kid))
            self._db.execute(
                "INSERT INTO boot_akma_contexts (a_kid, supi, gpsi, k_akma_sealed, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (anchor.a_kid, anchor.supi, gpsi,
                 self._keyring.seal(anchor.k_akma, self._aad(anchor.a_kid)),
                 now.isoformat(), expires.isoformat()),
            )
            self._audit.append(actor=actor, action="akma.register", subject=f"supi:{anchor.supi}",
                               outcome="success", details={"a_kid": anchor.a_kid})
        return expires

    def application_key(self, a_kid_value: str, af_id: NafId) -> NafKey:
        """K_AF for an A-KID and AF_ID (§6.3); NotFound / AuthenticationRequired as for GBA."""
        row = self._db.query_one(
            "SELECT supi, k_akma_sealed, expires_at FROM boot_akma_contexts WHERE a_kid = ?",
            (a_kid_value,),
        )
        if row is None:
            raise NotFound("unknown A-KID", reason="unknown-a-kid", cause="CONTEXT_NOT_FOUND")
        expires = datetime.fromisoformat(str(row[2]))
        if expires <= self._clock():
            raise AuthenticationRequired("A-KID key lifetime has ended; authenticate again",
                                         reason="expired-a-kid")
        key = self._keyring.open(bytes(row[1]), self._aad(a_kid_value))
        supi = str(row[0])
        imsi = supi.removeprefix("imsi-")
        return NafKey(a_kid_value, k_af(key, af_id), imsi, expires, kind="akma")

    def remove(self, supi: str, *, actor: str = "ausf") -> int:
        """Delete the SUPI's AKMA context (Naanf_AKMA_Context_Remove); how many were removed."""
        with self._db.transaction():
            n = self._db.execute("DELETE FROM boot_akma_contexts WHERE supi = ?", (supi,))
            if n:
                self._audit.append(actor=actor, action="akma.remove", subject=f"supi:{supi}",
                                   outcome="success")
        return n


def register_from_ausf(
    aanf: Aanf, av: HeAv5g, res_star_value: bytes, supi: str, *, routing_indicator: str,
    realm: str,
) -> AkmaAnchor:
    """The AUSF's step: confirm RES* (TS 33.501 §6.1.3.2 step 11), derive and anchor K_AKMA."""
    if not hmac.compare_digest(av.xres_star, res_star_value):
        raise AuthenticationFailure("RES* does not match XRES*", reason="res-star")
    anchor = AkmaAnchor(
        supi, a_kid(a_tid(av.kausf, supi), routing_indicator, realm), k_akma(av.kausf, supi)
    )
    aanf.register(anchor)
    return anchor
