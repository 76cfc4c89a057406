"""LwM2M endpoint client names (Core V1_1_1 §7.3.1): the IMEI and IMSI a name carries."""

from __future__ import annotations

import re

from simtrust.domain import Imei, Imsi, luhn_check_digit
from simtrust.errors import DecodeError, InvalidIdentifier

__all__ = ["parse_endpoint"]

_ENDPOINT = re.compile(r"[\x21-\x7e]{1,128}")
#: ``urn:imei-imsi:`` with a 15-digit IMEI and a 6-15-digit IMSI, the name every
#: registration of the project's clients carries: checked without building an ``Imei`` and
#: an ``Imsi`` (the same checks: digits, lengths, the IMEI's Luhn digit); any other name,
#: or one failing the Luhn digit, takes the general path and its error.
_IMEI_IMSI = re.compile(r"urn:imei-imsi:([0-9]{15})-([0-9]{6,15})")


def parse_endpoint(name: str) -> tuple[str | None, str | None]:
    """(IMEI, IMSI) named by an endpoint client name (Core §7.3.1 URNs); DecodeError for
    names outside the printable-ASCII bound; unknown schemes give (None, None)."""
    plain = _IMEI_IMSI.fullmatch(name)  # the usual name: its checks without the objects
    if plain is not None and luhn_check_digit(plain[1][:14]) == ord(plain[1][14]) - 48:
        return plain[1], plain[2]
    if not _ENDPOINT.fullmatch(name):
        raise DecodeError("endpoint name is 1-128 printable characters", reason="endpoint")
    try:
        if name.startswith("urn:imei-imsi:"):
            imei, sep, imsi = name[len("urn:imei-imsi:"):].partition("-")
            if not sep:
                raise DecodeError("urn:imei-imsi needs <IMEI>-<IMSI>", reason="endpoint")
            return Imei(imei).value, Imsi(imsi).value
        if name.startswith("urn:imei:"):
            return Imei(name[len("urn:imei:"):]).value, None
        if name.startswith("urn:imsi:"):
            return None, Imsi(name[len("urn:imsi:"):]).value
    except InvalidIdentifier as exc:
        raise DecodeError(f"endpoint name carries a malformed identifier: {exc.detail}",
                          reason="endpoint") from exc
    return None, None
