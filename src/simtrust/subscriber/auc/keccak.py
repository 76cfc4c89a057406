"""The Keccak-f[1600] permutation (FIPS 202 §3.2–3.4), written by hand.

``hashlib`` offers SHA-3 and SHAKE only as sponges (absorb/squeeze with their
padding) and no library on our list exposes the bare permutation, which TUAK
(TS 35.231 §6) applies directly to a 1600-bit INOUT block. The state is 25
64-bit lanes; lane ``x + 5*y`` holds octets ``8*(x+5y) .. +7`` little-endian.

:func:`keccak_f1600_bytes` runs the C permutation of the ``_native``
extension when it is built (:data:`KECCAK_BACKEND` says which);
:func:`keccak_f1600_reference` is the Python implementation, kept as the
independent reference the tests compare the C one with.
"""

from __future__ import annotations

from types import ModuleType

_native: ModuleType | None
try:
    from simtrust.subscriber.auc import _native
except ImportError:  # installed without a C compiler: the Python permutation serves
    _native = None

__all__ = ["KECCAK_BACKEND", "keccak_f1600", "keccak_f1600_bytes", "keccak_f1600_reference"]

#: ``"c"`` when the permutation runs in the C extension, else ``"python"``.
KECCAK_BACKEND = "c" if _native is not None else "python"

_M64 = (1 << 64) - 1

_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip


def keccak_f1600(lanes: list[int], rounds: int = 24) -> list[int]:
    """Apply Keccak-f[1600] to 25 lanes (ints < 2**64); returns a new list.

    The round body is unrolled over local variables (lane ``i`` is ``a<i>``):
    CPython runs it several times faster than loops over the 5×5 state.
    """
    if len(lanes) != 25:
        raise ValueError("Keccak-f[1600] takes 25 lanes")
    (
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        a8,
        a9,
        a10,
        a11,
        a12,
        a13,
        a14,
        a15,
        a16,
        a17,
        a18,
        a19,
        a20,
        a21,
        a22,
        a23,
        a24,
    ) = lanes
    for rc in _RC[24 - rounds :]:
        # theta
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24
        d0 = c4 ^ (((c1 << 1) | (c1 >> 63)) & _M64)
        d1 = c0 ^ (((c2 << 1) | (c2 >> 63)) & _M64)
        d2 = c1 ^ (((c3 << 1) | (c3 >> 63)) & _M64)
        d3 = c2 ^ (((c4 << 1) | (c4 >> 63)) & _M64)
        d4 = c3 ^ (((c0 << 1) | (c0 >> 63)) & _M64)
        # rho and pi: B[y, 2x+3y] = rot(A[x, y] ^ D[x], r[x][y])
        b0 = a0 ^ d0
        v = a1 ^ d1
        b10 = ((v << 1) | (v >> 63)) & _M64
        v = a2 ^ d2
        b20 = ((v << 62) | (v >> 2)) & _M64
        v = a3 ^ d3
        b5 = ((v << 28) | (v >> 36)) & _M64
        v = a4 ^ d4
        b15 = ((v << 27) | (v >> 37)) & _M64
        v = a5 ^ d0
        b16 = ((v << 36) | (v >> 28)) & _M64
        v = a6 ^ d1
        b1 = ((v << 44) | (v >> 20)) & _M64
        v = a7 ^ d2
        b11 = ((v << 6) | (v >> 58)) & _M64
        v = a8 ^ d3
        b21 = ((v << 55) | (v >> 9)) & _M64
        v = a9 ^ d4
        b6 = ((v << 20) | (v >> 44)) & _M64
        v = a10 ^ d0
        b7 = ((v << 3) | (v >> 61)) & _M64
        v = a11 ^ d1
        b17 = ((v << 10) | (v >> 54)) & _M64
        v = a12 ^ d2
        b2 = ((v << 43) | (v >> 21)) & _M64
        v = a13 ^ d3
        b12 = ((v << 25) | (v >> 39)) & _M64
        v = a14 ^ d4
        b22 = ((v << 39) | (v >> 25)) & _M64
        v = a15 ^ d0
        b23 = ((v << 41) | (v >> 23)) & _M64
        v = a16 ^ d1
        b8 = ((v << 45) | (v >> 19)) & _M64
        v = a17 ^ d2
        b18 = ((v << 15) | (v >> 49)) & _M64
        v = a18 ^ d3
        b3 = ((v << 21) | (v >> 43)) & _M64
        v = a19 ^ d4
        b13 = ((v << 8) | (v >> 56)) & _M64
        v = a20 ^ d0
        b14 = ((v << 18) | (v >> 46)) & _M64
        v = a21 ^ d1
        b24 = ((v << 2) | (v >> 62)) & _M64
        v = a22 ^ d2
        b9 = ((v << 61) | (v >> 3)) & _M64
        v = a23 ^ d3
        b19 = ((v << 56) | (v >> 8)) & _M64
        v = a24 ^ d4
        b4 = ((v << 14) | (v >> 50)) & _M64
        # chi, with iota folded into lane 0
        a0 = b0 ^ (~b1 & b2) ^ rc
        a1 = b1 ^ (~b2 & b3)
        a2 = b2 ^ (~b3 & b4)
        a3 = b3 ^ (~b4 & b0)
        a4 = b4 ^ (~b0 & b1)
        a5 = b5 ^ (~b6 & b7)
        a6 = b6 ^ (~b7 & b8)
        a7 = b7 ^ (~b8 & b9)
        a8 = b8 ^ (~b9 & b5)
        a9 = b9 ^ (~b5 & b6)
        a10 = b10 ^ (~b11 & b12)
        a11 = b11 ^ (~b12 & b13)
        a12 = b12 ^ (~b13 & b14)
        a13 = b13 ^ (~b14 & b10)
        a14 = b14 ^ (~b10 & b11)
        a15 = b15 ^ (~b16 & b17)
        a16 = b16 ^ (~b17 & b18)
        a17 = b17 ^ (~b18 & b19)
        a18 = b18 ^ (~b19 & b15)
        a19 = b19 ^ (~b15 & b16)
        a20 = b20 ^ (~b21 & b22)
        a21 = b21 ^ (~b22 & b23)
        a22 = b22 ^ (~b23 & b24)
        a23 = b23 ^ (~b24 & b20)
        a24 = b24 ^ (~b20 & b21)

    return [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        a8,
        a9,
        a10,
        a11,
        a12,
        a13,
        a14,
        a15,
        a16,
        a17,
        a18,
        a19,
        a20,
        a21,
        a22,
        a23,
        a24,
    ]


def keccak_f1600_bytes(state: bytes, iterations: int = 1) -> bytes:
    """Apply the permutation ``iterations`` times to a 200-octet state."""
    if len(state) != 200:
        raise ValueError("Keccak-f[1600] state is 200 octets")
    if _native is not None and 1 <= iterations <= 255:
        permuted: bytes = _native.keccak_f1600(state, iterations)
        return permuted
    return keccak_f1600_reference(state, iterations)


def keccak_f1600_reference(state: bytes, iterations: int = 1) -> bytes:
    """The pure-Python permutation, ``iterations`` times over a 200-octet state."""
    if len(state) != 200:
        raise ValueError("Keccak-f[1600] state is 200 octets")
    lanes = [int.from_bytes(state[i : i + 8], "little") for i in range(0, 200, 8)]
    for _ in range(iterations):
        lanes = keccak_f1600(lanes)
    return b"".join(lane.to_bytes(8, "little") for lane in lanes)
