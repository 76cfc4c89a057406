"""Untrusted input never crashes the settlement decoders: arbitrary bytes as usage files,
agreements, SLA contracts and measurements, suspensions and statements give a result or
a simtrust error (one sentence), nothing else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.errors import SimtrustError
from simtrust.settlement import (
    evaluate_sla,
    load_suspensions,
    net_statements,
    parse_agreement,
    parse_sla_contract,
    reconcile_files,
    verify_statement,
)
from tests.settlement.test_reconcile import AGREEMENT, HEADER, row
from tests.settlement.test_sla import CONTRACT

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TERMS = parse_agreement(json.dumps(AGREEMENT))

# Bytes near the format: a valid header and rows, then cut, spliced or mutated.
csv_like = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([row("1"), row("2", service="sms"), "1,2,3", "", '"', "a,,b",
                              row("x\u00e9", start="2026-01-01T00:00:00+01:00"),
                              "1,262010000000001,20810,26201,data,2026-01-02T00:00:00Z,-1,1,1,1",
                              "9" * 30]), max_size=6)
    .map(lambda rows: ("\n".join([HEADER, *rows]) + "\n").encode()),
    st.tuples(st.binary(max_size=40), st.integers(0, 200)).map(
        lambda cut: (HEADER + "\n" + row("1") + "\n").encode()[: cut[1]] + cut[0]),
)


def _guarded(fn: Any) -> None:
    """Run ``fn``; a simtrust error is fine when its detail is one line."""
    detail = ""
    try:
        fn()
    except SimtrustError as exc:
        detail = exc.detail
    assert "\n" not in detail


@FAST
@given(csv_like)
def test_usage_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "v.csv"
        path.write_bytes(data)
        good = Path(name) / "h.csv"
        good.write_text(HEADER + "\n" + row("1") + "\n")
        _guarded(lambda: reconcile_files(TERMS, good, path, records_out=Path(name) / "r.csv"))
        _guarded(lambda: evaluate_sla(parse_sla_contract(json.dumps(CONTRACT)), path))
        _guarded(lambda: load_suspensions(path))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10,
)


signature_lists = st.lists(st.fixed_dictionaries({
    "role": st.sampled_from(["payer", "payee", "x"]),
    "key": st.sampled_from(["did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
                            "did:key:zzz", "did:web:x", ""]),
    "signature": st.text(max_size=90)}), max_size=3)


@FAST
@given(st.dictionaries(st.sampled_from([*sorted(AGREEMENT), "x", "payer", "total_minor_units"]),
                       json_values), st.binary(max_size=60), signature_lists)
def test_agreements_contracts_statements(changes: dict[str, Any], raw: bytes,
                                         signatures: list[dict[str, str]]) -> None:
    _guarded(lambda: parse_agreement(json.dumps({**AGREEMENT, **changes})))
    _guarded(lambda: parse_agreement(raw))
    _guarded(lambda: parse_sla_contract(json.dumps({**CONTRACT, **changes})))
    _guarded(lambda: parse_sla_contract(raw))
    statement = {"type": "RoamingStatement", "payer": "a", "payee": "b", "currency": "EUR",
                 "total_minor_units": 1, **changes, "signatures": signatures}
    _guarded(lambda: verify_statement(statement))
    _guarded(lambda: net_statements([statement]))
