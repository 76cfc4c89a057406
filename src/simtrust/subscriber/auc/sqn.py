"""Sequence number management for AKA (TS 33.102 Annex C).

SQN (48 bits) = SEQ ‖ IND, IND the low ``ind_bits`` (5 by default, C.1.1.2).
The AuC side (:class:`AucSqnState`) keeps SEQ_HE and the next IND and issues
fresh SQNs: SEQ_HE + 1 with IND cycling through 0 … 2^ind_bits − 1 (C.1.1, C.1.2).
The USIM side (:class:`UsimSqnArray`) keeps the highest SEQ accepted per IND
(C.2.1), refuses SEQ more than Δ ahead of the highest accepted one (C.2.2) and,
optionally, SEQ older than L behind it (C.2.3). Both are immutable values that
serialise to an integer or to octets for storage; re-synchronisation (C.3,
§6.3.5) resets SEQ_HE from SQN_MS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simtrust.errors import Conflict, DecodeError, InvalidInput
from simtrust.subscriber.auc._util import check_len
from simtrust.subscriber.auc.errors import SyncFailure

__all__ = ["DEFAULT_DELTA", "DEFAULT_IND_BITS", "AucSqnState", "UsimSqnArray", "split_sqn"]

DEFAULT_IND_BITS = 5
DEFAULT_DELTA = 1 << 28  # TS 33.102 C.2.2: Δ "shall be configurable", 2^28 is the example
_SQN_BITS = 48


def _check_ind_bits(ind_bits: int) -> None:
    if not isinstance(ind_bits, int) or not 0 <= ind_bits <= 10:
        raise InvalidInput("ind_bits must be 0..10", field="ind_bits")


def split_sqn(sqn: bytes, ind_bits: int = DEFAULT_IND_BITS) -> tuple[int, int]:
    """(SEQ, IND) of a 48-bit SQN."""
    _check_ind_bits(ind_bits)
    value = int.from_bytes(check_len("SQN", sqn, 6), "big")
    return value >> ind_bits, value & ((1 << ind_bits) - 1)


def _join(seq: int, ind: int, ind_bits: int) -> bytes:
    return ((seq << ind_bits) | ind).to_bytes(6, "big")


@dataclass(frozen=True, slots=True)
class AucSqnState:
    """The AuC's SQN state for one SIM: SEQ_HE (last SEQ issued) and the next IND.

    ``to_int``/``from_int`` and ``to_bytes``/``from_bytes`` give a lossless,
    fixed-size encoding (7 octets: ind_bits, then SEQ_HE ‖ next IND on 48 bits).
    """

    seq: int = 0
    ind: int = 0
    ind_bits: int = DEFAULT_IND_BITS

    def __post_init__(self) -> None:
        _check_ind_bits(self.ind_bits)
        if not 0 <= self.seq < 1 << (_SQN_BITS - self.ind_bits):
            raise InvalidInput("SEQ out of range", field="seq")
        if not 0 <= self.ind < 1 << self.ind_bits:
            raise InvalidInput("IND out of range", field="ind")

    @classmethod
    def from_sqn(cls, sqn: bytes, ind_bits: int = DEFAULT_IND_BITS) -> AucSqnState:
        """State whose last issued SQN is ``sqn`` (the next IND follows its IND)."""
        seq, ind = split_sqn(sqn, ind_bits)
        return cls(seq=seq, ind=(ind + 1) % (1 << ind_bits), ind_bits=ind_bits)

    @property
    def last_sqn(self) -> bytes:
        """SEQ_HE with the IND used last (what :meth:`from_sqn` takes back)."""
        return _join(self.seq, (self.ind - 1) % (1 << self.ind_bits), self.ind_bits)

    def issue(self, count: int = 1) -> tuple[list[bytes], AucSqnState]:
        """``count`` fresh SQNs (C.1.1/C.1.2) and the state after issuing them."""
        if count < 0:
            raise InvalidInput("count must not be negative", field="count")
        bits = self.ind_bits
        modulus = 1 << bits
        last = self.seq + count
        if last >= 1 << (_SQN_BITS - bits):
            raise Conflict("SQN space exhausted for this SIM", reason="sqn-exhausted")
        ind = self.ind
        out = [
            ((self.seq + 1 + i) << bits | ((ind + i) % modulus)).to_bytes(6, "big")
            for i in range(count)
        ]
        return out, AucSqnState(seq=last, ind=(ind + count) % modulus, ind_bits=bits)

    def issue_joined(self, count: int) -> tuple[bytes, AucSqnState]:
        """Like :meth:`issue`, the SQNs concatenated (6 octets each); the batch path."""
        if count < 0:
            raise InvalidInput("count must not be negative", field="count")
        bits = self.ind_bits
        modulus = 1 << bits
        mask = modulus - 1
        last = self.seq + count
        if last >= 1 << (_SQN_BITS - bits):
            raise Conflict("SQN space exhausted for this SIM", reason="sqn-exhausted")
        ind = self.ind
        base = self.seq + 1
        values = [((base + i) << bits) | ((ind + i) & mask) for i in range(count)]
        # In range by construction: ``last`` was checked above, IND is reduced mod 2^bits.
        after = _checked_state(last, (ind + count) % modulus, bits)
        if count < 16:
            return b"".join([v.to_bytes(6, "big") for v in values]), after
        # Pack as 64-bit words and drop their two zero top octets with strided copies.
        packed = struct.pack(f">{count}Q", *values)
        out = bytearray(6 * count)
        for j in range(6):
            out[j::6] = packed[2 + j :: 8]
        return bytes(out), after

    def next_would_be_accepted(self, sqn_ms: bytes, delta: int = DEFAULT_DELTA) -> bool:
        """Whether the next SEQ issued lies above SEQ_MS and within Δ (§6.3.5)."""
        seq_ms, _ = split_sqn(sqn_ms, self.ind_bits)
        nxt = self.seq + 1
        return seq_ms < nxt and nxt - seq_ms <= delta

    def reset_to(self, sqn_ms: bytes) -> AucSqnState:
        """SEQ_HE := SEQ_MS after a verified AUTS (TS 33.102 §6.3.5, C.3)."""
        seq_ms, _ = split_sqn(sqn_ms, self.ind_bits)
        return AucSqnState(seq=seq_ms, ind=self.ind, ind_bits=self.ind_bits)

    def to_int(self) -> int:
        return (self.ind_bits << _SQN_BITS) | (self.seq << self.ind_bits) | self.ind

    @classmethod
    def from_int(cls, value: int) -> AucSqnState:
        if not 0 <= value < 1 << (_SQN_BITS + 8):
            raise DecodeError("SQN state integer out of range")
        bits = value >> _SQN_BITS
        if bits > 10:
            raise DecodeError("SQN state has an invalid IND length")
        low = value & ((1 << _SQN_BITS) - 1)
        # The checks of __post_init__ hold by construction: 0 <= bits <= 10, SEQ below
        # 2^(48 - bits), IND below 2^bits (a stored state is decoded per request).
        return _checked_state(low >> bits, low & ((1 << bits) - 1), bits)

    def to_bytes(self) -> bytes:
        return self.to_int().to_bytes(7, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> AucSqnState:
        if len(data) != 7:
            raise DecodeError("SQN state is 7 octets")
        return cls.from_int(int.from_bytes(data, "big"))


def _checked_state(seq: int, ind: int, ind_bits: int) -> AucSqnState:
    """An :class:`AucSqnState` whose fields the caller has range-checked already (the
    checks of ``__post_init__`` are not run again)."""
    state = object.__new__(AucSqnState)
    object.__setattr__(state, "seq", seq)
    object.__setattr__(state, "ind", ind)
    object.__setattr__(state, "ind_bits", ind_bits)
    return state


@dataclass(frozen=True, slots=True)
class UsimSqnArray:
    """The USIM's array of highest accepted SEQ per IND (TS 33.102 C.2).

    ``delta`` is Δ of C.2.2; ``limit`` is L of C.2.3 (``None``: not applied).
    """

    seq_ms: tuple[int, ...] = ()
    ind_bits: int = DEFAULT_IND_BITS
    delta: int = DEFAULT_DELTA
    limit: int | None = None

    def __post_init__(self) -> None:
        _check_ind_bits(self.ind_bits)
        size = 1 << self.ind_bits
        if not self.seq_ms:
            object.__setattr__(self, "seq_ms", (0,) * size)
        elif len(self.seq_ms) != size:
            raise InvalidInput("SEQ_MS array must have 2^ind_bits entries", field="seq_ms")
        if self.delta <= 0:
            raise InvalidInput("delta must be positive", field="delta")
        if self.limit is not None and self.limit <= 0:
            raise InvalidInput("limit must be positive", field="limit")

    @property
    def highest(self) -> int:
        """SEQ_MS, the highest SEQ accepted for any IND."""
        return max(self.seq_ms)

    @property
    def sqn_ms(self) -> bytes:
        """SQN_MS for AUTS: highest SEQ accepted with the IND it was accepted at."""
        top = self.highest
        return _join(top, self.seq_ms.index(top), self.ind_bits)

    def check(self, sqn: bytes) -> UsimSqnArray:
        """Accept ``sqn`` and return the updated array, or raise :class:`SyncFailure`.

        The raised error carries no AUTS (``b""``); the USIM adds it.
        """
        seq, ind = split_sqn(sqn, self.ind_bits)
        top = self.highest
        if seq <= self.seq_ms[ind]:
            raise SyncFailure(
                "replay", "SQN not fresh: SEQ not above the one accepted for its IND", b"", ind=ind
            )
        if seq - top > self.delta:
            raise SyncFailure("delta", "SQN too far ahead of the highest accepted (Δ)", b"")
        if self.limit is not None and top - seq > self.limit:
            raise SyncFailure("age", "SQN older than the limit L behind the highest accepted", b"")
        new = list(self.seq_ms)
        new[ind] = seq
        return UsimSqnArray(tuple(new), self.ind_bits, self.delta, self.limit)
