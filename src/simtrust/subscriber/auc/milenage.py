"""MILENAGE, the AES-based 3GPP authentication functions f1, f1*, f2, f3, f4, f5, f5*.

Follows 3GPP TS 35.206 §4.1 (OPc = E_K(OP) ⊕ OP) and §4.1–4.2 (the kernel with
r1..r5 = 64, 0, 32, 64, 96 and c1..c5 = 0, 1, 2, 4, 8); conformance data in
TS 35.208. AES comes from ``cryptography`` (one ECB encryptor per K, reused);
:meth:`Milenage.eps_vector_native` computes a whole EPS vector (f1-f5 and
K_ASME) in one call of the C extension, on OpenSSL's AES and SHA-256.

Speed: OUT1..OUT5 depend only on TEMP = E_K(RAND ⊕ OPc), so every kernel block is
formed from TEMP by byte rotations and one XOR with a per-key constant, and all
of them go through AES in one ``update`` call; :meth:`Milenage.kernel_batch`
does the same for many RANDs of one SIM at once (two AES calls per batch).
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple, TypeVar

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import check_len

__all__ = ["F2345", "NATIVE_EPS", "Milenage", "MilenageOutput", "compute_opc"]

_native: ModuleType | None
try:
    from simtrust.subscriber.auc import _native
except ImportError:  # pragma: no cover - the C extension is optional
    _native = None
#: Whether :meth:`Milenage.eps_vector_native` is available (the C extension is built).
NATIVE_EPS = _native is not None and hasattr(_native, "milenage_eps")

T = TypeVar("T")

_MASK128 = (1 << 128) - 1


def _rot(x: int, r: int) -> int:
    """Cyclic left rotation of a 128-bit integer by ``r`` bits (TS 35.206 §4.1)."""
    r %= 128
    return ((x << r) | (x >> (128 - r))) & _MASK128 if r else x


def compute_opc(k: bytes, op: bytes) -> bytes:
    """OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1)."""
    k = check_len("K", k, 16)
    op = check_len("OP", op, 16)
    # ECB of single 128-bit blocks is how TS 35.206 defines the kernel E_K.
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()  # noqa: S305
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

    __slots__ = ("_a1", "_a2", "_a3", "_a4", "_a5", "_cache", "_enc", "_k", "_opc", "_opc_int",
                 "_upd")

    def __init__(self, k: bytes, opc: bytes) -> None:
        k = check_len("K", k, 16)
        opc = check_len("OPc", opc, 16)
        enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()  # noqa: S305  (the E_K kernel)
        self._k = k  # for the native one-call vector (its AES context is built per call)
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
        self._cache: dict[tuple[bytes, int], tuple[int, int]] = {}

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

    # -- vector material (the hot path of vector generation) -------------------

    def _const(self, amf: bytes, n: int) -> tuple[int, int]:
        """(kernel-input constant, output mask) for ``n`` records with this AMF, cached."""
        key = (amf, n)
        hit = self._cache.get(key)
        if hit is None:
            in1_amf = int.from_bytes((bytes(6) + amf) * 2, "big")
            one = (
                (self._a1 ^ in1_amf).to_bytes(16, "big")
                + self._a2.to_bytes(16, "big")
                + self._a3.to_bytes(16, "big")
                + self._a4.to_bytes(16, "big")
            )
            hit = (int.from_bytes(one * n, "big"), int.from_bytes(self._opc * (4 * n), "big"))
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def kernel(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """The 64-octet vector record for one (RAND, SQN, AMF), in two AES calls.

        Layout (the same per record in :meth:`kernel_batch`)::

            [0:8] MAC-A  [8:16] MAC-S  [16:22] SQN ⊕ AK  [22:24] -
            [24:32] XRES  [32:48] CK  [48:64] IK
        """
        if len(rand) != 16 or len(sqn) != 6 or len(amf) != 2:
            check_len("RAND", rand, 16)
            check_len("SQN", sqn, 6)
            check_len("AMF", amf, 2)
        t = self._upd((int.from_bytes(rand, "big") ^ self._opc_int).to_bytes(16, "big"))
        const, opc4 = self._const(amf, 1)
        s = int.from_bytes(sqn, "big")
        x = int.from_bytes(t + t + t[4:] + t[:4] + t[8:] + t[:8], "big") ^ const
        out = self._upd((x ^ ((s << 64 | s) << 400)).to_bytes(64, "big"))
        return (int.from_bytes(out, "big") ^ opc4 ^ (s << 336)).to_bytes(64, "big")

    def eps_vector_native(self, rand: bytes, sqn: bytes, amf: bytes, sn_id: bytes,
                          cls: type[T]) -> T:
        """``cls(RAND, XRES, AUTN, K_ASME)``: f1-f5 and K_ASME (TS 33.401 A.2) in one C call
        (``_native.milenage_eps``); the same vector as :meth:`kernel` and the Python KDF.
        Only when :data:`NATIVE_EPS` is true."""
        assert _native is not None
        out: T = _native.milenage_eps(self._k, self._opc, rand, sqn, amf, sn_id, cls)
        return out

    def kernel_batch(self, rands: bytes, sqns: bytes, amf: bytes) -> bytes:
        """:meth:`kernel` records for many vectors of this SIM, in two AES calls in all.

        ``rands`` and ``sqns`` are concatenations (16 and 6 octets per vector).
        The per-vector rotations and placements are strided memoryview copies, so
        the Python work per vector is a constant few operations.
        """
        n = len(rands) // 16
        if len(rands) != 16 * n or len(sqns) != 6 * n or n == 0:
            raise InvalidInput("rands and sqns must hold 16 and 6 octets per vector")
        check_len("AMF", amf, 2)
        const, opc4 = self._const(amf, n)
        temps = memoryview(
            self._upd((int.from_bytes(rands, "big") ^ self._const_opc(n)).to_bytes(16 * n, "big"))
        ).cast("I")
        # Kernel inputs per vector, in 32-bit words w0..w3 of TEMP:
        # [w0 w1 w2 w3] [w0 w1 w2 w3] [w1 w2 w3 w0] [w2 w3 w0 w1]
        blocks = bytearray(64 * n)
        bw = memoryview(blocks).cast("I")
        for dst, src in _KERNEL_WORDS:
            bw[dst::16] = temps[src::4]
        # SQN into IN1 (octets 0..5 and 8..13) and into the output (16..21).
        in_mask = bytearray(64 * n)
        out_mask = bytearray(64 * n)
        for j in range(6):
            col = sqns[j::6]
            in_mask[j::64] = col
            in_mask[8 + j :: 64] = col
            out_mask[16 + j :: 64] = col
        x = int.from_bytes(blocks, "big") ^ const ^ int.from_bytes(in_mask, "big")
        out = self._upd(x.to_bytes(64 * n, "big"))
        return (int.from_bytes(out, "big") ^ opc4 ^ int.from_bytes(out_mask, "big")).to_bytes(
            64 * n, "big"
        )

    def _const_opc(self, n: int) -> int:
        key = (b"", n)
        hit = self._cache.get(key)
        if hit is None:
            hit = (int.from_bytes(self._opc * n, "big"), 0)
            self._cache[key] = hit
        return hit[0]


_KERNEL_WORDS = (
    (0, 0), (1, 1), (2, 2), (3, 3),
    (4, 0), (5, 1), (6, 2), (7, 3),
    (8, 1), (9, 2), (10, 3), (11, 0),
    (12, 2), (13, 3), (14, 0), (15, 1),
)  # fmt: skip
