"""3GPP key derivations: the generic KDF and the AKA keys built on it.

- Generic KDF, TS 33.220 Annex B.2: HMAC-SHA-256(Key, FC ‖ P0 ‖ L0 ‖ … ‖ Pn ‖ Ln),
  each Li the two-octet length of Pi.
- K_ASME, TS 33.401 Annex A.2 (FC 0x10, P0 = serving network id, P1 = SQN ⊕ AK).
- CK'/IK' for EAP-AKA', TS 33.402 Annex A.2 and RFC 5448 §3.3 (FC 0x20).
- 5G: K_AUSF (TS 33.501 A.2, FC 0x6A), RES*/XRES* (A.4, FC 0x6B), HRES*/HXRES*
  (A.5, SHA-256), K_SEAF (A.6, FC 0x6C); serving network name per TS 24.501 §9.12.1.

:func:`hmac_sha256` is HMAC (RFC 2104) over ``hashlib.sha256``: for the short
messages of these derivations it is about twice as fast as ``hmac.digest``
(the ipad/opad are formed with ``bytes.translate``), which the vector
generation rate depends on; tests check it against ``hmac.digest``.
"""

from __future__ import annotations

import hashlib

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc._util import HMAC_IPAD, HMAC_OPAD, check_len

__all__ = [
    "ck_ik_prime",
    "hmac_sha256",
    "hres_star",
    "kasme",
    "kausf",
    "kdf",
    "kseaf",
    "plmn_id",
    "res_star",
    "serving_network_name",
]

_sha256 = hashlib.sha256
_IPAD_FILL = {n: b"\x36" * (64 - n) for n in range(65)}
_OPAD_FILL = {n: b"\x5c" * (64 - n) for n in range(65)}


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA-256 (RFC 2104 / FIPS 198-1)."""
    if len(key) > 64:
        key = _sha256(key).digest()
    n = len(key)
    inner = _sha256(key.translate(HMAC_IPAD) + _IPAD_FILL[n] + msg).digest()
    return _sha256(key.translate(HMAC_OPAD) + _OPAD_FILL[n] + inner).digest()


def _encode_params(params: tuple[bytes, ...]) -> bytes:
    parts = []
    for p in params:
        if len(p) > 0xFFFF:
            raise InvalidInput("KDF parameter longer than 65535 octets")
        parts.append(p + len(p).to_bytes(2, "big"))
    return b"".join(parts)


def kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    """The generic KDF of TS 33.220 Annex B.2.0: 256 bits of output."""
    if not 0 <= fc <= 0xFF:
        raise InvalidInput("FC is one octet")
    return hmac_sha256(key, bytes((fc,)) + _encode_params(params))


def plmn_id(mcc: str, mnc: str) -> bytes:
    """Serving network id (PLMN identity, TS 24.008 §10.5.1.13) as 3 octets."""
    if not (len(mcc) == 3 and (mcc.isascii() and mcc.isdigit())):
        raise InvalidInput("MCC must be 3 digits", field="mcc")
    if not (len(mnc) in (2, 3) and (mnc.isascii() and mnc.isdigit())):
        raise InvalidInput("MNC must be 2 or 3 digits", field="mnc")
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    return bytes(((d[1] << 4) | d[0], (mnc3 << 4) | d[2], (m[1] << 4) | m[0]))


def serving_network_name(mcc: str, mnc: str) -> str:
    """``5G:mnc<MNC>.mcc<MCC>.3gppnetwork.org`` (TS 24.501 §9.12.1; MNC padded to 3)."""
    plmn_id(mcc, mnc)  # validates
    return f"5G:mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def kasme(ck: bytes, ik: bytes, sn_id: bytes, sqn_xor_ak: bytes) -> bytes:
    """K_ASME (TS 33.401 A.2): KDF(CK ‖ IK, 0x10, SN id, SQN ⊕ AK)."""
    check_len("SN id", sn_id, 3)
    check_len("SQN xor AK", sqn_xor_ak, 6)
    return kdf(ck + ik, 0x10, sn_id, sqn_xor_ak)


def ck_ik_prime(
    ck: bytes, ik: bytes, access_network: str | bytes, sqn_xor_ak: bytes
) -> tuple[bytes, bytes]:
    """(CK', IK') for EAP-AKA' (TS 33.402 A.2, RFC 5448 §3.3)."""
    check_len("SQN xor AK", sqn_xor_ak, 6)
    name = access_network.encode() if isinstance(access_network, str) else access_network
    if not name:
        raise InvalidInput("access network name must not be empty", field="access_network")
    out = kdf(ck + ik, 0x20, name, sqn_xor_ak)
    return out[:16], out[16:]


def kausf(ck: bytes, ik: bytes, sn_name: str, sqn_xor_ak: bytes) -> bytes:
    """K_AUSF for 5G AKA (TS 33.501 A.2): KDF(CK ‖ IK, 0x6A, SN name, SQN ⊕ AK)."""
    check_len("SQN xor AK", sqn_xor_ak, 6)
    return kdf(ck + ik, 0x6A, sn_name.encode(), sqn_xor_ak)


def res_star(ck: bytes, ik: bytes, sn_name: str, rand: bytes, res: bytes) -> bytes:
    """RES* / XRES* (TS 33.501 A.4): the 128 least significant bits of the KDF."""
    check_len("RAND", rand, 16)
    return kdf(ck + ik, 0x6B, sn_name.encode(), rand, res)[16:]


def hres_star(rand: bytes, res_star_value: bytes) -> bytes:
    """HRES* / HXRES* (TS 33.501 A.5): 128 least significant bits of SHA-256(RAND ‖ RES*)."""
    check_len("RAND", rand, 16)
    check_len("RES*", res_star_value, 16)
    return _sha256(rand + res_star_value).digest()[16:]


def kseaf(k_ausf: bytes, sn_name: str) -> bytes:
    """K_SEAF (TS 33.501 A.6): KDF(K_AUSF, 0x6C, SN name)."""
    check_len("K_AUSF", k_ausf, 32)
    return kdf(k_ausf, 0x6C, sn_name.encode())
