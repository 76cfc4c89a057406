"""Per-period statements of paid verifications (reusable KYC as a service).

Each verification of an operator's credential leaves a receipt (relying
party, issuing operator, credential type, presentation hash; no personal
data). A statement counts, for one period, the receipts anchored on the
ledger per (issuing operator, relying party, credential type) and prices
them per verification, so the relying party pays the issuing operator.
Receipts not yet anchored are listed as pending and billed in the period
they fall in once anchored (a statement is recomputed, not accumulated).

Each billed line is also an obligation in the settlement engine's shape
(``payer`` = the relying party, ``payee`` = the issuing operator,
``currency``, ``total_minor_units``), so the period's verifications net with
other obligations (settlement/_netting.py) into at most N−1 token transfers.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from simtrust.errors import InvalidInput
from simtrust.identity._receipt import VerificationReceipt
from simtrust.identity._time import format_datetime

__all__ = ["verification_statement"]


def verification_statement(
    receipts: list[tuple[VerificationReceipt, bool]],
    *,
    start: datetime,
    end: datetime,
    price_minor_units: int,
    currency: str,
) -> dict[str, Any]:
    """A statement of ``receipts`` (each with whether it is anchored) in ``[start, end)``."""
    if end <= start:
        raise InvalidInput("a statement period ends after it starts")
    if type(price_minor_units) is not int or price_minor_units < 0:
        raise InvalidInput("price_minor_units is a non-negative integer")
    billed: Counter[tuple[str, str, str]] = Counter()
    pending: Counter[tuple[str, str, str]] = Counter()
    digests = []
    for receipt, anchored in receipts:
        key = (receipt.issuer, receipt.relying_party or receipt.verifier,
               receipt.credential_type or "")  # fmt: skip
        (billed if anchored else pending)[key] += 1
        if anchored:
            digests.append(receipt.digest)
    lines: list[dict[str, Any]] = [
        {
            "issuer": issuer,
            "relyingParty": party,
            "credentialType": kind,
            "verifications": count,
            "pending": pending.get((issuer, party, kind), 0),
            "amountMinorUnits": count * price_minor_units,
        }
        for (issuer, party, kind), count in sorted((billed + pending).items())
        for count in [billed.get((issuer, party, kind), 0)]
    ]
    obligations = [
        {
            "type": "VerificationObligation",
            "payer": line["relyingParty"],
            "payee": line["issuer"],
            "currency": currency,
            "total_minor_units": line["amountMinorUnits"],
            "credentialType": line["credentialType"],
            "verifications": line["verifications"],
        }
        for line in lines
        if int(line["amountMinorUnits"]) > 0 and line["relyingParty"] != line["issuer"]
    ]
    return {
        "type": "VerificationStatement",
        "periodStart": format_datetime(start),
        "periodEnd": format_datetime(end),
        "currency": currency,
        "priceMinorUnits": price_minor_units,
        "lines": lines,
        "totalMinorUnits": sum(line["amountMinorUnits"] for line in lines),
        "receipts": sorted(digests),
        "obligations": obligations,
    }
