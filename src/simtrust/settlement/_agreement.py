"""Roaming agreements: the JSON file both parties sign, parsed exactly (no floats).

The format is issue 15 item 6 and is specified, with its JSON Schema, in
``docs/settlement.md``. Amounts are integer minor units of ``currency``; the
tolerance is an exact decimal percentage; validity is the half-open UTC
interval ``[valid_from, valid_until)`` in microseconds since the epoch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from simtrust.errors import DecodeError, InvalidInput

__all__ = [
    "SERVICES",
    "RoamingAgreement",
    "load_agreement",
    "parse_agreement",
    "parse_utc_micros",
]

#: Services the rating rule knows, each with its tariff key and divisor:
#: data per MB of 1,000,000 bytes, voice per minute of 60 s, SMS per event.
SERVICES: dict[str, tuple[str, int]] = {
    "data": ("data_per_mb", 1_000_000),
    "sms": ("sms_per_event", 1),
    "voice": ("voice_per_minute", 60),
}

_PLMN = re.compile(r"[0-9]{5,6}")
_DIGITS = re.compile(r"[0-9]{1,15}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_UTC = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?)?"
)
_EPOCH_DAYS = 719163  # date(1970, 1, 1).toordinal()
_MAX_TARIFF = 10**12


def parse_utc_micros(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 instant (``Z``/offset; none = UTC).

    A date alone is its midnight. Digits beyond the microsecond are dropped (floor),
    which keeps every comparison with a whole-microsecond boundary exact.
    """

    match = _UTC.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"not an ISO 8601 UTC time: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAYS
    except ValueError:
        raise InvalidInput(f"not a calendar date: {text[:40]!r}") from None
    h, m, s = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 23 or m > 59 or s > 59:
        raise InvalidInput(f"not a time of day: {text[:40]!r}")
    offset = 0
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if oh > 23 or om > 59:
            raise InvalidInput(f"not a UTC offset: {text[:40]!r}")
        offset = sign * (oh * 3600 + om * 60)
    micros = int((fraction or "").ljust(6, "0")[:6])
    return ((days * 86400 + h * 3600 + m * 60 + s - offset) * 1_000_000) + micros


@dataclass(frozen=True, slots=True)
class RoamingAgreement:
    """What reconciliation needs of an agreement; ``raw`` keeps the whole signed document."""

    id: str
    home_plmn: str
    visited_plmn: str
    valid_from_us: int
    valid_until_us: int
    currency: str
    tolerance_percent: Fraction
    tariffs: dict[str, int]
    imsi_prefixes: tuple[str, ...]
    raw: dict[str, Any]

    def rating(self, service: str, volume: int) -> int:
        """Minor units of ``volume`` of ``service``, rounded half up (item 6)."""
        key, divisor = SERVICES[service]
        numerator = volume * self.tariffs[key]
        return (2 * numerator + divisor) // (2 * divisor)

    def within_tolerance(self, home_volume: int, visited_volume: int) -> bool:
        """``|home − visited| ≤ tolerance_percent / 100 × visited`` in exact integers."""
        tol = self.tolerance_percent
        diff = abs(home_volume - visited_volume)
        return diff * 100 * tol.denominator <= tol.numerator * visited_volume

    def known_services(self) -> list[str]:
        """Services this agreement tariffs; any other service is out of agreement."""
        return [name for name, (key, _) in SERVICES.items() if key in self.tariffs]


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"agreement: {name} is not a number JSON allows")


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"agreement: {key!r} must be a non-empty string")
    return value.strip()


def _plmn(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _PLMN.fullmatch(text.strip()):
        raise InvalidInput(f"agreement: {key!r} must be a PLMN id (MCC+MNC, 5 or 6 digits)")
    return text.strip()


def _integer(value: object, what: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput(f"agreement: {what} must be an integer")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise InvalidInput(f"agreement: {what} must be an integer")
        value = int(value)
    if not 0 <= value <= upper:
        raise InvalidInput(f"agreement: {what} must be between 0 and {upper}")
    return value


def _tolerance(value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput("agreement: 'tolerance_percent' must be a number")
    try:
        exact = Fraction(value)
    except (InvalidOperation, ValueError):
        raise InvalidInput("agreement: 'tolerance_percent' must be a finite number") from None
    if not 0 <= exact <= 100 or exact.denominator > 10**9:
        raise InvalidInput(
            "agreement: 'tolerance_percent' must be between 0 and 100 with at most 9 decimals"
        )
    return exact


def parse_agreement(text: str | bytes) -> RoamingAgreement:
    """The agreement in ``text`` (JSON), validated; unknown members are kept, not used."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"agreement: not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise InvalidInput("agreement: the document must be a JSON object")
    valid_from = parse_utc_micros(_string(data, "valid_from"))
    valid_until = parse_utc_micros(_string(data, "valid_until"))
    if valid_from >= valid_until:
        raise InvalidInput("agreement: 'valid_from' must be before 'valid_until'")
    currency = _string(data, "currency")
    if not _CURRENCY.fullmatch(currency):
        raise InvalidInput("agreement: 'currency' must be three capital letters (ISO 4217)")
    if "tolerance_percent" not in data:
        raise InvalidInput("agreement: 'tolerance_percent' is required")
    tariffs_in = data.get("tariffs")
    if not isinstance(tariffs_in, dict):
        raise InvalidInput("agreement: 'tariffs' must be an object")
    tariffs: dict[str, int] = {}
    for key, _divisor in SERVICES.values():
        if key in tariffs_in:
            tariffs[key] = _integer(tariffs_in[key], f"tariffs.{key}", _MAX_TARIFF)
    if not tariffs:
        raise InvalidInput(
            "agreement: 'tariffs' needs data_per_mb, sms_per_event or voice_per_minute"
        )
    prefixes_in = data.get("imsi_prefixes", [])
    if not isinstance(prefixes_in, list) or not all(
        isinstance(p, str) and _DIGITS.fullmatch(p) for p in prefixes_in
    ):
        raise InvalidInput("agreement: 'imsi_prefixes' must be a list of digit strings")
    return RoamingAgreement(
        id=_string(data, "id"),
        home_plmn=_plmn(data, "home_plmn"),
        visited_plmn=_plmn(data, "visited_plmn"),
        valid_from_us=valid_from,
        valid_until_us=valid_until,
        currency=currency,
        tolerance_percent=_tolerance(data["tolerance_percent"]),
        tariffs=tariffs,
        imsi_prefixes=tuple(prefixes_in),
        raw=data,
    )


def load_agreement(path: Path) -> RoamingAgreement:
    """The agreement in the file at ``path``; unreadable files raise :class:`DecodeError`."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"agreement {path}: cannot read ({exc.strerror})") from None
    try:
        return parse_agreement(text)
    except InvalidInput as exc:
        raise type(exc)(f"{path}: {exc.detail}") from None
