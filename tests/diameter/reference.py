"""An independent MILENAGE (TS 35.206 §4.1) and K_ASME (TS 33.401 Annex A.2) for the tests.

Written from the specification with AES from ``cryptography``; it shares no
code with :mod:`simtrust.subscriber.auc`, so vectors that pass here were
checked by a second implementation.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: TS 35.208 test set 1.
K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
RAND1 = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
SQN1 = bytes.fromhex("ff9bb4d0b607")
AMF1 = bytes.fromhex("b9b9")


def _aes(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot(block: bytes, bits: int) -> bytes:
    n = int.from_bytes(block, "big")
    n = ((n << bits) | (n >> (128 - bits))) & ((1 << 128) - 1)
    return n.to_bytes(16, "big")


_R = {1: 64, 2: 0, 3: 32, 4: 64, 5: 96}
_CI = {1: 0, 2: 1, 3: 2, 4: 4, 5: 8}


def _out(k: bytes, opc: bytes, temp: bytes, n: int) -> bytes:
    return _xor(_aes(k, _xor(_rot(_xor(temp, opc), _R[n]), _CI[n].to_bytes(16, "big"))), opc)


def f1(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes, star: bool = False) -> bytes:
    temp = _aes(k, _xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = _xor(_aes(k, _xor(_rot(_xor(in1, opc), 64), temp)), opc)
    return out1[8:] if star else out1[:8]


def f2345(k: bytes, opc: bytes, rand: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """(RES, CK, IK, AK, AK*)."""
    temp = _aes(k, _xor(rand, opc))
    out2 = _out(k, opc, temp, 2)
    out3 = _out(k, opc, temp, 3)
    out4 = _out(k, opc, temp, 4)
    out5 = _out(k, opc, temp, 5)
    return out2[8:], out3, out4, out2[:6], out5[:6]


def plmn_bytes(mcc: str, mnc: str) -> bytes:
    m = [int(c) for c in mcc]
    n = [int(c) for c in mnc]
    return bytes([m[1] << 4 | m[0], (n[2] if len(n) == 3 else 0xF) << 4 | m[2], n[1] << 4 | n[0]])


def kasme(ck: bytes, ik: bytes, sn_id: bytes, sqn_xor_ak: bytes) -> bytes:
    s = b"\x10" + sn_id + b"\x00\x03" + sqn_xor_ak + b"\x00\x06"
    return hmac.new(ck + ik, s, hashlib.sha256).digest()


def check_eutran_vector(rand: bytes, xres: bytes, autn: bytes, k_asme: bytes, sn_id: bytes,
                        k: bytes = K, opc: bytes = OPC) -> bytes:
    """Verify an E-UTRAN vector from scratch; return its SQN."""
    res, ck, ik, ak, _ = f2345(k, opc, rand)
    sqn = _xor(autn[:6], ak)
    amf = autn[6:8]
    assert autn[8:] == f1(k, opc, rand, sqn, amf)
    assert xres == res
    assert k_asme == kasme(ck, ik, sn_id, autn[:6])
    return sqn


def auts(rand: bytes, sqn_ms: bytes, k: bytes = K, opc: bytes = OPC) -> bytes:
    """The AUTS a USIM sends when it rejects SQN (TS 33.102 §6.3.3), AMF* = 0000."""
    ak_star = f2345(k, opc, rand)[4]
    return _xor(sqn_ms, ak_star) + f1(k, opc, rand, sqn_ms, b"\x00\x00", star=True)


def _fc(fc: int, *params: bytes) -> bytes:
    return bytes([fc]) + b"".join(p + len(p).to_bytes(2, "big") for p in params)


def check_5g_he_av(rand: bytes, xres_star: bytes, autn: bytes, k_ausf: bytes, snn: str,
                   k: bytes = K, opc: bytes = OPC) -> bytes:
    """Verify a 5G HE AV (TS 33.501 Annex A.2 K_AUSF, A.4 XRES*); return its SQN."""
    res, ck, ik, ak, _ = f2345(k, opc, rand)
    sqn = _xor(autn[:6], ak)
    assert autn[8:] == f1(k, opc, rand, sqn, autn[6:8])
    name = snn.encode()
    assert xres_star == hmac.new(ck + ik, _fc(0x6B, name, rand, res), hashlib.sha256).digest()[16:]
    assert k_ausf == hmac.new(ck + ik, _fc(0x6A, name, autn[:6]), hashlib.sha256).digest()
    return sqn
