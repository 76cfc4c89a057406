"""Tier-1 key derivations of GBA (TS 33.220) and AKMA (TS 33.535), on the generic 3GPP KDF.

- Generic KDF, TS 33.220 Annex B.2.0: ``HMAC-SHA-256(Key, FC ‖ P0 ‖ L0 ‖ … ‖ Pn ‖ Ln)``,
  each Li the two-octet big-endian length of Pi (:func:`simtrust.subscriber.auc.kdf`).
- GBA: Ks = CK ‖ IK (§4.5.2 step 6); B-TID = base64(RAND)@BSF-server-domain (§4.5.2
  step 7, NAI of RFC 7542); Ks_(ext)_NAF = KDF(Ks, FC 0x01, "gba-me", RAND, IMPI, NAF_Id)
  (§4.5.2 and Annex B.3); NAF_Id = FQDN of the NAF ‖ Ua security protocol identifier
  (five octets of Annex H).
- AKMA: K_AKMA = KDF(K_AUSF, FC 0x80, "AKMA", SUPI) (Annex A.2); A-TID = KDF(K_AUSF,
  FC 0x81, "A-TID", SUPI) (Annex A.3); K_AF = KDF(K_AKMA, FC 0x82, AF_ID) (Annex A.4);
  A-KID = username@realm of RFC 7542 with the routing indicator and A-TID in the username
  and the home network's realm (§5.1, see docs/decisions/bootstrap-identifiers.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from simtrust.errors import InvalidInput
from simtrust.subscriber.auc import kdf

__all__ = [
    "FC_AKMA_A_TID",
    "FC_AKMA_K_AF",
    "FC_AKMA_K_AKMA",
    "FC_GBA_KS_NAF",
    "UA_DIGEST_OVER_TLS",
    "UA_HTTP_DIGEST",
    "UA_SUBSCRIBER_CERTIFICATE",
    "NafId",
    "a_kid",
    "a_tid",
    "b_tid",
    "bsf_domain",
    "home_realm",
    "impi_from_imsi",
    "k_af",
    "k_akma",
    "ks_from_ck_ik",
    "ks_naf",
    "rand_of_b_tid",
]

#: FC values of TS 33.220 Annex B (0x01) and TS 33.535 Annex A (0x80-0x82).
FC_GBA_KS_NAF = 0x01
FC_AKMA_K_AKMA = 0x80
FC_AKMA_A_TID = 0x81
FC_AKMA_K_AF = 0x82

#: Ua security protocol identifiers of TS 33.220 Annex H (organisation 0x01 = 3GPP).
UA_SUBSCRIBER_CERTIFICATE = bytes((0x01, 0x00, 0x00, 0x00, 0x00))  # TS 33.221
UA_HTTP_DIGEST = bytes((0x01, 0x00, 0x00, 0x00, 0x02))  # TS 24.109 Digest without TLS
#: TS 33.222 §5.3/§5.4 (HTTPS; shared-key UE authentication, certificate-based NAF
#: authentication); the last two octets name a TLS cipher suite, zero when not bound.
UA_DIGEST_OVER_TLS = bytes((0x01, 0x00, 0x01, 0x00, 0x00))

_FQDN = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_NAI = re.compile(r"[^@\s]{1,128}@[A-Za-z0-9.-]{1,253}")


@dataclass(frozen=True, slots=True)
class NafId:
    """NAF_Id of TS 33.220 Annex H / AF_ID of TS 33.535: FQDN ‖ Ua security protocol id."""

    fqdn: str
    ua_protocol: bytes = UA_DIGEST_OVER_TLS

    def __post_init__(self) -> None:
        if not _FQDN.fullmatch(self.fqdn):
            raise InvalidInput("NAF id needs a valid FQDN", field="naf_fqdn")
        if len(self.ua_protocol) != 5:
            raise InvalidInput("Ua security protocol identifier is five octets",
                               field="ua_protocol")

    def encode(self) -> bytes:
        return self.fqdn.lower().encode("ascii") + self.ua_protocol

    def __str__(self) -> str:
        return f"{self.fqdn.lower()}#{self.ua_protocol.hex()}"


def _check(name: str, value: bytes, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidInput(f"{name} must be {size} octets", field=name)
    return value


def ks_from_ck_ik(ck: bytes, ik: bytes) -> bytes:
    """Ks = CK ‖ IK (TS 33.220 §4.5.2 step 6)."""
    return _check("CK", ck, 16) + _check("IK", ik, 16)


def impi_from_imsi(imsi: str, mnc_length: int) -> str:
    """The IMPI a USIM without ISIM uses: ``<IMSI>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org``
    (TS 23.003 §13.3), MNC padded to three digits."""
    numeric = imsi.isascii() and imsi.isdigit()
    if not numeric or not 6 <= len(imsi) <= 15 or mnc_length not in (2, 3):
        raise InvalidInput("IMSI must be 6-15 digits with a 2 or 3 digit MNC", field="imsi")
    mcc, mnc = imsi[:3], imsi[3:3 + mnc_length].zfill(3)
    return f"{imsi}@ims.mnc{mnc}.mcc{mcc}.3gppnetwork.org"


def bsf_domain(mcc: str, mnc: str) -> str:
    """BSF address of TS 23.003 §16.2: ``bsf.mnc<MNC>.mcc<MCC>.pub.3gppnetwork.org``."""
    return f"bsf.mnc{mnc.zfill(3)}.mcc{mcc}.pub.3gppnetwork.org"


def home_realm(mcc: str, mnc: str) -> str:
    """The home network realm of an A-KID (TS 23.003 §28.2 home network domain)."""
    return f"5gc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def b_tid(rand: bytes, domain: str) -> str:
    """B-TID = base64(RAND)@BSF server domain (TS 33.220 §4.5.2 step 7)."""
    return base64.b64encode(_check("RAND", rand, 16)).decode("ascii") + "@" + domain


def rand_of_b_tid(value: str) -> bytes:
    """The RAND a B-TID carries (:class:`InvalidInput` if it is not a B-TID)."""
    if not _NAI.fullmatch(value):
        raise InvalidInput("B-TID must be an NAI: base64(RAND)@domain", field="b_tid")
    user = value.split("@", 1)[0]
    try:
        rand = base64.b64decode(user, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("B-TID username is not base64", field="b_tid") from None
    if len(rand) != 16:
        raise InvalidInput("B-TID username does not carry a 16-octet RAND", field="b_tid")
    return rand


def ks_naf(ks: bytes, rand: bytes, impi: str, naf_id: NafId) -> bytes:
    """Ks_(ext)_NAF = KDF(Ks, 0x01, "gba-me", RAND, IMPI, NAF_Id) (TS 33.220 Annex B.3)."""
    return kdf(_check("Ks", ks, 32), FC_GBA_KS_NAF, b"gba-me", _check("RAND", rand, 16),
               impi.encode("utf-8"), naf_id.encode())


def _supi(supi: str) -> bytes:
    """SUPI as KDF input: the IMSI digits (or the NAI) in UTF-8, without the type prefix."""
    for prefix in ("imsi-", "nai-"):
        if supi.startswith(prefix):
            supi = supi[len(prefix):]
    if not supi:
        raise InvalidInput("SUPI must not be empty", field="supi")
    return supi.encode("utf-8")


def k_akma(k_ausf: bytes, supi: str) -> bytes:
    """K_AKMA = KDF(K_AUSF, 0x80, "AKMA", SUPI) (TS 33.535 Annex A.2)."""
    return kdf(_check("K_AUSF", k_ausf, 32), FC_AKMA_K_AKMA, b"AKMA", _supi(supi))


def a_tid(k_ausf: bytes, supi: str) -> bytes:
    """A-TID = KDF(K_AUSF, 0x81, "A-TID", SUPI) (TS 33.535 Annex A.3)."""
    return kdf(_check("K_AUSF", k_ausf, 32), FC_AKMA_A_TID, b"A-TID", _supi(supi))


def a_kid(a_tid_value: bytes, routing_indicator: str, realm: str) -> str:
    """A-KID = ``<RID>.<base64(A-TID)>@<realm>`` (TS 33.535 §5.1, RFC 7542 NAI)."""
    numeric = routing_indicator.isascii() and routing_indicator.isdigit()
    if not (numeric and 1 <= len(routing_indicator) <= 4):
        raise InvalidInput("routing indicator is 1-4 digits", field="routing_indicator")
    user = base64.b64encode(_check("A-TID", a_tid_value, 32)).decode("ascii")
    return f"{routing_indicator}.{user}@{realm}"


def k_af(k_akma_value: bytes, af_id: NafId) -> bytes:
    """K_AF = KDF(K_AKMA, 0x82, AF_ID) (TS 33.535 Annex A.4)."""
    return kdf(_check("K_AKMA", k_akma_value, 32), FC_AKMA_K_AF, af_id.encode())
