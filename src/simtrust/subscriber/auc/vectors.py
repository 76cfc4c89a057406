"""Authentication vectors: EPS-AKA, 5G-AKA (HE AV and SE AV) and EAP-AKA'.

- AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A (TS 33.102 §6.3.2).
- EPS-AKA vector (RAND, XRES, AUTN, K_ASME): TS 33.401 §6.1.2, the AMF
  separation bit (bit 0 of AMF, TS 33.102 Annex H) set to 1.
- 5G HE AV (RAND, AUTN, XRES*, K_AUSF) and SE AV (RAND, AUTN, HXRES*, K_SEAF):
  TS 33.501 §6.1.3.2 with the derivations of Annex A; separation bit set.
- EAP-AKA' AV (RAND, AUTN, XRES, CK', IK'): TS 33.402 §6.2, RFC 5448 §3.3.

RAND comes from a ``rand`` callable (``n -> n random octets``, default
``os.urandom``), so the functions are deterministic under test. With MILENAGE
the batch generators run the kernel for a whole batch in two AES calls, then
derive the keys in the C extension :mod:`._native` when it is built (OpenSSL's
SHA-256) or in Python, which stays the reference; both give the same octets.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Final, NamedTuple, Protocol

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import (
    HMAC_IPAD,
    HMAC_OPAD,
    IPAD_FILL32,
    OPAD_FILL32,
    check_len,
)
from simtrust.subscriber.auc.kdf import (
    ck_ik_prime,
    hmac_sha256,
    hres_star,
    kausf,
    kseaf,
    res_star,
)
from simtrust.subscriber.auc.milenage import NATIVE_EPS, Milenage
from simtrust.subscriber.auc.sqn import AucSqnState
from simtrust.subscriber.auc.tuak import Tuak

_native: ModuleType | None
try:
    from simtrust.subscriber.auc import _native
except ImportError:  # installed without a C compiler or the OpenSSL headers
    _native = None

__all__ = [
    "KDF_BACKEND",
    "AkaFunctions",
    "EapAkaPrimeVector",
    "EpsVector",
    "F2345Like",
    "HeAv5g",
    "RandSource",
    "SeAv5g",
    "UmtsVector",
    "build_autn",
    "eap_aka_prime_vector",
    "eps_vector",
    "eps_vectors",
    "eps_vectors_checked",
    "he_av_5g",
    "he_avs_5g",
    "se_av_5g",
    "umts_vector",
    "with_separation_bit",
]

RandSource = Callable[[int], bytes]

_sha256 = hashlib.sha256
# Below this many vectors the per-vector kernel beats the batch set-up (measured).
_BATCH_MIN = 4

#: Where the batch generators derive K_ASME, XRES* and K_AUSF: ``"native"`` (the C
#: extension) or ``"python"``.
KDF_BACKEND: Final = "python" if _native is None else "native"


class F2345Like(Protocol):
    @property
    def res(self) -> bytes: ...
    @property
    def ck(self) -> bytes: ...
    @property
    def ik(self) -> bytes: ...
    @property
    def ak(self) -> bytes: ...


class AkaFunctions(Protocol):
    """What vector generation needs of an algorithm set (MILENAGE or TUAK)."""

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes: ...
    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes: ...
    def f2345(self, rand: bytes) -> F2345Like: ...
    def f5star(self, rand: bytes) -> bytes: ...


class EpsVector(NamedTuple):
    """EPS authentication vector (TS 33.401 §6.1.2)."""

    rand: bytes
    xres: bytes
    autn: bytes
    kasme: bytes

    def __repr__(self) -> str:
        return f"EpsVector(rand={self.rand.hex()}, autn={self.autn.hex()}, xres=…, kasme=…)"


class HeAv5g(NamedTuple):
    """5G home environment AV (TS 33.501 §6.1.3.2 step 1)."""

    rand: bytes
    autn: bytes
    xres_star: bytes
    kausf: bytes

    def __repr__(self) -> str:
        return f"HeAv5g(rand={self.rand.hex()}, autn={self.autn.hex()}, xres_star=…, kausf=…)"


class SeAv5g(NamedTuple):
    """5G serving environment AV (TS 33.501 §6.1.3.2 step 5) and K_SEAF."""

    rand: bytes
    autn: bytes
    hxres_star: bytes
    kseaf: bytes

    def __repr__(self) -> str:
        return (
            f"SeAv5g(rand={self.rand.hex()}, autn={self.autn.hex()}, "
            f"hxres_star={self.hxres_star.hex()}, kseaf=…)"
        )


class EapAkaPrimeVector(NamedTuple):
    """EAP-AKA' vector (TS 33.402 §6.2)."""

    rand: bytes
    autn: bytes
    xres: bytes
    ck_prime: bytes
    ik_prime: bytes

    def __repr__(self) -> str:
        return (
            f"EapAkaPrimeVector(rand={self.rand.hex()}, autn={self.autn.hex()}, "
            "xres=…, ck_prime=…, ik_prime=…)"
        )


class UmtsVector(NamedTuple):
    """UMTS authentication vector RAND ‖ XRES ‖ CK ‖ IK ‖ AUTN (TS 33.102 §6.3.2), the
    vector a BSF obtains over Zh for GBA (TS 33.220 §4.5.2)."""

    rand: bytes
    autn: bytes
    xres: bytes
    ck: bytes
    ik: bytes

    def __repr__(self) -> str:
        return f"UmtsVector(rand={self.rand.hex()}, autn={self.autn.hex()}, xres=…, ck=…, ik=…)"


def with_separation_bit(amf: bytes) -> bytes:
    """AMF with bit 0 (the most significant, TS 33.102 Annex H) set to 1."""
    amf = check_len("AMF", amf, 2)
    return bytes((amf[0] | 0x80, amf[1]))


def build_autn(sqn: bytes, ak: bytes, amf: bytes, mac_a: bytes) -> bytes:
    """AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A (TS 33.102 §6.3.2)."""
    check_len("SQN", sqn, 6)
    check_len("AK", ak, 6)
    check_len("AMF", amf, 2)
    x = (int.from_bytes(sqn, "big") ^ int.from_bytes(ak, "big")).to_bytes(6, "big")
    return x + amf + mac_a


class _Material(NamedTuple):
    res: bytes
    ck: bytes
    ik: bytes
    ak: bytes


def _core(alg: AkaFunctions, rand: bytes, sqn: bytes, amf: bytes) -> tuple[bytes, F2345Like]:
    if isinstance(alg, Milenage):
        r = alg.kernel(rand, sqn, amf)
        return r[16:22] + amf + r[:8], _Material(r[24:32], r[32:48], r[48:64], b"")
    f = alg.f2345(rand)
    return build_autn(sqn, f.ak, amf, alg.f1(rand, sqn, amf)), f


def eps_vector(alg: AkaFunctions, sqn: bytes, amf: bytes, sn_id: bytes, rand: bytes) -> EpsVector:
    """One EPS-AKA vector for a given SQN and RAND (separation bit forced to 1)."""
    rand = check_len("RAND", rand, 16)
    check_len("SN id", sn_id, 3)
    amf = with_separation_bit(amf)
    if isinstance(alg, Milenage):
        # The per-request path of the AuC: one kernel call, K_ASME inline (RFC 2104).
        r = alg.kernel(rand, sqn, amf)
        x = r[16:22]
        key = r[32:64]
        msg = b"\x10" + sn_id + b"\x00\x03" + x + b"\x00\x06"
        inner = _sha256(key.translate(HMAC_IPAD) + IPAD_FILL32 + msg).digest()
        k_asme = _sha256(key.translate(HMAC_OPAD) + OPAD_FILL32 + inner).digest()
        return tuple.__new__(EpsVector, (rand, r[24:32], x + amf + r[:8], k_asme))
    autn, f = _core(alg, rand, sqn, amf)
    k = hmac_sha256(f.ck + f.ik, b"\x10" + sn_id + b"\x00\x03" + autn[:6] + b"\x00\x06")
    return EpsVector(rand, f.res, autn, k)


def he_av_5g(alg: AkaFunctions, sqn: bytes, amf: bytes, sn_name: str, rand: bytes) -> HeAv5g:
    """One 5G HE AV for a given SQN and RAND (separation bit forced to 1)."""
    rand = check_len("RAND", rand, 16)
    amf = with_separation_bit(amf)
    if isinstance(alg, Milenage):
        # The per-request path of the UDM/ARPF: one kernel call, XRES* and K_AUSF inline.
        r = alg.kernel(rand, sqn, amf)
        x = r[16:22]
        key = r[32:64]
        name = sn_name.encode()
        snp = name + len(name).to_bytes(2, "big")
        kin = key.translate(HMAC_IPAD) + IPAD_FILL32
        kout = key.translate(HMAC_OPAD) + OPAD_FILL32
        xs_in = _sha256(kin + b"\x6b" + snp + rand + b"\x00\x10" + r[24:32] + b"\x00\x08")
        ka_in = _sha256(kin + b"\x6a" + snp + x + b"\x00\x06")
        return tuple.__new__(
            HeAv5g,
            (
                rand,
                x + amf + r[:8],
                _sha256(kout + xs_in.digest()).digest()[16:],
                _sha256(kout + ka_in.digest()).digest(),
            ),
        )
    autn, f = _core(alg, rand, sqn, amf)
    return HeAv5g(
        rand,
        autn,
        res_star(f.ck, f.ik, sn_name, rand, f.res),
        kausf(f.ck, f.ik, sn_name, autn[:6]),
    )


def se_av_5g(he_av: HeAv5g, sn_name: str) -> SeAv5g:
    """The AUSF's step: HXRES* and K_SEAF from the HE AV (TS 33.501 §6.1.3.2, A.5, A.6)."""
    return SeAv5g(
        he_av.rand, he_av.autn, hres_star(he_av.rand, he_av.xres_star), kseaf(he_av.kausf, sn_name)
    )


def umts_vector(alg: AkaFunctions, sqn: bytes, amf: bytes, rand: bytes) -> UmtsVector:
    """One UMTS AV (TS 33.102 §6.3.2) with the AMF as provisioned."""
    rand = check_len("RAND", rand, 16)
    autn, f = _core(alg, rand, sqn, check_len("AMF", amf, 2))
    return UmtsVector(rand, autn, f.res, f.ck, f.ik)


def eap_aka_prime_vector(
    alg: AkaFunctions, sqn: bytes, amf: bytes, access_network: str, rand: bytes
) -> EapAkaPrimeVector:
    """One EAP-AKA' vector; ``access_network`` is the network name (e.g. the SN name)."""
    rand = check_len("RAND", rand, 16)
    amf = with_separation_bit(amf)
    autn, f = _core(alg, rand, sqn, amf)
    ckp, ikp = ck_ik_prime(f.ck, f.ik, access_network, autn[:6])
    return EapAkaPrimeVector(rand, autn, f.res, ckp, ikp)


def _batch_inputs(
    state: AucSqnState, count: int, rand: RandSource
) -> tuple[bytes, bytes, AucSqnState]:
    if count < 1:
        raise InvalidInput("count must be at least 1", field="count")
    sqns, after = state.issue_joined(count)
    rands = rand(16 * count)
    if not isinstance(rands, bytes) or len(rands) != 16 * count:
        raise InvalidInput("rand source returned the wrong number of octets")
    return rands, sqns, after


def _autns(raw: bytes, n: int, amf: bytes) -> bytes:
    """AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A for every record of a kernel batch."""
    out = bytearray((bytes(6) + amf + bytes(8)) * n)
    for j in range(6):
        out[j::16] = raw[16 + j :: 64]
    memoryview(out).cast("Q")[1::2] = memoryview(raw).cast("Q")[0::8]
    return bytes(out)


def eps_vectors(
    alg: AkaFunctions,
    state: AucSqnState,
    count: int,
    sn_id: bytes,
    amf: bytes = b"\x80\x00",
    rand: RandSource = os.urandom,
) -> tuple[list[EpsVector], AucSqnState]:
    """``count`` EPS vectors with fresh SQNs from ``state``; returns the new state too."""
    return eps_vectors_checked(alg, state, count, check_len("SN id", sn_id, 3),
                               with_separation_bit(amf), rand)


def eps_vectors_checked(
    alg: AkaFunctions, state: AucSqnState, count: int, sn_id: bytes, amf: bytes,
    rand: RandSource,
) -> tuple[list[EpsVector], AucSqnState]:
    """:func:`eps_vectors` for an SN id and an AMF (separation bit set) already checked
    once for many requests of a burst; the same vectors."""
    rands, sqns, after = _batch_inputs(state, count, rand)
    batched = (isinstance(alg, Milenage) and count >= _BATCH_MIN) or (
        isinstance(alg, Tuak) and alg.fits_kernel_layout)  # TUAK: one native call at any size
    if not batched and NATIVE_EPS and isinstance(alg, Milenage):
        # A few vectors (an AIR asks for one): each whole vector in one C call.
        return [alg.eps_vector_native(rands[16 * i:16 * i + 16], sqns[6 * i:6 * i + 6], amf,
                                      sn_id, EpsVector) for i in range(count)], after
    if not batched:
        vecs = [
            eps_vector(alg, sqns[6 * i : 6 * i + 6], amf, sn_id, rands[16 * i : 16 * i + 16])
            for i in range(count)
        ]
        return vecs, after
    assert isinstance(alg, Milenage | Tuak)
    raw = alg.kernel_batch(rands, sqns, amf)
    if _native is not None:
        return _native.eps_batch(raw, rands, sn_id, amf, EpsVector), after
    return _eps_batch(raw, rands, sn_id, amf), after


def _eps_batch(raw: bytes, rands: bytes, sn_id: bytes, amf: bytes) -> list[EpsVector]:
    """EPS vectors from kernel records in Python: the reference for ``_native.eps_batch``."""
    count = len(rands) // 16
    # The HMAC pads for every key of the batch come from two translate() calls;
    # each vector then costs two SHA-256 calls and a few slices (RFC 2104).
    ki = raw.translate(HMAC_IPAD)
    ko = raw.translate(HMAC_OPAD)
    autns = _autns(raw, count, amf)
    head = IPAD_FILL32 + b"\x10" + sn_id + b"\x00\x03"
    sha = _sha256
    new = tuple.__new__
    out: list[EpsVector] = []
    append = out.append
    for o in range(0, 64 * count, 64):
        q = o >> 2
        inner = sha(ki[o + 32 : o + 64] + head + raw[o + 16 : o + 22] + b"\x00\x06").digest()
        append(
            new(
                EpsVector,
                (
                    rands[q : q + 16],
                    raw[o + 24 : o + 32],
                    autns[q : q + 16],
                    sha(ko[o + 32 : o + 64] + OPAD_FILL32 + inner).digest(),
                ),
            )
        )
    return out


def he_avs_5g(
    alg: AkaFunctions,
    state: AucSqnState,
    count: int,
    sn_name: str,
    amf: bytes = b"\x80\x00",
    rand: RandSource = os.urandom,
) -> tuple[list[HeAv5g], AucSqnState]:
    """``count`` 5G HE AVs with fresh SQNs from ``state``; returns the new state too."""
    name = sn_name.encode()
    if len(name) > 0xFFFF:
        # The KDF encodes each parameter's length in two octets (TS 33.220 B.2).
        raise InvalidInput("serving network name longer than 65535 octets", field="sn_name")
    amf = with_separation_bit(amf)
    rands, sqns, after = _batch_inputs(state, count, rand)
    if not isinstance(alg, Milenage) or count < _BATCH_MIN:
        avs = [
            he_av_5g(alg, sqns[6 * i : 6 * i + 6], amf, sn_name, rands[16 * i : 16 * i + 16])
            for i in range(count)
        ]
        return avs, after
    raw = alg.kernel_batch(rands, sqns, amf)
    if _native is not None:
        return _native.he_av_batch(raw, rands, name, amf, HeAv5g), after
    return _he_av_batch(raw, rands, sn_name, amf), after


def _he_av_batch(raw: bytes, rands: bytes, sn_name: str, amf: bytes) -> list[HeAv5g]:
    """5G HE AVs from kernel records in Python: the reference for ``_native.he_av_batch``."""
    count = len(rands) // 16
    ki = raw.translate(HMAC_IPAD)
    ko = raw.translate(HMAC_OPAD)
    autns = _autns(raw, count, amf)
    name = sn_name.encode()
    snp = name + len(name).to_bytes(2, "big")
    rs_head = IPAD_FILL32 + b"\x6b" + snp
    ka_head = IPAD_FILL32 + b"\x6a" + snp
    sha = _sha256
    new = tuple.__new__
    out: list[HeAv5g] = []
    append = out.append
    for o in range(0, 64 * count, 64):
        q = o >> 2
        rnd = rands[q : q + 16]
        kin = ki[o + 32 : o + 64]
        kout = ko[o + 32 : o + 64] + OPAD_FILL32
        xs_in = sha(kin + rs_head + rnd + b"\x00\x10" + raw[o + 24 : o + 32] + b"\x00\x08")
        ka_in = sha(kin + ka_head + raw[o + 16 : o + 22] + b"\x00\x06")
        append(
            new(
                HeAv5g,
                (
                    rnd,
                    autns[q : q + 16],
                    sha(kout + xs_in.digest()).digest()[16:],
                    sha(kout + ka_in.digest()).digest(),
                ),
            )
        )
    return out
