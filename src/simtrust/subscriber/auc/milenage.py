"""MILENAGE, the AES-based 3GPP authentication functions f1, f1*, f2, f3, f4, f5, f5*.

Follows 3GPP TS 35.206 §4.1 (OPc = E_K(OP) ⊕ OP) and §4.1–4.2 (the kernel with
r1..r5 = 64, 0, 32, 64, 96 and c1..c5 = 0, 1, 2, 4, 8); conformance data in
TS 35.208. AES comes from ``cryptography`` (one ECB encryptor per K, reused).

Speed: OUT1..OUT5 depend only on TEMP = E_K(RAND ⊕ OPc), so every kernel block is
formed from TEMP by byte rotations and one XOR with a per-key constant, and all
of them go through AES in one ``update`` call. :meth:`Milenage.eps_batch` does
the same across many RANDs at once (two AES calls for a whole batch).
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simtrust.subscriber.auc._util import check_len

__all__ = ["F2345", "Milenage", "MilenageOutput", "compute_opc"]

_MASK128 = (1 << 128) - 1


def _rot(x: int, r: int) -> int:
    """Cyclic left rotation of a 128-bit integer by ``r`` bits (TS 35.206 §4.1)."""
    r %= 128
    return ((x << r) | (x >> (128 - r))) & _MASK128 if r else x


def _encryptor(k: bytes) -> object:
    return Cipher(algorithms.AES(k), modes.ECB()).encryptor()


def compute_opc(k: bytes, op: bytes) -> bytes:
    """OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1)."""
    k = check_len("K", k, 16)
    op = check_len("OP", op, 16)
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    e = enc.update(op)
    return (int.from_bytes(e, "big") ^ int.from_bytes(op, "big")).to_bytes(16, "big")


class F2345(NamedTuple):
    """RES (f2, 64 bits), CK (f3), IK (f4), AK (f5, 48 bits)."""

    res: bytes
    ck: bytes
    ik: bytes
    ak: bytes

    def __repr__(self) -> str:
        return "F2345(<redacted>)"


class MilenageOutput(NamedTuple):
    """All seven outputs for one (RAND, SQN, AMF), as in the TS 35.208 tables."""

    f1: bytes
    f1star: bytes
    f2: bytes
    f3: bytes
    f4: bytes
    f5: bytes
    f5star: bytes

    def __repr__(self) -> str:
        return "MilenageOutput(<redacted>)"


class Milenage:
    """MILENAGE for one subscriber key K and operator variant OPc.

    Build with ``Milenage(k, opc)`` or ``Milenage.from_op(k, op)``. The object
    holds the AES context for K and the OPc-derived constants; its repr never
    shows either.
    """

    __slots__ = ("_a1", "_a2", "_a3", "_a4", "_a5", "_enc", "_opc", "_opc4", "_opc_int", "_upd")

    def __init__(self, k: bytes, opc: bytes) -> None:
        k = check_len("K", k, 16)
        opc = check_len("OPc", opc, 16)
        enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        self._enc = enc
        self._upd = enc.update
        self._opc = opc
        o = int.from_bytes(opc, "big")
        self._opc_int = o
        # Per-key constants XORed into the (rotated) TEMP to form each kernel input.
        self._a1 = _rot(o, 64)  # OUT1: TEMP ⊕ rot(IN1 ⊕ OPc, 64) ⊕ c1; IN1 is rot-64 invariant
        self._a2 = o ^ 1  # OUT2: rot(TEMP ⊕ OPc, 0) ⊕ c2
        self._a3 = _rot(o, 32) ^ 2  # OUT3: r3 = 32, c3 = 2
        self._a4 = _rot(o, 64) ^ 4  # OUT4: r4 = 64, c4 = 4
        self._a5 = _rot(o, 96) ^ 8  # OUT5: r5 = 96, c5 = 8
        self._opc4 = int.from_bytes(opc * 4, "big")

    @classmethod
    def from_op(cls, k: bytes, op: bytes) -> Milenage:
        """Derive OPc from OP (TS 35.206 §4.1) and build the instance."""
        return cls(k, compute_opc(k, op))

    @property
    def opc(self) -> bytes:
        """OPc (secret: store it sealed, never log it)."""
        return self._opc

    def __repr__(self) -> str:
        return "Milenage(k=<redacted>, opc=<redacted>)"

    # -- kernel ---------------------------------------------------------------

    def _temp(self, rand: bytes) -> bytes:
        rand = check_len("RAND", rand, 16)
        x = int.from_bytes(rand, "big") ^ self._opc_int
        out: bytes = self._upd(x.to_bytes(16, "big"))
        return out

    def _outs(self, temp: bytes, blocks: tuple[tuple[int, int], ...]) -> list[int]:
        """E_K(rot(TEMP, r) ⊕ a) ⊕ OPc for each (r, a), in one AES call."""
        t = int.from_bytes(temp, "big")
        data = b"".join((_rot(t, r) ^ a).to_bytes(16, "big") for r, a in blocks)
        out = self._upd(data)
        o = self._opc_int
        return [int.from_bytes(out[i : i + 16], "big") ^ o for i in range(0, len(out), 16)]

    @staticmethod
    def _in1(sqn: bytes, amf: bytes) -> int:
        sqn = check_len("SQN", sqn, 6)
        amf = check_len("AMF", amf, 2)
        return int.from_bytes((sqn + amf) * 2, "big")

    # -- the functions of TS 35.206 -------------------------------------------

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A (64 bits), the network authentication code."""
        in1 = self._in1(sqn, amf)
        (out1,) = self._outs(self._temp(rand), ((0, self._a1 ^ in1),))
        return (out1 >> 64).to_bytes(8, "big")

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S (64 bits), the resynchronisation authentication code."""
        in1 = self._in1(sqn, amf)
        (out1,) = self._outs(self._temp(rand), ((0, self._a1 ^ in1),))
        return (out1 & ((1 << 64) - 1)).to_bytes(8, "big")

    def f2345(self, rand: bytes) -> F2345:
        """RES, CK, IK and AK for RAND."""
        out2, out3, out4 = self._outs(
            self._temp(rand), ((0, self._a2), (32, self._a3), (64, self._a4))
        )
        return F2345(
            res=(out2 & ((1 << 64) - 1)).to_bytes(8, "big"),
            ck=out3.to_bytes(16, "big"),
            ik=out4.to_bytes(16, "big"),
            ak=(out2 >> 80).to_bytes(6, "big"),
        )

    def f5star(self, rand: bytes) -> bytes:
        """AK for resynchronisation (48 bits)."""
        (out5,) = self._outs(self._temp(rand), ((96, self._a5),))
        return (out5 >> 80).to_bytes(6, "big")

    def compute(self, rand: bytes, sqn: bytes, amf: bytes) -> MilenageOutput:
        """All seven functions at once (two AES calls)."""
        in1 = self._in1(sqn, amf)
        out1, out2, out3, out4, out5 = self._outs(
            self._temp(rand),
            (
                (0, self._a1 ^ in1),
                (0, self._a2),
                (32, self._a3),
                (64, self._a4),
                (96, self._a5),
            ),
        )
        return MilenageOutput(
            f1=(out1 >> 64).to_bytes(8, "big"),
            f1star=(out1 & ((1 << 64) - 1)).to_bytes(8, "big"),
            f2=(out2 & ((1 << 64) - 1)).to_bytes(8, "big"),
            f3=out3.to_bytes(16, "big"),
            f4=out4.to_bytes(16, "big"),
            f5=(out2 >> 80).to_bytes(6, "big"),
            f5star=(out5 >> 80).to_bytes(6, "big"),
        )

    # -- batched vector material ---------------------------------------------

    def eps_batch(self, rands: bytes, sqns: list[bytes], amf: bytes) -> bytes:
        """Kernel outputs for ``len(sqns)`` vectors in two AES calls.

        ``rands`` is the concatenation of the RANDs (16 octets each). Returns one
        64-octet record per vector, concatenated::

            [0:8] MAC-A  [8:16] MAC-S(unused)  [16:22] SQN ⊕ AK  [22:24] -
            [24:32] XRES  [32:48] CK  [48:64] IK

        SQN ⊕ AK is folded into the output mask so it costs no per-vector work.
        """
        n = len(sqns)
        amf = check_len("AMF", amf, 2)
        if len(rands) != 16 * n:
            raise ValueError("rands must hold 16 octets per SQN")
        temps = self._upd(
            (int.from_bytes(rands, "big") ^ int.from_bytes(self._opc * n, "big")).to_bytes(
                16 * n, "big"
            )
        )
        # Kernel inputs per vector: TEMP, TEMP, rot32(TEMP), rot64(TEMP) bytes-wise,
        # then one XOR with the constants and IN1 for the whole batch.
        blocks = b"".join(
            [
                t + t + t[4:] + t[:4] + t[8:] + t[:8]
                for t in [temps[i : i + 16] for i in range(0, 16 * n, 16)]
            ]
        )
        const = (
            (self._a1.to_bytes(16, "big"))
            + self._a2.to_bytes(16, "big")
            + self._a3.to_bytes(16, "big")
            + self._a4.to_bytes(16, "big")
        )
        zero48 = bytes(48)
        zero42 = bytes(42)
        zero16 = bytes(16)
        in_mask = b"".join([(s + amf) * 2 + zero48 for s in sqns])
        out_mask = b"".join([zero16 + s + zero42 for s in sqns])
        outs = self._upd(
            (
                int.from_bytes(blocks, "big")
                ^ int.from_bytes(const * n, "big")
                ^ int.from_bytes(in_mask, "big")
            ).to_bytes(64 * n, "big")
        )
        opc4 = self._opc.__mul__(4)
        return (
            int.from_bytes(outs, "big")
            ^ int.from_bytes(opc4 * n, "big")
            ^ int.from_bytes(out_mask, "big")
        ).to_bytes(64 * n, "big")
