"""XML Schema ``dateTimeStamp`` values as VC Data Model 2.0 §4.9 uses them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from simtrust.identity._errors import VerificationFailed

__all__ = ["format_datetime", "parse_datetime"]

_DATETIME = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_datetime(value: object, name: str) -> datetime:
    """An aware datetime from a dateTimeStamp (a time zone is required)."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise VerificationFailed("malformed", f"{name} is not an XML Schema dateTimeStamp")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise VerificationFailed("malformed", f"{name} is not a valid date and time") from exc


def format_datetime(moment: datetime) -> str:
    """UTC, whole seconds, ``Z`` suffix (the form the W3C vectors use)."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
