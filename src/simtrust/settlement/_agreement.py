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
    "DiscountTier",
    "RoamingAgreement",
    "Zone",
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
class Zone:
    """Other visited networks of the same visited party, with their own tariffs."""

    id: str
    visited_plmns: tuple[str, ...]
    #: Overrides of the agreement's tariffs for records from these networks.
    tariffs: dict[str, int]


@dataclass(frozen=True, slots=True)
class DiscountTier:
    """All-units volume discount: ``percent`` off a service's settled amount from a volume."""

    service: str
    from_volume: int
    percent: Fraction


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
    zones: tuple[Zone, ...] = ()
    discount_tiers: tuple[DiscountTier, ...] = ()
    #: Days after a period's end during which its disputes wait for a resolution.
    dispute_window_days: int | None = None

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

    def visited_plmns(self) -> list[str]:
        """Visited networks whose records the agreement covers: its own, then its zones'."""
        return [self.visited_plmn] + [p for zone in self.zones for p in zone.visited_plmns]

    def discount(self, service: str, volume: int, settled: int) -> dict[str, Any] | None:
        """The all-units discount of ``service`` at period ``volume``, or None below every tier.

        The highest tier whose ``from_volume`` the volume reaches gives its percent
        off the service's whole settled amount, rounded half up to a minor unit.
        """
        reached = [t for t in self.discount_tiers
                   if t.service == service and volume >= t.from_volume]
        if not reached:
            return None
        tier = max(reached, key=lambda t: t.from_volume)
        amount = Fraction(settled) * tier.percent / 100
        rounded = (2 * amount.numerator + amount.denominator) // (2 * amount.denominator)
        return {"service": service, "volume": volume, "from_volume": tier.from_volume,
                "percent": _decimal_text(tier.percent), "settled_minor_units": settled,
                "discount_minor_units": int(rounded)}

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


def _tolerance(value: object, what: str = "'tolerance_percent'") -> Fraction:
    """An exact percentage from 0 to 100 with at most 9 decimals."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput(f"agreement: {what} must be a number")
    try:
        exact = Fraction(value)
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"agreement: {what} must be a finite number") from None
    if not 0 <= exact <= 100 or exact.denominator > 10**9:
        raise InvalidInput(
            f"agreement: {what} must be between 0 and 100 with at most 9 decimals"
        )
    return exact


def _decimal_text(value: Fraction) -> str:
    """An exact percentage as decimal text (at most 9 decimals by construction)."""
    whole, rest = divmod(value.numerator, value.denominator)
    if not rest:
        return str(whole)
    digits = str(Decimal(value.numerator) / Decimal(value.denominator))
    return digits.rstrip("0")


def _zones(value: object, agreement_plmn: str, tariffs: dict[str, int]) -> tuple[Zone, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 1000:
        raise InvalidInput("agreement: 'zones' must be a list of at most 1,000 zones")
    zones, seen_ids, seen_plmns = [], set(), {agreement_plmn}
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"agreement: zones[{index}] must be an object")
        zone_id = _string(item, "id")
        if zone_id in seen_ids:
            raise InvalidInput(f"agreement: zone id {zone_id!r} appears twice")
        seen_ids.add(zone_id)
        plmns = item.get("visited_plmns")
        if not isinstance(plmns, list) or not plmns:
            raise InvalidInput(f"agreement: zone {zone_id!r} needs a non-empty 'visited_plmns'")
        checked = []
        for plmn in plmns:
            text = _plmn({"visited_plmns": plmn}, "visited_plmns")
            if text in seen_plmns:
                raise InvalidInput(
                    f"agreement: visited network {text} is named twice (agreement or zones)")
            seen_plmns.add(text)
            checked.append(text)
        raw = item.get("tariffs")
        if not isinstance(raw, dict) or not raw:
            raise InvalidInput(f"agreement: zone {zone_id!r} needs 'tariffs'")
        own: dict[str, int] = {}
        for key, amount in raw.items():
            if key not in tariffs:
                raise InvalidInput(
                    f"agreement: zone {zone_id!r} tariffs {key!r}, which the agreement's "
                    "tariffs do not name")
            own[key] = _integer(amount, f"zone {zone_id} tariffs.{key}", _MAX_TARIFF)
        zones.append(Zone(zone_id, tuple(checked), own))
    return tuple(zones)


def _tiers(value: object, tariffs: dict[str, int]) -> tuple[DiscountTier, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidInput("agreement: 'discount_tiers' must be a list of at most 100 tiers")
    tiers, seen = [], set()
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"agreement: discount_tiers[{index}] must be an object")
        service = item.get("service")
        if service not in SERVICES or SERVICES[str(service)][0] not in tariffs:
            raise InvalidInput(
                f"agreement: discount_tiers[{index}].service must be a tariffed service")
        start = _integer(item.get("from_volume"), f"discount_tiers[{index}].from_volume",
                         2**63 - 1)
        if (service, start) in seen:
            raise InvalidInput(f"agreement: two {service} discount tiers from {start}")
        seen.add((service, start))
        percent = _tolerance(item.get("percent"), f"discount_tiers[{index}].percent")
        tiers.append(DiscountTier(str(service), start, percent))
    return tuple(tiers)


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
    visited_plmn = _plmn(data, "visited_plmn")
    return RoamingAgreement(
        id=_string(data, "id"),
        home_plmn=_plmn(data, "home_plmn"),
        visited_plmn=visited_plmn,
        valid_from_us=valid_from,
        valid_until_us=valid_until,
        currency=currency,
        tolerance_percent=_tolerance(data["tolerance_percent"]),
        tariffs=tariffs,
        imsi_prefixes=tuple(prefixes_in),
        raw=data,
        zones=_zones(data.get("zones"), visited_plmn, tariffs),
        discount_tiers=_tiers(data.get("discount_tiers"), tariffs),
        dispute_window_days=None if data.get("dispute_window_days") is None else _integer(
            data["dispute_window_days"], "'dispute_window_days'", 3_660),
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
