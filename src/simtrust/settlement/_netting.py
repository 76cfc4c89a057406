"""Multilateral netting of roaming statements into at most N−1 settlement transfers.

Each statement says its payer owes its payee ``total_minor_units`` of a currency
(``payable_minor_units`` when the agreement's volume discounts apply), and each
signed dispute resolution its ``agreed_minor_units`` (open disputes are not
netted: they wait for resolution or move into the next statement); a signed
SLA credit note makes its provider owe the customer ``credit_minor_units``. Per
currency, every party's net position is what it is owed minus what it owes;
positions sum to zero. Transfers then pair the largest debtor with the largest
creditor and settle the smaller of the two, so each transfer closes
at least one party's position and N parties with non-zero positions need at
most N−1 transfers. Integers only; ties broken by party name, so every party
computes the same transfers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from simtrust.errors import InvalidInput

__all__ = ["net_statements"]


def _amount(statement: dict[str, Any], index: int) -> tuple[str, str, str, int]:
    payer, payee = statement.get("payer"), statement.get("payee")
    currency = statement.get("currency")
    # A signed dispute resolution is an obligation too: the amount both parties agreed.
    # A statement with volume discounts owes its payable amount (total minus discounts).
    if statement.get("type") == "DisputeResolution":
        field = "agreed_minor_units"
    elif statement.get("type") == "SlaCreditNote":
        field = "credit_minor_units"
    elif "payable_minor_units" in statement:
        field = "payable_minor_units"
    else:
        field = "total_minor_units"
    total = statement.get(field)
    if not isinstance(payer, str) or not isinstance(payee, str) or not payer or not payee:
        raise InvalidInput(f"statement {index}: 'payer' and 'payee' must be non-empty strings")
    if payer == payee:
        raise InvalidInput(f"statement {index}: payer and payee are the same party")
    if not isinstance(currency, str) or not currency:
        raise InvalidInput(f"statement {index}: 'currency' is missing")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InvalidInput(f"statement {index}: {field!r} must be a non-negative integer")
    return payer, payee, currency, total


def net_statements(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """Gross obligations, net positions and transfers per currency."""
    positions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    gross: dict[str, int] = defaultdict(int)
    counted: dict[str, int] = defaultdict(int)
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise InvalidInput(f"statement {index}: not a JSON object")
        payer, payee, currency, total = _amount(statement, index)
        positions[currency][payer] -= total
        positions[currency][payee] += total
        gross[currency] += total
        counted[currency] += 1
    result: dict[str, Any] = {}
    for currency in sorted(positions):
        book = dict(sorted(positions[currency].items()))
        transfers = _transfers(book)
        result[currency] = {
            "statements": counted[currency],
            "gross_minor_units": gross[currency],
            "positions": book,
            "transfers": transfers,
            "transferred_minor_units": sum(t["amount_minor_units"] for t in transfers),
        }
    return {"currencies": result}


def _transfers(book: dict[str, int]) -> list[dict[str, Any]]:
    debtors = sorted(((-v, p) for p, v in book.items() if v < 0), key=lambda x: (-x[0], x[1]))
    creditors = sorted(((v, p) for p, v in book.items() if v > 0), key=lambda x: (-x[0], x[1]))
    out: list[dict[str, Any]] = []
    d = c = 0
    owed = [amount for amount, _ in debtors]
    due = [amount for amount, _ in creditors]
    while d < len(debtors) and c < len(creditors):
        amount = min(owed[d], due[c])
        out.append({"from": debtors[d][1], "to": creditors[c][1], "amount_minor_units": amount})
        owed[d] -= amount
        due[c] -= amount
        if owed[d] == 0:
            d += 1
        if due[c] == 0:
            c += 1
    return out
