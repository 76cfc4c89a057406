"""Multilateral netting (issue 15 item 4): positions sum to zero and equal a plain
recomputation, at most N−1 transfers, and paying the transfers settles everyone."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput
from simtrust.settlement import net_statements

PARTIES = [f"did:example:op{i}" for i in range(7)]

statements = st.lists(
    st.tuples(st.sampled_from(PARTIES), st.sampled_from(PARTIES), st.sampled_from(["EUR", "USD"]),
              st.integers(0, 10**12)).filter(lambda s: s[0] != s[1]),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(statements)
def test_netting_balances(items: list[tuple[str, str, str, int]]) -> None:
    docs = [{"payer": a, "payee": b, "currency": c, "total_minor_units": t} for a, b, c, t in items]
    result = net_statements(docs)["currencies"]
    for currency in {c for _, _, c, _ in items}:
        book = result[currency]
        expected: Counter[str] = Counter()
        for payer, payee, cur, total in items:
            if cur == currency:
                expected[payer] -= total
                expected[payee] += total
        assert dict(expected) == book["positions"]
        assert 0 == sum(book["positions"].values())
        nonzero = sum(1 for v in book["positions"].values() if v)
        assert len(book["transfers"]) <= max(0, nonzero - 1)
        left = Counter(book["positions"])
        for transfer in book["transfers"]:
            assert transfer["amount_minor_units"] > 0
            left[transfer["from"]] += transfer["amount_minor_units"]
            left[transfer["to"]] -= transfer["amount_minor_units"]
        assert all(v == 0 for v in left.values())


def test_three_operators() -> None:
    docs = [
        {"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": 100},
        {"payer": "B", "payee": "C", "currency": "EUR", "total_minor_units": 70},
        {"payer": "C", "payee": "A", "currency": "EUR", "total_minor_units": 20},
    ]
    book = net_statements(docs)["currencies"]["EUR"]
    assert {"A": -80, "B": 30, "C": 50} == book["positions"]
    assert [{"from": "A", "to": "C", "amount_minor_units": 50},
            {"from": "A", "to": "B", "amount_minor_units": 30}] == book["transfers"]
    assert 190 == book["gross_minor_units"]


@pytest.mark.parametrize("bad", [
    {"payer": "A", "payee": "A", "currency": "EUR", "total_minor_units": 1},
    {"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": -1},
    {"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": 1.5},
    {"payer": "A", "payee": "B", "total_minor_units": 1},
])
def test_bad_statement_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        net_statements([bad])


def test_a_discounted_statement_nets_its_payable_amount() -> None:
    statements = [{"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": 300,
                   "discount_minor_units": 15, "payable_minor_units": 285}]
    assert {"A": -285, "B": 285} == net_statements(statements)["currencies"]["EUR"]["positions"]
