"""Roaming settlement between operators: agreements, usage reconciliation and rating.

Issue 15; the file formats, the rating rule and every decision taken where the
issue is silent are in ``docs/settlement.md``.
"""

from simtrust.settlement._agreement import (
    SERVICES,
    RoamingAgreement,
    load_agreement,
    parse_agreement,
    parse_utc_micros,
)
from simtrust.settlement._reconcile import (
    CLASSES,
    RECORDS_COLUMNS,
    USAGE_COLUMNS,
    Reconciliation,
    reconcile_files,
)

__all__ = [
    "CLASSES",
    "RECORDS_COLUMNS",
    "SERVICES",
    "USAGE_COLUMNS",
    "Reconciliation",
    "RoamingAgreement",
    "load_agreement",
    "parse_agreement",
    "parse_utc_micros",
    "reconcile_files",
]
