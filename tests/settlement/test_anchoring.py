"""Usage record batches anchored on the ledger (issue 15 item 3): the statement's records
root goes on the ledger, and any one record is proven later against the root the ledger
holds, on SQLite and PostgreSQL, from Python, the CLI and the HTTP API."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simtrust.api.app import create_app
from simtrust.errors import DecodeError, InvalidInput, InvalidSignature, NotFound, SimtrustError
from simtrust.runtime import Runtime
from simtrust.settlement import (
    anchor_statement,
    record_proof,
    sign_statement,
    usage_domain,
    verify_anchored_record,
)
from tests.settlement.test_cli import cli
from tests.settlement.test_statement import HOME_KEY, VISITED_KEY, _statement


def test_anchored_records_prove_from_the_ledger(runtime: Runtime, tmp_path: Path) -> None:
    statement, home, visited = _statement(tmp_path)
    receipt = anchor_statement(runtime.ledger, statement)
    assert (usage_domain(statement["agreement"]), 1, 4, 4) == (
        receipt["domain"], receipt["first"], receipt["last"], receipt["size"])
    assert statement["records"]["merkle_root"] == receipt["merkle_root"]
    for index in range(4):
        checked = verify_anchored_record(runtime.ledger, record_proof(home, visited, index),
                                         receipt)
        assert receipt["anchor"] == checked["anchor"]
    # the next period of the same agreement takes the next range
    signed = sign_statement(sign_statement(statement, "payer", HOME_KEY), "payee", VISITED_KEY)
    later = anchor_statement(runtime.ledger, signed)
    assert (5, 8) == (later["first"], later["last"])


def test_a_changed_record_or_a_missing_anchor_fails(sqlite_runtime: Runtime,
                                                    tmp_path: Path) -> None:
    statement, home, visited = _statement(tmp_path)
    receipt = anchor_statement(sqlite_runtime.ledger, statement)
    proof = record_proof(home, visited, 2)
    changed = {**proof, "record": proof["record"].replace(",data,", ",sms,")}
    with pytest.raises(InvalidSignature):
        verify_anchored_record(sqlite_runtime.ledger, changed, receipt)
    with pytest.raises(NotFound):
        verify_anchored_record(sqlite_runtime.ledger, proof, {**receipt, "first": 99})
    with pytest.raises(NotFound):
        verify_anchored_record(sqlite_runtime.ledger, proof, {**receipt, "issuer": "00" * 32})
    with pytest.raises(DecodeError):
        verify_anchored_record(sqlite_runtime.ledger, proof, {"first": "x"})


@pytest.mark.parametrize("change", [
    {"records": {"merkle_root": "zz", "size": 4}}, {"records": {"merkle_root": "00", "size": 4}},
    {"records": {"merkle_root": "00" * 32, "size": 0}}, {"agreement": ""},
    {"signatures": [{"role": "payer", "key": "did:key:z6Mk", "signature": "AA"}]},
])
def test_bad_statements_are_not_anchored(sqlite_runtime: Runtime, tmp_path: Path,
                                         change: dict[str, Any]) -> None:
    statement, _, _ = _statement(tmp_path)
    with pytest.raises((InvalidInput, InvalidSignature, DecodeError)):
        anchor_statement(sqlite_runtime.ledger, {**statement, **change})
    assert 0 == sqlite_runtime.ledger.last_anchored(usage_domain(statement["agreement"]))


def test_cli_anchor_and_check_proof_against_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    cli("init", "--json", check=True)
    statement, home, visited = _statement(tmp_path)
    path, receipt_path = tmp_path / "s.json", tmp_path / "anchor.json"
    path.write_text(json.dumps(statement))
    receipt = json.loads(cli("settle", "anchor", str(path), "--out", str(receipt_path),
                             "--json", check=True).stdout)
    assert receipt == json.loads(receipt_path.read_text())
    proof = tmp_path / "proof.json"
    proof.write_text(cli("settle", "prove", "--home", str(home), "--visited", str(visited),
                         "--index", "3", check=True).stdout)
    checked = json.loads(cli("settle", "check-proof", str(proof), "--anchor", str(receipt_path),
                             "--json", check=True).stdout)
    assert (True, receipt["anchor"]) == (checked["verified"], checked["anchor"])
    # a tampered record fails (exit 1), unreadable input is one line and exit 2
    tampered = json.loads(proof.read_text())
    side, rest = tampered["record"].split(",", 1)
    tampered["record"] = ("home" if side == "visited" else "visited") + "," + rest
    proof.write_text(json.dumps(tampered))
    assert 1 == cli("settle", "check-proof", str(proof), "--anchor", str(receipt_path)).returncode
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    for args in (("anchor", str(junk)), ("check-proof", str(proof), "--anchor", str(junk)),
                 ("check-proof", str(proof))):
        done = cli("settle", *args)
        assert (2, "") == (done.returncode, done.stdout), args
        assert 1 == len(done.stderr.strip().splitlines())


def test_api_anchor_and_verify(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    statement, home, visited = _statement(tmp_path)
    key = sqlite_runtime.tenants.create_key("operator-admin", "test operator")
    headers = {"Authorization": f"Bearer {key.secret}"}
    with TestClient(create_app(sqlite_runtime)) as api:
        assert 401 == api.post("/v1/settlement/statements/anchor",
                               json={"statement": statement}).status_code
        made = api.post("/v1/settlement/statements/anchor", headers=headers,
                        json={"statement": statement})
        assert 200 == made.status_code, made.text
        receipt = made.json()
        proof = record_proof(home, visited, 1)
        checked = api.post("/v1/settlement/records/verify", headers=headers,
                           json={"proof": proof, "anchor": receipt})
        assert 200 == checked.status_code, checked.text
        assert checked.json()["verified"]
        missing = api.post("/v1/settlement/records/verify", headers=headers,
                           json={"proof": proof, "anchor": {**receipt, "first": 77}})
        assert 404 == missing.status_code
        assert missing.headers["content-type"].startswith("application/problem+json")
        bad = api.post("/v1/settlement/statements/anchor", headers=headers,
                       json={"statement": {**statement, "records": {}}})
        assert 400 == bad.status_code


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
_receipt = st.fixed_dictionaries({}, optional={
    "domain": st.text(max_size=60) | _json,
    "first": st.integers(-3, 10) | st.sampled_from([2**63 - 1, 2**63, 2**64]) | _json,
    "issuer": st.text("0123456789abcdef", max_size=66) | _json})
_proof = st.fixed_dictionaries({}, optional={
    "record": st.text(max_size=30) | _json, "index": st.integers(-3, 10) | _json,
    "size": st.integers(-3, 10) | st.sampled_from([2**63, 2**64]) | _json,
    "path": st.lists(st.text("0123456789abcdef", max_size=66), max_size=4) | _json})


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(proof=_proof, receipt=_receipt, statement=st.dictionaries(st.text(max_size=10), _json,
                                                                  max_size=5))
@example(proof={}, receipt={"domain": "usage:x", "first": 2**64, "issuer": "00" * 32},
         statement={"agreement": "a", "records": {"merkle_root": "00" * 32, "size": 2**64}})
def test_untrusted_proofs_receipts_and_statements_never_crash(
    sqlite_runtime: Runtime, proof: dict[str, Any], receipt: dict[str, Any],
    statement: dict[str, Any],
) -> None:
    """Arbitrary JSON as proof, receipt or statement: a result or a simtrust error."""
    node = sqlite_runtime.ledger
    with contextlib.suppress(SimtrustError):
        verify_anchored_record(node, proof, receipt)
    with contextlib.suppress(SimtrustError):
        anchor_statement(node, statement)
