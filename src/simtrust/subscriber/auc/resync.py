"""Re-synchronisation: AUTS on the USIM side and its verification in the AuC.

AUTS = SQN_MS ⊕ AK* ‖ MAC-S with AK* = f5*(RAND) and MAC-S = f1*(SQN_MS, RAND,
AMF) where AMF is the dummy 0x0000 (TS 33.102 §6.3.3). The AuC recovers SQN_MS,
verifies MAC-S (a forgery raises :class:`MacFailure`) and, unless its next SQN
would already be accepted, resets SEQ_HE to SEQ_MS (§6.3.5, Annex C.3).
"""

from __future__ import annotations

import hmac

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import check_len, xor
from simtrust.subscriber.auc.errors import MacFailure
from simtrust.subscriber.auc.sqn import DEFAULT_DELTA, AucSqnState
from simtrust.subscriber.auc.vectors import AkaFunctions

__all__ = ["RESYNC_AMF", "build_auts", "resynchronise", "verify_auts"]

RESYNC_AMF = b"\x00\x00"  # TS 33.102 §6.3.3: dummy AMF for MAC-S


def build_auts(alg: AkaFunctions, rand: bytes, sqn_ms: bytes) -> bytes:
    """AUTS the USIM sends on a synchronisation failure."""
    rand = check_len("RAND", rand, 16)
    sqn_ms = check_len("SQN_MS", sqn_ms, 6)
    return xor(sqn_ms, alg.f5star(rand)) + alg.f1star(rand, sqn_ms, RESYNC_AMF)


def verify_auts(alg: AkaFunctions, rand: bytes, auts: bytes) -> bytes:
    """SQN_MS from a genuine AUTS; raises :class:`MacFailure` (``mac-s``) otherwise."""
    rand = check_len("RAND", rand, 16)
    if not isinstance(auts, bytes) or len(auts) not in (14, 22, 38):
        raise InvalidInput("AUTS must be 112, 176 or 304 bits", field="auts")
    sqn_ms = xor(auts[:6], alg.f5star(rand))
    expected = alg.f1star(rand, sqn_ms, RESYNC_AMF)
    if len(expected) != len(auts) - 6 or not hmac.compare_digest(expected, auts[6:]):
        raise MacFailure("mac-s", "AUTS does not verify (MAC-S mismatch): forged or wrong key")
    return sqn_ms


def resynchronise(
    alg: AkaFunctions,
    state: AucSqnState,
    rand: bytes,
    auts: bytes,
    delta: int = DEFAULT_DELTA,
) -> tuple[AucSqnState, bytes]:
    """Verify AUTS and return (new AuC state, SQN_MS) per TS 33.102 §6.3.5.

    ``rand`` is the RAND of the vector the USIM rejected. If the AuC's next SQN
    would already be accepted the state is kept, else SEQ_HE := SEQ_MS.
    """
    sqn_ms = verify_auts(alg, rand, auts)
    if state.next_would_be_accepted(sqn_ms, delta):
        return state, sqn_ms
    return state.reset_to(sqn_ms), sqn_ms
