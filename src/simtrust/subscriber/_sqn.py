"""How the inventory stores a SIM's AuC SQN state (TS 33.102 Annex C).

The state is :class:`simtrust.subscriber.auc.sqn.AucSqnState` (SEQ_HE, next
IND, IND length), kept in ``sub_sims.sqn_state`` as the hex of its 7-octet
encoding, with ``sqn_version`` for compare-and-swap updates.
"""

from __future__ import annotations

from simtrust.errors import DecodeError
from simtrust.subscriber.auc.sqn import AucSqnState

__all__ = ["decode_sqn_state", "encode_sqn_state", "initial_sqn_state"]


def encode_sqn_state(state: AucSqnState) -> str:
    return state.to_bytes().hex()


def decode_sqn_state(text: str) -> AucSqnState:
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise DecodeError("stored SQN state is not hex") from exc
    return AucSqnState.from_bytes(raw)


def initial_sqn_state(sqn: int = 0) -> str:
    """The stored state of a new SIM whose USIM last accepted ``sqn`` (0: a fresh card)."""
    if sqn == 0:
        return encode_sqn_state(AucSqnState())
    return encode_sqn_state(AucSqnState.from_sqn(sqn.to_bytes(6, "big")))
