"""SLA credit notes settle through the same statements (issue 15 item 5): the credits the
schedule grants become a note both parties sign, netted beside the roaming statements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.errors import InvalidInput, InvalidSignature
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import (
    CREDIT_NOTE_TYPE,
    build_credit_note,
    evaluate_sla,
    net_statements,
    parse_sla_contract,
    sign_statement,
    verify_statement,
)
from tests.settlement.test_cli import cli
from tests.settlement.test_sla import CONTRACT, ROWS, files

PROVIDER = Ed25519Signer(bytes(range(40, 72)))
CUSTOMER = Ed25519Signer(bytes(range(50, 82)))
PARTIES = {"provider": did_key(PROVIDER.public_key), "customer": did_key(CUSTOMER.public_key)}


def note(tmp_path: Path) -> dict[str, Any]:
    contract, measurements = files(tmp_path, ROWS, **PARTIES)
    terms = parse_sla_contract(contract.read_text())
    return build_credit_note(terms, evaluate_sla(terms, measurements))


def test_the_note_carries_the_scheduled_credits(tmp_path: Path) -> None:
    document = note(tmp_path)
    assert CREDIT_NOTE_TYPE == document["type"]
    assert (PARTIES["provider"], PARTIES["customer"]) == (document["payer"], document["payee"])
    assert 45_000 == document["credit_minor_units"]
    assert [15_000, 30_000] == [p["credit_minor_units"] for p in document["periods"]]


def test_a_signed_note_nets_against_the_roaming_statement(tmp_path: Path) -> None:
    signed = sign_statement(sign_statement(note(tmp_path), "payer", PROVIDER), "payee", CUSTOMER)
    assert ["payer", "payee"] == verify_statement(signed)
    # the customer owes the provider 100,000 for roaming; the credit of 45,000 comes off
    roaming = {"type": "RoamingStatement", "payer": PARTIES["customer"],
               "payee": PARTIES["provider"], "currency": "EUR", "total_minor_units": 100_000}
    book = net_statements([roaming, signed])["currencies"]["EUR"]
    assert {PARTIES["customer"]: -55_000, PARTIES["provider"]: 55_000} == book["positions"]
    assert [{"from": PARTIES["customer"], "to": PARTIES["provider"],
             "amount_minor_units": 55_000}] == book["transfers"]
    assert 0 == sum(book["positions"].values())


def test_only_the_parties_sign_and_a_changed_credit_fails(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        sign_statement(note(tmp_path), "payer", CUSTOMER)
    signed = sign_statement(sign_statement(note(tmp_path), "payer", PROVIDER), "payee", CUSTOMER)
    with pytest.raises(InvalidSignature):
        verify_statement({**signed, "credit_minor_units": 1})


def test_a_contract_without_parties_has_no_note(tmp_path: Path) -> None:
    contract, measurements = files(tmp_path, ROWS)
    data = {k: v for k, v in json.loads(contract.read_text()).items() if k != "customer"}
    terms = parse_sla_contract(json.dumps(data))
    with pytest.raises(InvalidInput):
        build_credit_note(terms, evaluate_sla(terms, measurements))


def test_cli_credit_note_sign_verify_net(tmp_path: Path) -> None:
    contract, measurements = files(tmp_path, ROWS, **PARTIES)
    out = tmp_path / "note.json"
    done = cli("sla", "credit-note", "--contract", str(contract), "--measurements",
               str(measurements), "--out", str(out), "--json", check=True)
    assert 45_000 == json.loads(done.stdout)["credit_minor_units"]
    assert 45_000 == json.loads(out.read_text())["credit_minor_units"]
    assert 0 != cli("settle", "verify", str(out)).returncode  # nobody signed yet
    for role, signer in (("payer", PROVIDER), ("payee", CUSTOMER)):
        key = tmp_path / f"{role}.key"
        key.write_text(json.dumps({"seed": signer.seed().hex()}))
        cli("settle", "sign", str(out), "--key", str(key), "--role", role, check=True)
    assert 0 == cli("settle", "verify", str(out)).returncode
    netted = cli("settle", "net", str(out), "--json", check=True)
    book = json.loads(netted.stdout)["currencies"]["EUR"]
    assert {PARTIES["customer"]: 45_000, PARTIES["provider"]: -45_000} == book["positions"]


def test_cli_credit_note_bad_input_writes_nothing(tmp_path: Path) -> None:
    contract, measurements = files(tmp_path, ROWS)
    contract.write_text(json.dumps({k: v for k, v in CONTRACT.items() if k != "provider"}))
    out = tmp_path / "note.json"
    done = cli("sla", "credit-note", "--contract", str(contract), "--measurements",
               str(measurements), "--out", str(out), "--json")
    assert (2, "") == (done.returncode, done.stdout)
    assert 1 == len(done.stderr.strip().splitlines())
    assert not out.exists()
    contract, measurements = files(tmp_path, [], **PARTIES)
    measurements.write_text("when,what\n1,2\n")
    done = cli("sla", "credit-note", "--contract", str(contract), "--measurements",
               str(measurements), "--out", str(out))
    assert 2 == done.returncode
    assert not out.exists()
