"""Statements (issue 15 item 4): both parties sign the RFC 8785 form with Ed25519, any
change breaks a signature, and any record proves against the statement's Merkle root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simtrust.crypto.merkle import MerkleProofError
from simtrust.errors import InvalidInput, InvalidSignature
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import (
    build_statement,
    carry_disputes,
    load_agreement,
    net_statements,
    reconcile_files,
    record_leaves,
    record_proof,
    resolve_dispute,
    sign_statement,
    statement_id,
    verify_record_proof,
    verify_statement,
)
from tests.settlement.test_reconcile import agreement_file, row, write

HOME_KEY = Ed25519Signer(bytes(range(32)))
VISITED_KEY = Ed25519Signer(bytes(range(1, 33)))


def _statement(tmp_path: Path) -> tuple[dict[str, Any], Path, Path]:
    parties = {"home": did_key(HOME_KEY.public_key), "visited": did_key(VISITED_KEY.public_key)}
    terms = load_agreement(agreement_file(tmp_path, parties=parties))
    home = write(tmp_path, "home.csv", [row("1", volume=3_000_000), row("2", volume=10**6)])
    visited = write(tmp_path, "visited.csv", [row("1", volume=3_000_000), row("3", volume=10**6)])
    result = reconcile_files(terms, home, visited)
    return build_statement(terms, result, home, visited), home, visited


def test_both_parties_sign_and_any_change_breaks_it(tmp_path: Path) -> None:
    statement, _, _ = _statement(tmp_path)
    assert 450 == statement["total_minor_units"]
    assert 150 == statement["disputed_minor_units"]
    with pytest.raises(InvalidSignature):
        verify_statement(statement)
    signed = sign_statement(sign_statement(statement, "payer", HOME_KEY), "payee", VISITED_KEY)
    assert ["payer", "payee"] == verify_statement(signed)
    tampered = {**signed, "total_minor_units": 451}
    with pytest.raises(InvalidSignature):
        verify_statement(tampered)
    with pytest.raises(InvalidInput):
        sign_statement(statement, "payer", VISITED_KEY)  # not the payer's key
    forged = {**signed, "signatures": [dict(signed["signatures"][0], role="payee")]}
    with pytest.raises(InvalidSignature):
        verify_statement(forged)


def test_every_record_proves_against_the_root(tmp_path: Path) -> None:
    statement, home, visited = _statement(tmp_path)
    root = statement["records"]["merkle_root"]
    assert 4 == statement["records"]["size"] == len(list(record_leaves(home, visited)))
    for index in range(4):
        proof = record_proof(home, visited, index)
        verify_record_proof(proof, root)
    proof = record_proof(home, visited, 2)
    assert proof["record"].startswith("visited,1,")
    with pytest.raises(MerkleProofError):
        verify_record_proof({**proof, "record": proof["record"].replace("visited,1,", "visited,9,")},
                            root)


def test_disputes_resolve_by_agreement_or_carry_into_the_next_statement(tmp_path: Path) -> None:
    statement, _, _ = _statement(tmp_path)
    signed = sign_statement(sign_statement(statement, "payer", HOME_KEY), "payee", VISITED_KEY)
    assert 150 == signed["disputed_minor_units"]
    # Unresolved: the next period's statement carries the open amount, still disputed.
    following = {**statement, "total_minor_units": 900, "disputed_minor_units": 0}
    carried = carry_disputes(following, signed)
    assert [{"statement": statement_id(signed), "remaining_minor_units": 150}] == \
        carried["carried_disputes"]
    carried = sign_statement(sign_statement(carried, "payer", HOME_KEY), "payee", VISITED_KEY)
    # Resolved by both parties: 100 of the 150 are owed, netted with the statement.
    resolution = resolve_dispute(carried, 100)
    with pytest.raises(InvalidSignature):
        verify_statement(resolution)
    resolution = sign_statement(sign_statement(resolution, "payer", HOME_KEY), "payee",
                                VISITED_KEY)
    book = net_statements([carried, resolution])["currencies"]["EUR"]
    assert 900 + 100 == book["positions"][signed["payee"]]
    with pytest.raises(InvalidInput):
        resolve_dispute(carried, 151)
    # After a resolution nothing more is carried.
    later = {**statement, "total_minor_units": 10, "disputed_minor_units": 0}
    assert [] == carry_disputes(later, carried, resolution)["carried_disputes"]


def test_disputes_expire_into_the_next_statement_only_after_the_window(tmp_path: Path) -> None:
    """With the agreement's dispute window, open disputes move into the next statement only
    when that statement's period ends after the window closed (judged from the periods)."""
    parties = {"home": did_key(HOME_KEY.public_key), "visited": did_key(VISITED_KEY.public_key)}
    terms = load_agreement(agreement_file(tmp_path, parties=parties, dispute_window_days=30))
    home = write(tmp_path, "home.csv", [row("1", volume=3_000_000)])
    visited = write(tmp_path, "visited.csv", [row("1", volume=3_000_000), row("3", volume=10**6)])
    statement = build_statement(terms, reconcile_files(terms, home, visited), home, visited)
    assert 30 == statement["dispute_window_days"]
    signed = sign_statement(sign_statement(statement, "payer", HOME_KEY), "payee", VISITED_KEY)
    assert signed["disputed_minor_units"] > 0
    # January's window closes on 3 March: February's statement is too early ...
    february = {**statement, "period": {"from": "2026-02-01T00:00:00Z",
                                        "until": "2026-03-01T00:00:00Z"}}
    with pytest.raises(InvalidInput):
        carry_disputes(february, signed)
    # ... March's carries them; a resolution is possible at any time.
    march = {**statement, "period": {"from": "2026-03-01T00:00:00Z",
                                     "until": "2026-04-01T00:00:00Z"}}
    assert signed["disputed_minor_units"] == carry_disputes(march, signed)[
        "carried_disputes"][0]["remaining_minor_units"]
    resolution = sign_statement(sign_statement(resolve_dispute(signed, 0), "payer", HOME_KEY),
                                "payee", VISITED_KEY)
    assert [] == carry_disputes(february, signed, resolution)["carried_disputes"]
    with pytest.raises(InvalidInput):
        load_agreement(agreement_file(tmp_path, dispute_window_days=-1))
