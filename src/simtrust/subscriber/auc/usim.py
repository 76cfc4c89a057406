"""A simulated USIM: the device side of AKA (TS 33.102 §6.3.3, TS 33.401 §6.1.2).

Given RAND and AUTN it recovers SQN with AK, verifies MAC-A (:class:`MacFailure`
``mac-a``), optionally requires the AMF separation bit (EPS/5G, TS 33.401
§6.1.2; reason ``separation-bit``), checks SQN freshness against its SEQ array
(Annex C.2) and on failure raises :class:`SyncFailure` carrying the AUTS. On
success it returns RES, CK, IK and the USIM with its updated SQN array.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import NamedTuple

from simtrust.errors import AuthenticationFailure
from simtrust.subscriber.auc._util import check_len, xor
from simtrust.subscriber.auc.errors import MacFailure, SyncFailure
from simtrust.subscriber.auc.kdf import res_star
from simtrust.subscriber.auc.resync import build_auts
from simtrust.subscriber.auc.sqn import UsimSqnArray
from simtrust.subscriber.auc.vectors import AkaFunctions

__all__ = ["AkaResponse", "Usim"]


class AkaResponse(NamedTuple):
    """What the USIM returns after a successful AKA run."""

    res: bytes
    ck: bytes
    ik: bytes
    sqn: bytes

    def __repr__(self) -> str:
        return f"AkaResponse(sqn={self.sqn.hex()}, res=…, ck=…, ik=…)"

    def res_star(self, sn_name: str, rand: bytes) -> bytes:
        """RES* for 5G AKA (TS 33.501 A.4)."""
        return res_star(self.ck, self.ik, sn_name, rand, self.res)


@dataclass(frozen=True, slots=True)
class Usim:
    """A USIM holding an algorithm set (its K and OPc/TOPc) and its SQN array."""

    alg: AkaFunctions = field(repr=False)
    sqn_array: UsimSqnArray = field(default_factory=UsimSqnArray)

    def authenticate(
        self, rand: bytes, autn: bytes, *, require_separation_bit: bool = False
    ) -> tuple[AkaResponse, Usim]:
        """Run AKA for (RAND, AUTN); returns the response and the updated USIM."""
        rand = check_len("RAND", rand, 16)
        if not isinstance(autn, bytes) or len(autn) not in (16, 24, 40):
            check_len("AUTN", autn, 16)
        f = self.alg.f2345(rand)
        sqn = xor(autn[:6], f.ak)
        amf = autn[6:8]
        mac = self.alg.f1(rand, sqn, amf)
        if len(mac) != len(autn) - 8 or not hmac.compare_digest(mac, autn[8:]):
            raise MacFailure("mac-a", "AUTN does not verify (MAC failure)")
        if require_separation_bit and not amf[0] & 0x80:
            raise AuthenticationFailure(
                "AMF separation bit is 0: not an EPS/5G vector", reason="separation-bit"
            )
        try:
            updated = self.sqn_array.check(sqn)
        except SyncFailure as exc:
            auts = build_auts(self.alg, rand, self.sqn_array.sqn_ms)
            raise SyncFailure(exc.reason, exc.detail, auts) from None
        return AkaResponse(f.res, f.ck, f.ik, sqn), Usim(self.alg, updated)
