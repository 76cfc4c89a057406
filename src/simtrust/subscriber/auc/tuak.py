"""TUAK, the Keccak-based 3GPP authentication functions (TS 35.231), with TOPc from TOP.

The INOUT block of TS 35.231 §6 is built from TOPc (or TOP), INSTANCE, ALGONAME
"TUAK1.0", RAND, AMF, SQN and K, each written in reversed octet order, then
Keccak-f[1600] runs ``keccak_iterations`` times (§6.1–6.5; the hand-written
permutation is in :mod:`.keccak`); with the C extension built the whole kernel
(INOUT, the permutations, OUT) is one native call, and :func:`tuak_core_reference`
stays as the Python path the tests compare it with. INSTANCE encodes the function and the output
lengths (§6.2): MAC 64/128/256, RES 32/64/128/256, CK/IK 128/256, K 128/256.
Conformance data in TS 35.233.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import check_len
from simtrust.subscriber.auc.keccak import keccak_f1600_bytes

_native: ModuleType | None
try:
    from simtrust.subscriber.auc import _native
except ImportError:  # installed without a C compiler: the Python kernel serves
    _native = None

__all__ = ["TUAK_BACKEND", "Tuak", "TuakF2345", "TuakOutput", "compute_topc",
           "tuak_core_reference"]

#: ``"c"`` when the TUAK kernel runs in the C extension, else ``"python"``.
TUAK_BACKEND = "c" if _native is not None and hasattr(_native, "tuak_core") else "python"

_ALGONAME = b"TUAK1.0"
_ZERO16 = bytes(16)
_LEN_CODE = {8: 0x08, 16: 0x10, 32: 0x20}  # MAC or RES length in octets → INSTANCE bits
_RES_CODE = {4: 0x00, **_LEN_CODE}


def tuak_core_reference(
    top: bytes, instance: int, rand: bytes, amf: bytes, sqn: bytes, k: bytes, iterations: int
) -> bytes:
    """The kernel in Python: INOUT of TS 35.231 §6, permuted ``iterations`` times."""
    pad = 32 - len(k)
    block = b"".join(
        (
            top[::-1],
            bytes((instance,)),
            _ALGONAME[::-1],
            rand[::-1],
            amf[::-1],
            sqn[::-1],
            k[::-1],
            bytes(pad),
            b"\x1f",
            bytes(38),
            b"\x80",
            bytes(64),
        )
    )
    return keccak_f1600_bytes(block, iterations)


_core = _native.tuak_core if TUAK_BACKEND == "c" and _native is not None else tuak_core_reference


def _check_iterations(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 255:
        raise InvalidInput("keccak_iterations must be an integer 1..255", field="keccak_iterations")
    return n


def compute_topc(k: bytes, top: bytes, keccak_iterations: int = 1) -> bytes:
    """TOPc from TOP and K (TS 35.231 §6.2, INSTANCE 0x00 or 0x01 for a 256-bit K)."""
    k = check_len("K", k, 16, 32)
    top = check_len("TOP", top, 32)
    it = _check_iterations(keccak_iterations)
    out = _core(top, 0x01 if len(k) == 32 else 0x00, _ZERO16, b"\0\0", bytes(6), k, it)
    return out[:32][::-1]


class TuakF2345(NamedTuple):
    """RES (f2), CK (f3), IK (f4), AK (f5) at the configured lengths."""

    res: bytes
    ck: bytes
    ik: bytes
    ak: bytes

    def __repr__(self) -> str:
        return "TuakF2345(<redacted>)"


class TuakOutput(NamedTuple):
    """All seven outputs for one (RAND, SQN, AMF), as in the TS 35.233 tables."""

    f1: bytes
    f1star: bytes
    f2: bytes
    f3: bytes
    f4: bytes
    f5: bytes
    f5star: bytes

    def __repr__(self) -> str:
        return "TuakOutput(<redacted>)"


class Tuak:
    """TUAK for one K (128 or 256 bits) and TOPc, with fixed output lengths.

    Lengths are in bits, as the operator configures them per SIM profile.
    """

    __slots__ = ("_ck", "_ik", "_it", "_k", "_kbit", "_mac", "_res", "_topc")

    def __init__(
        self,
        k: bytes,
        topc: bytes,
        *,
        mac_bits: int = 64,
        res_bits: int = 64,
        ck_bits: int = 128,
        ik_bits: int = 128,
        keccak_iterations: int = 1,
    ) -> None:
        self._k = check_len("K", k, 16, 32)
        self._topc = check_len("TOPc", topc, 32)
        if mac_bits not in (64, 128, 256):
            raise InvalidInput("MAC length must be 64, 128 or 256 bits", field="mac_bits")
        if res_bits not in (32, 64, 128, 256):
            raise InvalidInput("RES length must be 32, 64, 128 or 256 bits", field="res_bits")
        if ck_bits not in (128, 256):
            raise InvalidInput("CK length must be 128 or 256 bits", field="ck_bits")
        if ik_bits not in (128, 256):
            raise InvalidInput("IK length must be 128 or 256 bits", field="ik_bits")
        self._mac = mac_bits // 8
        self._res = res_bits // 8
        self._ck = ck_bits // 8
        self._ik = ik_bits // 8
        self._it = _check_iterations(keccak_iterations)
        self._kbit = 0x01 if len(self._k) == 32 else 0x00

    @classmethod
    def from_top(cls, k: bytes, top: bytes, **params: int) -> Tuak:
        """Derive TOPc from TOP (with the same Keccak iteration count) and build."""
        return cls(k, compute_topc(k, top, params.get("keccak_iterations", 1)), **params)

    @property
    def topc(self) -> bytes:
        """TOPc (secret)."""
        return self._topc

    @property
    def mac_bits(self) -> int:
        return self._mac * 8

    @property
    def res_bits(self) -> int:
        return self._res * 8

    def __repr__(self) -> str:
        return (
            f"Tuak(k=<redacted>, topc=<redacted>, mac_bits={self._mac * 8}, "
            f"res_bits={self._res * 8}, ck_bits={self._ck * 8}, ik_bits={self._ik * 8}, "
            f"keccak_iterations={self._it})"
        )

    def _mac_fn(self, base: int, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        rand = check_len("RAND", rand, 16)
        sqn = check_len("SQN", sqn, 6)
        amf = check_len("AMF", amf, 2)
        inst = base | _LEN_CODE[self._mac] | self._kbit
        out = _core(self._topc, inst, rand, amf, sqn, self._k, self._it)
        return out[: self._mac][::-1]

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A (TS 35.231 §6.3, INSTANCE bit 1 = 0)."""
        return self._mac_fn(0x00, rand, sqn, amf)

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S (TS 35.231 §6.3, INSTANCE bit 1 = 1)."""
        return self._mac_fn(0x80, rand, sqn, amf)

    def f2345(self, rand: bytes) -> TuakF2345:
        """RES, CK, IK, AK (TS 35.231 §6.4)."""
        rand = check_len("RAND", rand, 16)
        inst = (
            0x40
            | _RES_CODE[self._res]
            | (0x04 if self._ck == 32 else 0)
            | (0x02 if self._ik == 32 else 0)
            | self._kbit
        )
        out = _core(self._topc, inst, rand, b"\0\0", bytes(6), self._k, self._it)
        return TuakF2345(
            res=out[: self._res][::-1],
            ck=out[32 : 32 + self._ck][::-1],
            ik=out[64 : 64 + self._ik][::-1],
            ak=out[96:102][::-1],
        )

    def f5star(self, rand: bytes) -> bytes:
        """AK for resynchronisation (TS 35.231 §6.5)."""
        rand = check_len("RAND", rand, 16)
        out = _core(self._topc, 0xC0 | self._kbit, rand, b"\0\0", bytes(6), self._k, self._it)
        return out[96:102][::-1]

    @property
    def fits_kernel_layout(self) -> bool:
        """Whether the outputs fit MILENAGE's 64-octet kernel record (64-bit MAC and RES,
        128-bit CK and IK), so :meth:`kernel_batch` serves the batched vector paths."""
        return (self._mac, self._res, self._ck, self._ik) == (8, 8, 16, 16)

    def kernel_batch(self, rands: bytes, sqns: bytes, amf: bytes) -> bytes:
        """Kernel records in MILENAGE's layout (``Milenage.kernel``), one per vector:
        MAC-A, MAC-S, SQN ⊕ AK, XRES, CK, IK; in one native call when built."""
        n = len(rands) // 16
        if not self.fits_kernel_layout:
            raise InvalidInput("kernel records need 64-bit MAC/RES and 128-bit CK/IK")
        if len(rands) != 16 * n or len(sqns) != 6 * n or n == 0:
            raise InvalidInput("rands and sqns must hold 16 and 6 octets per vector")
        check_len("AMF", amf, 2)
        inst_mac = _LEN_CODE[self._mac] | self._kbit
        inst_f2345 = 0x40 | _RES_CODE[self._res] | self._kbit
        if TUAK_BACKEND == "c" and _native is not None:
            records: bytes = _native.tuak_kernel_batch(self._topc, self._k, inst_mac, inst_f2345,
                                                       rands, sqns, amf, self._it)
            return records
        return self.kernel_batch_reference(rands, sqns, amf)

    def kernel_batch_reference(self, rands: bytes, sqns: bytes, amf: bytes) -> bytes:
        """:meth:`kernel_batch` from the single functions (the reference for the C one)."""
        out = bytearray()
        for i in range(len(rands) // 16):
            rand, sqn = rands[16 * i : 16 * i + 16], sqns[6 * i : 6 * i + 6]
            f = self.f2345(rand)
            sqn_ak = bytes(a ^ b for a, b in zip(sqn, f.ak, strict=True))
            out += (self.f1(rand, sqn, amf) + self.f1star(rand, sqn, amf) + sqn_ak
                    + bytes(2) + f.res + f.ck + f.ik)
        return bytes(out)

    def compute(self, rand: bytes, sqn: bytes, amf: bytes) -> TuakOutput:
        """All seven functions."""
        f = self.f2345(rand)
        return TuakOutput(
            f1=self.f1(rand, sqn, amf),
            f1star=self.f1star(rand, sqn, amf),
            f2=f.res,
            f3=f.ck,
            f4=f.ik,
            f5=f.ak,
            f5star=self.f5star(rand),
        )
