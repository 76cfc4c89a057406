"""Typed subscriber and equipment identifiers, validated once at the edge.

IMSI per 3GPP TS 23.003 §2.2 (MCC 3 digits + MNC 2 or 3 digits + MSIN, at most
15 digits); PLMN identity per TS 23.003 §12.1; ICCID per ITU-T E.118 (prefix 89,
19 or 20 digits including a Luhn check digit); IMEI and IMEISV per TS 23.003
§6.2 (TAC 8 digits, SNR 6 digits, Luhn check digit per Annex B, or a 2-digit
software version number instead of the check digit).

:data:`ImsiDigits` is the IMSI on the per-flow hot path: a ``NewType`` over
``str`` (no object per record, no cost at run time) that only
:func:`imsi_digits` and :attr:`Imsi.digits` produce, so the type checker holds
every flow, policy and detection signature to an IMSI validated at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

from simtrust.errors import InvalidIdentifier

__all__ = [
    "THREE_DIGIT_MNC_MCCS",
    "Iccid",
    "Imei",
    "ImeiSv",
    "Imsi",
    "ImsiDigits",
    "Plmn",
    "Tac",
    "imsi_digits",
    "luhn_check_digit",
    "parse_equipment",
]

#: MCCs whose networks use 3-digit MNCs (ITU-T E.212 assignments: North America,
#: the Caribbean, parts of Latin America and India). For any other MCC a
#: 2-digit MNC is assumed unless the caller states the length.
THREE_DIGIT_MNC_MCCS: frozenset[str] = frozenset(
    {
        "302", "310", "311", "312", "313", "314", "315", "316", "334", "338",
        "342", "344", "346", "348", "352", "354", "356", "358", "360", "365",
        "366", "376", "405", "708", "722", "732", "750",
    }
)  # fmt: skip

_DIGITS = frozenset("0123456789")

#: An IMSI's digits (TS 23.003 §2.2: 6 to 15 decimal digits), validated.
ImsiDigits = NewType("ImsiDigits", str)


def imsi_digits(text: object) -> ImsiDigits:
    """Validate an IMSI given as text (6 to 15 ASCII digits) at the edge of the flow path.

    The decoders, the address maps and the API call it where an IMSI enters;
    inside, :data:`ImsiDigits` travels as the plain string it is.
    """
    if isinstance(text, str) and 6 <= len(text) <= 15 and text.isascii() and text.isdigit():
        return ImsiDigits(text)
    return ImsiDigits(Imsi(_digits("IMSI", text)).value)


def _digits(kind: str, text: object) -> str:
    if not isinstance(text, str):
        raise InvalidIdentifier(f"{kind} must be a string of digits", kind=kind, reason="type")
    value = text.strip()
    if not value:
        raise InvalidIdentifier(f"{kind} is empty", kind=kind, reason="empty")
    if not _DIGITS.issuperset(value):
        raise InvalidIdentifier(
            f"{kind} must contain decimal digits only", kind=kind, reason="non-digit"
        )
    return value


#: ASCII digit → its value, and → the digit sum of its double (Luhn positions).
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_LUHN_DOUBLE = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def luhn_check_digit(payload: str) -> int:
    """The Luhn (ISO/IEC 7812-1 Annex B) check digit of a string of decimal digits."""
    # Every second digit counting from the right of the payload is doubled;
    # bytes.translate and sum() keep the per-digit work in C.
    digits = payload[::-1].encode()
    total = sum(digits[::2].translate(_LUHN_DOUBLE)) + sum(digits[1::2].translate(_LUHN_PLAIN))
    return (10 - total % 10) % 10


def _check_luhn(kind: str, value: str) -> None:
    expected = luhn_check_digit(value[:-1])
    if ord(value[-1]) - 48 != expected:
        raise InvalidIdentifier(
            f"{kind} check digit is {value[-1]}, Luhn gives {expected}",
            kind=kind,
            reason="check-digit",
        )


@dataclass(frozen=True, slots=True)
class Plmn:
    """A PLMN identity: MCC (3 digits) and MNC (2 or 3 digits).

    ``Plmn("001", "01")``; :meth:`parse` accepts ``"00101"``, ``"001-01"`` and
    ``"001/001"`` (5 digits mean a 2-digit MNC, 6 digits a 3-digit MNC).
    """

    mcc: str
    mnc: str

    def __post_init__(self) -> None:
        mcc = _digits("MCC", self.mcc)
        mnc = _digits("MNC", self.mnc)
        if len(mcc) != 3:
            raise InvalidIdentifier("MCC must have 3 digits", kind="PLMN", reason="mcc-length")
        if len(mnc) not in (2, 3):
            raise InvalidIdentifier(
                "MNC must have 2 or 3 digits", kind="PLMN", reason="mnc-length"
            )
        object.__setattr__(self, "mcc", mcc)
        object.__setattr__(self, "mnc", mnc)

    @classmethod
    def parse(cls, text: str) -> Plmn:
        raw = _text("PLMN", text)
        for sep in ("-", "/", "."):
            if sep in raw:
                mcc, _, mnc = raw.partition(sep)
                return cls(mcc, mnc)
        value = _digits("PLMN", raw)
        if len(value) not in (5, 6):
            raise InvalidIdentifier(
                "PLMN must be MCC+MNC: 5 or 6 digits", kind="PLMN", reason="length"
            )
        return cls(value[:3], value[3:])

    def __str__(self) -> str:
        return self.mcc + self.mnc

    @property
    def serving_network_name(self) -> str:
        """The 5G serving network name of TS 24.501 §9.12.1 (MNC padded to 3 digits)."""
        return f"5G:mnc{self.mnc.zfill(3)}.mcc{self.mcc}.3gppnetwork.org"


def _text(kind: str, text: object) -> str:
    if not isinstance(text, str):
        raise InvalidIdentifier(f"{kind} must be a string", kind=kind, reason="type")
    return text.strip()


@dataclass(frozen=True, slots=True)
class Imsi:
    """An IMSI (TS 23.003 §2.2): MCC + MNC + MSIN, 6 to 15 digits.

    The MNC length cannot be read from the digits; give ``mnc_length`` when the
    home network is known, otherwise it is inferred from
    :data:`THREE_DIGIT_MNC_MCCS`.
    """

    value: str
    mnc_length: int = field(default=0)

    def __post_init__(self) -> None:
        value = _digits("IMSI", self.value)
        if not 6 <= len(value) <= 15:
            raise InvalidIdentifier(
                f"IMSI must have 6 to 15 digits, got {len(value)}", kind="IMSI", reason="length"
            )
        mnc_length = self.mnc_length
        if mnc_length == 0:
            mnc_length = 3 if value[:3] in THREE_DIGIT_MNC_MCCS else 2
        if mnc_length not in (2, 3):
            raise InvalidIdentifier(
                "IMSI MNC length must be 2 or 3", kind="IMSI", reason="mnc-length"
            )
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "mnc_length", mnc_length)

    @classmethod
    def _validated(cls, value: str, mnc_length: int) -> Imsi:
        """An IMSI from digits and an MNC length this process validated already (a
        cached view of a stored SIM): the checks of ``__init__`` are not run again."""
        imsi = object.__new__(cls)
        object.__setattr__(imsi, "value", value)
        object.__setattr__(imsi, "mnc_length", mnc_length)
        return imsi

    def __str__(self) -> str:
        return self.value

    @property
    def mcc(self) -> str:
        return self.value[:3]

    @property
    def mnc(self) -> str:
        return self.value[3 : 3 + self.mnc_length]

    @property
    def msin(self) -> str:
        return self.value[3 + self.mnc_length :]

    @property
    def plmn(self) -> Plmn:
        """The home PLMN."""
        return Plmn(self.mcc, self.mnc)

    @property
    def digits(self) -> ImsiDigits:
        """The digits as the flow path carries them."""
        return ImsiDigits(self.value)

    @property
    def supi(self) -> str:
        """The SUPI of type IMSI as TS 29.571 writes it (``imsi-<digits>``)."""
        return "imsi-" + self.value


@dataclass(frozen=True, slots=True)
class Iccid:
    """An ICCID (ITU-T E.118): ``89`` + country + issuer + account + Luhn digit.

    19 or 20 digits including the check digit. A trailing ``F`` filler (as read
    from EF_ICCID of a 19-digit card) is dropped.
    """

    value: str

    def __post_init__(self) -> None:
        raw = _text("ICCID", self.value)
        if len(raw) == 20 and raw[-1] in "fF":
            raw = raw[:-1]
        value = _digits("ICCID", raw)
        if not 19 <= len(value) <= 20:
            raise InvalidIdentifier(
                f"ICCID must have 19 or 20 digits, got {len(value)}",
                kind="ICCID",
                reason="length",
            )
        if not value.startswith("89"):
            raise InvalidIdentifier(
                "ICCID must start with the telecom industry identifier 89",
                kind="ICCID",
                reason="prefix",
            )
        _check_luhn("ICCID", value)
        object.__setattr__(self, "value", value)

    @classmethod
    def _validated(cls, value: str) -> Iccid:
        """An ICCID from digits this process validated already (a stored SIM's row): the
        checks of ``__init__`` are not run again."""
        iccid = object.__new__(cls)
        object.__setattr__(iccid, "value", value)
        return iccid

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Tac:
    """A Type Allocation Code: the first 8 digits of an IMEI (TS 23.003 §6.2.1)."""

    value: str

    def __post_init__(self) -> None:
        value = _digits("TAC", self.value)
        if len(value) != 8:
            raise InvalidIdentifier("TAC must have 8 digits", kind="TAC", reason="length")
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Imei:
    """An IMEI: TAC (8) + SNR (6) + Luhn check digit (TS 23.003 §6.2.1, Annex B)."""

    value: str

    def __post_init__(self) -> None:
        value = _digits("IMEI", self.value)
        if len(value) != 15:
            raise InvalidIdentifier(
                f"IMEI must have 15 digits, got {len(value)}", kind="IMEI", reason="length"
            )
        _check_luhn("IMEI", value)
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return self.value

    @property
    def tac(self) -> Tac:
        return Tac(self.value[:8])

    @property
    def snr(self) -> str:
        return self.value[8:14]

    @classmethod
    def from_tac_snr(cls, tac: str, snr: str) -> Imei:
        """The IMEI of a TAC and serial number, with its check digit computed."""
        payload = str(Tac(tac)) + _digits("SNR", snr)
        if len(payload) != 14:
            raise InvalidIdentifier("SNR must have 6 digits", kind="IMEI", reason="length")
        return cls(payload + str(luhn_check_digit(payload)))


@dataclass(frozen=True, slots=True)
class ImeiSv:
    """An IMEISV: TAC (8) + SNR (6) + software version number (2), no check digit."""

    value: str

    def __post_init__(self) -> None:
        value = _digits("IMEISV", self.value)
        if len(value) != 16:
            raise InvalidIdentifier(
                f"IMEISV must have 16 digits, got {len(value)}", kind="IMEISV", reason="length"
            )
        if value[14:] == "99":
            # TS 23.003 §6.2.2: SVN 99 is reserved for future use.
            raise InvalidIdentifier("IMEISV SVN 99 is reserved", kind="IMEISV", reason="svn")
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return self.value

    @property
    def tac(self) -> Tac:
        return Tac(self.value[:8])

    @property
    def svn(self) -> str:
        return self.value[14:]

    @property
    def imei(self) -> Imei:
        """The IMEI of the same equipment (check digit computed per Annex B)."""
        payload = self.value[:14]
        return Imei(payload + str(luhn_check_digit(payload)))


def parse_equipment(text: str) -> Imei | ImeiSv:
    """An IMEI (15 digits, Luhn-checked) or an IMEISV (16 digits), by length."""
    value = _digits("IMEI", text)
    if len(value) == 16:
        return ImeiSv(value)
    return Imei(value)
