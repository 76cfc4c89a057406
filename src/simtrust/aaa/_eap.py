"""EAP packets (RFC 3748 §4) and the EAP-AKA / EAP-AKA' message format and keys.

EAP-AKA (RFC 4187): attributes (§8, §10), MK = SHA-1(Identity|IK|CK) and the
FIPS 186-2 (change notice 1) pseudo-random function of Appendix A for
K_encr, K_aut, MSK, EMSK (§7), fast re-authentication keys (§5.4), AT_MAC as
HMAC-SHA1-128 (§10.15), AT_ENCR_DATA in AES-128-CBC (§10.12). EAP-AKA'
(RFC 5448 §3, as updated by RFC 9048 §3.3/§3.4): PRF' (HMAC-SHA-256 in the
IKEv2 prf+ construction) for K_encr, K_aut, K_re, MSK, EMSK, AT_MAC as
HMAC-SHA-256-128, AT_KDF_INPUT and AT_KDF; CK'/IK' come from the AuC
(TS 33.402 Annex A.2).

Hand-written because no maintained Python library implements the EAP-AKA
framework; the FIPS 186-2 PRF needs the SHA-1 compression function without
padding, which hashlib does not expose, so it is written here (FIPS 180-2
§6.1.2). Everything else uses hashlib/hmac and cryptography's AES.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simtrust.errors import DecodeError

__all__ = [
    "AkaAttr",
    "AkaKeys",
    "AkaMessage",
    "EapCode",
    "EapPacket",
    "MalformedEap",
    "aka_keys",
    "aka_prime_keys",
    "aka_prime_reauth_keys",
    "aka_reauth_keys",
    "decode_eap",
    "decrypt_attributes",
    "encrypt_attributes",
    "fips186_prf",
    "mac_of",
    "prf_prime",
]

_MASK32 = 0xFFFFFFFF
_sha256 = hashlib.sha256
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_H0 = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)


class MalformedEap(DecodeError):
    """An EAP packet or EAP-AKA attribute that does not parse."""

    code = "malformed-eap"


class EapCode:
    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


class EapType:
    IDENTITY = 1
    NOTIFICATION = 2
    NAK = 3
    AKA = 23
    AKA_PRIME = 50


class Subtype:
    CHALLENGE = 1
    AUTHENTICATION_REJECT = 2
    SYNCHRONIZATION_FAILURE = 4
    IDENTITY = 5
    NOTIFICATION = 12
    REAUTHENTICATION = 13
    CLIENT_ERROR = 14


class AkaAttr:
    """Attribute types (RFC 4187 §11, RFC 5448 §6)."""

    RAND = 1
    AUTN = 2
    RES = 3
    AUTS = 4
    PADDING = 6
    PERMANENT_ID_REQ = 10
    MAC = 11
    NOTIFICATION = 12
    ANY_ID_REQ = 13
    IDENTITY = 14
    FULLAUTH_ID_REQ = 17
    COUNTER = 19
    COUNTER_TOO_SMALL = 20
    NONCE_S = 21
    CLIENT_ERROR_CODE = 22
    KDF_INPUT = 23
    KDF = 24
    IV = 129
    ENCR_DATA = 130
    NEXT_PSEUDONYM = 132
    NEXT_REAUTH_ID = 133
    CHECKCODE = 134
    RESULT_IND = 135
    BIDDING = 136


@dataclass(slots=True)
class EapPacket:
    code: int
    identifier: int
    data: bytes = b""  # type octet and type data (empty for Success/Failure)

    @property
    def type(self) -> int | None:
        return self.data[0] if self.data else None

    def encode(self) -> bytes:
        return struct.pack("!BBH", self.code, self.identifier, 4 + len(self.data)) + self.data


def decode_eap(data: bytes) -> EapPacket:
    if len(data) < 4:
        raise MalformedEap("EAP packet shorter than 4 octets", reason="short")
    code, identifier, length = struct.unpack_from("!BBH", data)
    if length < 4 or length > len(data):
        raise MalformedEap("EAP length inconsistent", reason="length")
    if code not in (1, 2, 3, 4):
        raise MalformedEap("unknown EAP code", reason="code")
    if code in (1, 2) and length < 5:
        raise MalformedEap("EAP request/response without a type", reason="type")
    return EapPacket(code, identifier, data[4:length])


@dataclass(slots=True)
class AkaMessage:
    """An EAP-AKA/AKA' message: type (23 or 50), subtype and attributes in order."""

    method: int
    subtype: int
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr: int) -> bytes | None:
        for kind, value in self.attributes:
            if kind == attr:
                return value
        return None

    def add(self, attr: int, value: bytes) -> None:
        """``value`` is everything after the type and length octets (padded to 4n-2)."""
        if (len(value) + 2) % 4:
            raise ValueError(f"attribute {attr} value must make a multiple of 4 octets")
        self.attributes.append((attr, value))

    def encode_data(self) -> bytes:
        body = b"".join(bytes((k, (len(v) + 2) // 4)) + v for k, v in self.attributes)
        return bytes((self.method, self.subtype, 0, 0)) + body

    @classmethod
    def decode(cls, data: bytes) -> AkaMessage:
        """Parse the type data of an EAP-AKA/AKA' packet (after the EAP header)."""
        if len(data) < 4:
            raise MalformedEap("EAP-AKA header truncated", reason="short")
        message = cls(data[0], data[1])
        offset = 4
        while offset < len(data):
            if offset + 2 > len(data):
                raise MalformedEap("EAP-AKA attribute truncated", reason="attribute")
            kind, units = data[offset], data[offset + 1]
            if units == 0:
                raise MalformedEap("EAP-AKA attribute of length 0", reason="attribute-length")
            end = offset + 4 * units
            if end > len(data):
                raise MalformedEap("EAP-AKA attribute runs past the packet", reason="attribute")
            message.attributes.append((kind, data[offset + 2 : end]))
            offset = end
        return message


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK32


def _sha1_compress(block: bytes) -> bytes:
    """G(t, c) of FIPS 186-2 Appendix 3.3: one SHA-1 compression of ``block`` (64 octets)
    from the initial state, without padding or length (FIPS 180-2 §6.1.2)."""
    w = list(struct.unpack(">16I", block))
    for t in range(16, 80):
        w.append(_rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1))
    a, b, c, d, e = _H0
    for t in range(80):
        if t < 20:
            f, k = (b & c) | (~b & d), 0x5A827999
        elif t < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif t < 60:
            f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        temp = (_rotl(a, 5) + (f & _MASK32) + e + k + w[t]) & _MASK32
        a, b, c, d, e = temp, a, _rotl(b, 30), c, d
    return struct.pack(">5I", *((h + v) & _MASK32 for h, v in zip(_H0, (a, b, c, d, e),
                                                                 strict=True)))


def fips186_prf(xkey: bytes, length: int) -> bytes:
    """The PRF of RFC 4187 Appendix A (FIPS 186-2 change notice 1, §3.1, XSEED = 0)."""
    if len(xkey) != 20:
        raise ValueError("XKEY must be 20 octets")
    key = int.from_bytes(xkey, "big")
    out = b""
    while len(out) < length:
        for _i in range(2):
            w = _sha1_compress(key.to_bytes(20, "big") + bytes(44))
            out += w
            key = (1 + key + int.from_bytes(w, "big")) % (1 << 160)
    return out[:length]


def prf_prime(key: bytes, seed: bytes, length: int) -> bytes:
    """PRF' of RFC 5448 §3.4 (prf+ of RFC 7296 §2.13 with HMAC-SHA-256).

    HMAC (RFC 2104) written out: the key's inner and outer pads are hashed once and
    each block continues copies of those two states, instead of keying a new HMAC per
    block (the RFC 5448 Appendix C vectors check it, tests/aaa/test_eap.py)."""
    if not 0 < length <= 255 * 32:
        raise ValueError("PRF' gives 1 to 8160 octets")
    if len(key) > 64:
        key = _sha256(key).digest()
    padded = key + bytes(64 - len(key))
    inner = _sha256(padded.translate(_IPAD))
    outer = _sha256(padded.translate(_OPAD))
    blocks = []
    last = b""
    for counter in range(1, -(-length // 32) + 1):
        step = inner.copy()
        step.update(last + seed + bytes((counter,)))
        mac = outer.copy()
        mac.update(step.digest())
        last = mac.digest()
        blocks.append(last)
    return b"".join(blocks)[:length]


@dataclass(frozen=True, slots=True)
class AkaKeys:
    """Keys of one full authentication; ``mk`` (AKA) or ``k_re`` (AKA') feeds fast re-auth."""

    k_encr: bytes
    k_aut: bytes
    msk: bytes
    emsk: bytes
    mk: bytes = b""
    k_re: bytes = b""

    def __repr__(self) -> str:
        return "AkaKeys(…)"


def aka_keys(identity: bytes, ik: bytes, ck: bytes) -> AkaKeys:
    """RFC 4187 §7: MK = SHA1(Identity|IK|CK); K_encr, K_aut, MSK, EMSK from the PRF."""
    mk = hashlib.sha1(identity + ik + ck).digest()  # noqa: S324 - RFC 4187 §7
    stream = fips186_prf(mk, 160)
    return AkaKeys(stream[:16], stream[16:32], stream[32:96], stream[96:160], mk=mk)


def aka_reauth_keys(identity: bytes, counter: int, nonce_s: bytes, mk: bytes
                    ) -> tuple[bytes, bytes]:
    """RFC 4187 §7: XKEY' = SHA1(Identity|counter|NONCE_S|MK); (MSK, EMSK)."""
    xkey = hashlib.sha1(  # noqa: S324 - RFC 4187 §7
        identity + counter.to_bytes(2, "big") + nonce_s + mk).digest()
    stream = fips186_prf(xkey, 128)
    return stream[:64], stream[64:128]


def aka_prime_keys(identity: bytes, ck_prime: bytes, ik_prime: bytes) -> AkaKeys:
    """RFC 5448 §3.3: MK = PRF'(IK'|CK', "EAP-AKA'"|Identity) → K_encr, K_aut, K_re, MSK, EMSK."""
    mk = prf_prime(ik_prime + ck_prime, b"EAP-AKA'" + identity, 208)
    return AkaKeys(mk[:16], mk[16:48], mk[80:144], mk[144:208], k_re=mk[48:80])


def aka_prime_reauth_keys(k_re: bytes, identity: bytes, counter: int, nonce_s: bytes
                          ) -> tuple[bytes, bytes]:
    """RFC 5448 §3.3: MK = PRF'(K_re, "EAP-AKA' re-auth"|Identity|counter|NONCE_S)."""
    mk = prf_prime(k_re, b"EAP-AKA' re-auth" + identity + counter.to_bytes(2, "big") + nonce_s,
                   128)
    return mk[:64], mk[64:128]


def mac_of(method: int, k_aut: bytes, packet: bytes, extra: bytes = b"") -> bytes:
    """AT_MAC value over ``packet`` (its AT_MAC zeroed) and ``extra`` (RFC 4187 §10.15,
    RFC 5448 §3.4: HMAC-SHA1-128 for AKA, HMAC-SHA-256-128 for AKA')."""
    digest = _sha256 if method == EapType.AKA_PRIME else hashlib.sha1
    if len(k_aut) > 64:
        return hmac.new(k_aut, packet + extra, digest).digest()[:16]
    # HMAC (RFC 2104) written out: two hash calls, no HMAC object to key.
    padded = k_aut + bytes(64 - len(k_aut))
    inner = digest(padded.translate(_IPAD) + packet + extra).digest()
    return digest(padded.translate(_OPAD) + inner).digest()[:16]


def zero_mac(packet: bytes) -> bytes:
    """``packet`` (a whole EAP-AKA packet) with its AT_MAC value set to zeros."""
    offset = 8
    while offset + 2 <= len(packet):
        kind, units = packet[offset], packet[offset + 1]
        if units == 0:
            break
        if kind == AkaAttr.MAC and units == 5:
            return packet[: offset + 4] + bytes(16) + packet[offset + 20 :]
        offset += 4 * units
    return packet


def encrypt_attributes(k_encr: bytes, iv: bytes, attributes: list[tuple[int, bytes]]) -> bytes:
    """AT_ENCR_DATA value (after its 2 reserved octets): AES-128-CBC of the attributes,
    padded with AT_PADDING to a multiple of 16 (RFC 4187 §10.12)."""
    plain = b"".join(bytes((k, (len(v) + 2) // 4)) + v for k, v in attributes)
    short = -len(plain) % 16
    if short:
        plain += bytes((AkaAttr.PADDING, short // 4)) + bytes(short - 2)
    encryptor = Cipher(algorithms.AES(k_encr), modes.CBC(iv)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def decrypt_attributes(k_encr: bytes, iv: bytes, data: bytes) -> list[tuple[int, bytes]]:
    if not data or len(data) % 16:
        raise MalformedEap("AT_ENCR_DATA is not a multiple of 16 octets", reason="encr-data")
    decryptor = Cipher(algorithms.AES(k_encr), modes.CBC(iv)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    return [(k, v) for k, v in AkaMessage.decode(b"\x00\x00\x00\x00" + plain).attributes
            if k != AkaAttr.PADDING]


def identity_value(text: bytes) -> bytes:
    """AT_IDENTITY / AT_NEXT_PSEUDONYM / AT_NEXT_REAUTH_ID value: actual length + padded."""
    return len(text).to_bytes(2, "big") + text + bytes(-(len(text) + 4) % 4)


def read_identity(value: bytes) -> bytes:
    if len(value) < 2:
        raise MalformedEap("identity attribute truncated", reason="identity")
    size = int.from_bytes(value[:2], "big")
    if size > len(value) - 2:
        raise MalformedEap("identity length exceeds its attribute", reason="identity")
    return value[2 : 2 + size]
