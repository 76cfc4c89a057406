"""The Keccak-f[1600] permutation (FIPS 202 §3.2–3.4), written by hand.

``hashlib`` offers SHA-3 and SHAKE only as sponges (absorb/squeeze with their
padding) and no library on our list exposes the bare permutation, which TUAK
(TS 35.231 §6) applies directly to a 1600-bit INOUT block. The state is 25
64-bit lanes; lane ``x + 5*y`` holds octets ``8*(x+5y) .. +7`` little-endian.
"""

from __future__ import annotations

__all__ = ["keccak_f1600", "keccak_f1600_bytes"]

_M64 = (1 << 64) - 1

_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip

# rho offsets r[x][y] (FIPS 202 Table 2)
_R = (
    (0, 36, 3, 41, 18),
    (1, 44, 10, 45, 2),
    (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56),
    (27, 20, 39, 8, 14),
)

# rho∘pi as (source lane, destination lane, rotation): B[y, 2x+3y] = rot(A[x, y], r[x][y])
_RHO_PI = tuple(
    (x + 5 * y, y + 5 * ((2 * x + 3 * y) % 5), _R[x][y]) for y in range(5) for x in range(5)
)


def keccak_f1600(lanes: list[int], rounds: int = 24) -> list[int]:
    """Apply Keccak-f[1600] to 25 lanes (ints < 2**64); returns a new list."""
    if len(lanes) != 25:
        raise ValueError("Keccak-f[1600] takes 25 lanes")
    a = list(lanes)
    b = [0] * 25
    for rc in _RC[24 - rounds :]:
        # theta
        c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
        c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
        c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
        c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
        c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
        d = (
            c4 ^ (((c1 << 1) | (c1 >> 63)) & _M64),
            c0 ^ (((c2 << 1) | (c2 >> 63)) & _M64),
            c1 ^ (((c3 << 1) | (c3 >> 63)) & _M64),
            c2 ^ (((c4 << 1) | (c4 >> 63)) & _M64),
            c3 ^ (((c0 << 1) | (c0 >> 63)) & _M64),
        )
        # rho and pi
        for src, dst, r in _RHO_PI:
            v = a[src] ^ d[src % 5]
            b[dst] = ((v << r) | (v >> (64 - r))) & _M64 if r else v
        # chi
        for y in range(0, 25, 5):
            b0, b1, b2, b3, b4 = b[y], b[y + 1], b[y + 2], b[y + 3], b[y + 4]
            a[y] = b0 ^ (~b1 & b2)
            a[y + 1] = b1 ^ (~b2 & b3)
            a[y + 2] = b2 ^ (~b3 & b4)
            a[y + 3] = b3 ^ (~b4 & b0)
            a[y + 4] = b4 ^ (~b0 & b1)
        # iota
        a[0] ^= rc
    return a


def keccak_f1600_bytes(state: bytes, iterations: int = 1) -> bytes:
    """Apply the permutation ``iterations`` times to a 200-octet state."""
    if len(state) != 200:
        raise ValueError("Keccak-f[1600] state is 200 octets")
    lanes = [int.from_bytes(state[i : i + 8], "little") for i in range(0, 200, 8)]
    for _ in range(iterations):
        lanes = keccak_f1600(lanes)
    return b"".join(lane.to_bytes(8, "little") for lane in lanes)
