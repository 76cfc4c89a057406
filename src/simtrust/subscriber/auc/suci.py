"""SUCI concealment and de-concealment (TS 33.501 §6.12.2, Annex C; TS 23.003 §2.2B).

Schemes: the null scheme (0x0), ECIES profile A (0x1: X25519) and profile B
(0x2: secp256r1, compressed ephemeral point), each with the ANSI X9.63 KDF over
SHA-256 (SharedInfo1 = the ephemeral public key), AES-128-CTR with the derived
ICB, and HMAC-SHA-256 truncated to 64 bits (Annex C.3.2–C.3.4). Scheme input
for an IMSI is the MSIN in BCD with swapped nibbles and an 'F' filler (C.3.3).

String form (TS 23.003 §2.2B, TS 29.503 ``Suci`` pattern)::

    suci-0-<MCC>-<MNC>-<routing indicator>-<scheme>-<key id>-<scheme output>
    suci-1-<home network domain>-<routing indicator>-<scheme>-<key id>-<scheme output>

The home network's private keys are :class:`HomeNetworkKey` objects whose repr
never shows key material. ``cryptography`` provides X25519, P-256, the KDF,
AES-CTR and HMAC.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from simtrust.errors import DecryptionFailed, InvalidIdentifier, InvalidInput, UnknownKey

__all__ = [
    "NULL_SCHEME",
    "PROFILE_A",
    "PROFILE_B",
    "HomeNetworkKey",
    "Suci",
    "conceal_imsi",
    "decode_msin",
    "deconceal",
    "ecies_decrypt",
    "ecies_encrypt",
    "encode_msin",
    "parse_suci",
]

NULL_SCHEME = 0
PROFILE_A = 1
PROFILE_B = 2
_MAC_LEN = 8


def encode_msin(msin: str) -> bytes:
    """MSIN digits → BCD octets, low nibble first, 'F' filler (TS 33.501 C.3.3)."""
    if not (msin.isascii() and msin.isdigit()) or not 1 <= len(msin) <= 10:
        raise InvalidIdentifier("MSIN must be 1..10 digits", field="msin")
    digits = [int(c) for c in msin] + ([0xF] if len(msin) % 2 else [])
    return bytes((digits[i + 1] << 4) | digits[i] for i in range(0, len(digits), 2))


def decode_msin(data: bytes) -> str:
    """BCD octets → MSIN digits; raises DecryptionFailed on non-digit nibbles."""
    out = []
    for i, b in enumerate(data):
        lo, hi = b & 0xF, b >> 4
        if lo > 9:
            raise DecryptionFailed("scheme output does not decode to MSIN digits")
        out.append(str(lo))
        if hi == 0xF and i == len(data) - 1:
            break
        if hi > 9:
            raise DecryptionFailed("scheme output does not decode to MSIN digits")
        out.append(str(hi))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class HomeNetworkKey:
    """A home network private key for one protection scheme and key identifier."""

    scheme: int
    key_id: int
    _private: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if self.scheme not in (PROFILE_A, PROFILE_B):
            raise InvalidInput("home network keys exist for profiles A (1) and B (2)")
        if not 1 <= self.key_id <= 255:
            raise InvalidInput("home network public key identifier must be 1..255")
        want = x25519.X25519PrivateKey if self.scheme == PROFILE_A else ec.EllipticCurvePrivateKey
        if not isinstance(self._private, want):
            raise InvalidInput("private key type does not match the protection scheme")

    def __repr__(self) -> str:
        return f"HomeNetworkKey(scheme={self.scheme}, key_id={self.key_id}, private=<redacted>)"

    @classmethod
    def from_private_bytes(cls, scheme: int, key_id: int, private: bytes) -> HomeNetworkKey:
        """Profile A: 32-octet X25519 scalar; profile B: 32-octet P-256 scalar."""
        if len(private) != 32:
            raise InvalidInput("home network private key must be 32 octets")
        if scheme == PROFILE_A:
            return cls(scheme, key_id, x25519.X25519PrivateKey.from_private_bytes(private))
        if scheme == PROFILE_B:
            try:
                key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
            except ValueError:
                raise InvalidInput("not a valid P-256 private scalar") from None
            return cls(scheme, key_id, key)
        raise InvalidInput("home network keys exist for profiles A (1) and B (2)")

    @classmethod
    def generate(cls, scheme: int, key_id: int) -> HomeNetworkKey:
        """A fresh key pair from the library's CSPRNG."""
        if scheme == PROFILE_A:
            return cls(scheme, key_id, x25519.X25519PrivateKey.generate())
        if scheme == PROFILE_B:
            return cls(scheme, key_id, ec.generate_private_key(ec.SECP256R1()))
        raise InvalidInput("home network keys exist for profiles A (1) and B (2)")

    @property
    def public_bytes(self) -> bytes:
        """Profile A: 32 octets; profile B: compressed point (33 octets), as provisioned."""
        return _public_bytes(self._private)

    def shared_secret(self, ephemeral_public: bytes) -> bytes:
        """ECDH with the UE's ephemeral public key (TS 33.501 C.3.3)."""
        try:
            if isinstance(self._private, x25519.X25519PrivateKey):
                peer = x25519.X25519PublicKey.from_public_bytes(ephemeral_public)
                return self._private.exchange(peer)
            point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral_public)
            return self._private.exchange(ec.ECDH(), point)
        except ValueError:
            raise DecryptionFailed("ephemeral public key rejected") from None


def _public_bytes(key: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(key, x25519.X25519PrivateKey):
        return key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )


def _keys(shared: bytes, eph_public: bytes) -> tuple[bytes, bytes, bytes]:
    """(enc key, ICB, MAC key) = X9.63-KDF(Z, SharedInfo1 = ephemeral public key)."""
    okm = X963KDF(algorithm=hashes.SHA256(), length=64, sharedinfo=eph_public).derive(shared)
    return okm[:16], okm[16:32], okm[32:]


def _ctr(key: bytes, icb: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(icb)).encryptor()
    return enc.update(data) + enc.finalize()


def _mac(key: bytes, data: bytes) -> bytes:
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()[:_MAC_LEN]


def _eph_len(scheme: int) -> int:
    return 32 if scheme == PROFILE_A else 33


def ecies_encrypt(
    scheme: int, hn_public: bytes, plaintext: bytes, eph_private: bytes | None
) -> bytes:
    """Scheme output = ephemeral public key ‖ ciphertext ‖ MAC tag (TS 33.501 C.3.2)."""
    eph: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey
    try:
        if scheme == PROFILE_A:
            eph = (
                x25519.X25519PrivateKey.from_private_bytes(eph_private)
                if eph_private is not None
                else x25519.X25519PrivateKey.generate()
            )
            shared = eph.exchange(x25519.X25519PublicKey.from_public_bytes(hn_public))
        elif scheme == PROFILE_B:
            eph = (
                ec.derive_private_key(int.from_bytes(eph_private, "big"), ec.SECP256R1())
                if eph_private is not None
                else ec.generate_private_key(ec.SECP256R1())
            )
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), hn_public)
            shared = eph.exchange(ec.ECDH(), peer)
        else:
            raise InvalidInput("ECIES exists for profiles A (1) and B (2)")
    except ValueError:
        raise InvalidInput("home network public key or ephemeral key invalid") from None
    eph_pub = _public_bytes(eph)
    enc_key, icb, mac_key = _keys(shared, eph_pub)
    ciphertext = _ctr(enc_key, icb, plaintext)
    return eph_pub + ciphertext + _mac(mac_key, ciphertext)


def ecies_decrypt(key: HomeNetworkKey, output: bytes) -> bytes:
    """Plaintext of a scheme output; MAC failure raises :class:`DecryptionFailed`."""
    n = _eph_len(key.scheme)
    if len(output) < n + 1 + _MAC_LEN:
        raise DecryptionFailed("scheme output too short")
    eph_pub = output[:n]
    if key.scheme == PROFILE_B and eph_pub[0] not in (2, 3):
        raise DecryptionFailed("profile B requires a compressed ephemeral public key")
    ciphertext, tag = output[n:-_MAC_LEN], output[-_MAC_LEN:]
    enc_key, icb, mac_key = _keys(key.shared_secret(eph_pub), eph_pub)
    if not hmac.compare_digest(_mac(mac_key, ciphertext), tag):
        raise DecryptionFailed("SUCI MAC tag does not verify")
    return _ctr(enc_key, icb, ciphertext)


_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class Suci:
    """A parsed SUCI. ``scheme_output`` is the text of the last field (hex or MSIN)."""

    supi_type: int
    home_network: str  # "MCC-MNC" for an IMSI, the domain for a NAI
    routing_indicator: str
    scheme: int
    key_id: int
    scheme_output: str

    def __str__(self) -> str:
        return (
            f"suci-{self.supi_type}-{self.home_network}-{self.routing_indicator}-"
            f"{self.scheme:x}-{self.key_id}-{self.scheme_output}"
        )

    @property
    def mcc(self) -> str:
        return self.home_network.split("-")[0] if self.supi_type == 0 else ""

    @property
    def mnc(self) -> str:
        return self.home_network.split("-")[1] if self.supi_type == 0 else ""


def parse_suci(text: str) -> Suci:
    """Parse the string form; raises :class:`InvalidIdentifier` with the failing part."""
    if not isinstance(text, str) or not text.startswith("suci-"):
        raise InvalidIdentifier("SUCI must start with 'suci-'", reason="prefix")
    parts = text.split("-")
    if len(parts) < 8:
        raise InvalidIdentifier("SUCI has too few fields", reason="fields")
    supi_type = parts[1]
    if supi_type == "0":
        if len(parts) != 8:
            raise InvalidIdentifier("IMSI-based SUCI has 8 fields", reason="fields")
        mcc, mnc = parts[2], parts[3]
        if not (len(mcc) == 3 and (mcc.isascii() and mcc.isdigit())):
            raise InvalidIdentifier("MCC must be 3 digits", reason="mcc")
        if not (len(mnc) in (2, 3) and (mnc.isascii() and mnc.isdigit())):
            raise InvalidIdentifier("MNC must be 2 or 3 digits", reason="mnc")
        home = f"{mcc}-{mnc}"
    elif supi_type == "1":
        home = "-".join(parts[2:-4])
        if not home:
            raise InvalidIdentifier("NAI-based SUCI needs a home network domain", reason="domain")
    else:
        raise InvalidIdentifier("SUPI type must be 0 (IMSI) or 1 (NAI)", reason="supi-type")
    ri, scheme_text, key_text, output = parts[-4:]
    if not (1 <= len(ri) <= 4 and _DIGITS.fullmatch(ri)):
        raise InvalidIdentifier("routing indicator must be 1..4 digits", reason="routing")
    if not (len(scheme_text) == 1 and _HEX.fullmatch(scheme_text)):
        raise InvalidIdentifier("protection scheme is one hex digit", reason="scheme")
    if not (_DIGITS.fullmatch(key_text) and int(key_text) <= 255):
        raise InvalidIdentifier("home network public key id must be 0..255", reason="key-id")
    scheme, key_id = int(scheme_text, 16), int(key_text)
    if scheme == NULL_SCHEME:
        if key_id != 0:
            raise InvalidIdentifier("null scheme requires key id 0", reason="key-id")
        if supi_type == "0" and not (_DIGITS.fullmatch(output) and len(output) <= 10):
            raise InvalidIdentifier("null-scheme output must be the MSIN digits", reason="output")
        if not output:
            raise InvalidIdentifier("empty scheme output", reason="output")
    else:
        if key_id == 0:
            raise InvalidIdentifier("key id 0 is for the null scheme only", reason="key-id")
        if not (_HEX.fullmatch(output) and len(output) % 2 == 0):
            raise InvalidIdentifier("scheme output must be hex octets", reason="output")
        output = output.lower()
    return Suci(int(supi_type), home, ri, scheme, key_id, output)


def deconceal(
    suci: Suci | str,
    keys: Mapping[int, HomeNetworkKey] | Callable[[int, int], HomeNetworkKey | None],
) -> str:
    """The SUPI (``imsi-…`` or ``nai-…``) inside a SUCI (the SIDF, TS 33.501 §6.12.5).

    ``keys`` maps key id → key, or is a callable ``(scheme, key_id) -> key|None``.
    Raises :class:`UnknownKey` for a key the home network does not hold and
    :class:`DecryptionFailed` when the MAC tag does not verify.
    """
    s = parse_suci(suci) if isinstance(suci, str) else suci
    if s.scheme == NULL_SCHEME:
        plain_text = s.scheme_output
    else:
        if s.scheme not in (PROFILE_A, PROFILE_B):
            raise UnknownKey(f"protection scheme {s.scheme} is not supported", scheme=s.scheme)
        key = keys(s.scheme, s.key_id) if callable(keys) else keys.get(s.key_id)
        if key is None or key.scheme != s.scheme:
            raise UnknownKey(
                "no home network key for this scheme and key id", scheme=s.scheme, key_id=s.key_id
            )
        plain = ecies_decrypt(key, bytes.fromhex(s.scheme_output))
        if s.supi_type == 0:
            plain_text = decode_msin(plain)
        else:
            try:
                plain_text = plain.decode("utf-8")
            except UnicodeDecodeError:
                raise DecryptionFailed("NAI username is not UTF-8") from None
    if s.supi_type == 0:
        return f"imsi-{s.mcc}{s.mnc}{plain_text}"
    return f"nai-{plain_text}@{s.home_network}"


def conceal_imsi(
    imsi: str,
    mnc_len: int,
    *,
    routing_indicator: str = "0",
    scheme: int = PROFILE_A,
    key_id: int = 1,
    hn_public_key: bytes | None = None,
    ephemeral_private_key: bytes | None = None,
) -> Suci:
    """The UE side: conceal an IMSI (``imsi-`` prefix optional) into a SUCI.

    ``ephemeral_private_key`` fixes the ephemeral key (test vectors); by default
    a fresh one comes from the library's CSPRNG.
    """
    digits = imsi.removeprefix("imsi-")
    numeric = digits.isascii() and digits.isdigit()
    if not (numeric and 6 <= len(digits) <= 15) or mnc_len not in (2, 3):
        raise InvalidIdentifier("IMSI must be 6..15 digits with a 2- or 3-digit MNC")
    mcc, mnc, msin = digits[:3], digits[3 : 3 + mnc_len], digits[3 + mnc_len :]
    if scheme == NULL_SCHEME:
        output, key_id = msin, 0
    else:
        if hn_public_key is None:
            raise InvalidInput("ECIES profiles need the home network public key")
        output = ecies_encrypt(
            scheme, hn_public_key, encode_msin(msin), ephemeral_private_key
        ).hex()
    return parse_suci(f"suci-0-{mcc}-{mnc}-{routing_indicator}-{scheme:x}-{key_id}-{output}")
