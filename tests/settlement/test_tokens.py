"""Settlement tokens (issue 15 item 4): a foundry creates and mints the token, only its
holder may mint, and netted positions settle as token transfers that balance to zero."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simtrust.errors import InvalidInput, InvalidSignature, PermissionDenied
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer, Genesis, LedgerConfig, LedgerNode, Output
from simtrust.runtime import Runtime
from simtrust.settlement import (
    MicropaymentStream,
    SettlementTokens,
    aggregate_vouchers,
    net_statements,
    party_public_key,
)
from simtrust.store import SqliteDatabase
from tests.settlement.test_cli import cli

A, B, C = (Ed25519Signer(bytes([n]) * 32) for n in (1, 2, 3))


def test_create_mint_and_settle_netted_positions(sqlite_runtime: Runtime) -> None:
    node = sqlite_runtime.ledger
    operator = node.signer
    tokens = SettlementTokens(node)
    created = tokens.create(operator, max_supply=1_000_000, initial=10_000)
    token = created.token_id
    assert {token: 10_000} == node.balance(operator.public_key).tokens
    minted = tokens.mint(operator, token, 5_000)
    assert 15_000 == minted.minted
    assert {token: 15_000} == node.balance(operator.public_key).tokens
    with pytest.raises(InvalidInput):
        tokens.mint(A, token, 1)  # A holds no foundry
    with pytest.raises(InvalidInput):
        tokens.mint(operator, token, 1_000_000)  # beyond the maximum supply
    # Fund three operators, net their statements, settle in tokens.
    for party in (A, B, C):
        node.transfer(operator, party.public_key, 1_000, token=token)
    a, b, c = (did_key(p.public_key) for p in (A, B, C))
    statements = [
        {"payer": a, "payee": b, "currency": "EUR", "total_minor_units": 400},
        {"payer": b, "payee": c, "currency": "EUR", "total_minor_units": 300},
        {"payer": c, "payee": a, "currency": "EUR", "total_minor_units": 100},
    ]
    book = net_statements(statements)["currencies"]["EUR"]
    before = {p: node.balance(party_public_key(p)).tokens[token] for p in (a, b, c)}
    for payer in (A, B, C):
        tokens.settle(book["transfers"], payer, token)
    after = {p: node.balance(party_public_key(p)).tokens.get(token, 0) for p in (a, b, c)}
    assert {p: after[p] - before[p] for p in (a, b, c)} == book["positions"]
    assert sum(after.values()) == sum(before.values())


def test_cli_create_mint_and_pay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    cli("init", "--json", check=True)
    created = json.loads(cli("settle", "token-create", "--max-supply", "1000000", "--initial",
                             "1000", "--json", check=True).stdout)
    token = created["token"]
    minted = json.loads(cli("settle", "token-mint", "--token", token, "--amount", "500",
                            "--json", check=True).stdout)
    assert 1500 == minted["minted"]
    payer = json.loads(cli("settle", "keygen", "--out", str(tmp_path / "a.key"), "--json",
                           check=True).stdout)["did"]
    payee = did_key(B.public_key)
    cli("ledger", "transfer", "--to", party_public_key(payer).hex(), "--amount", "700",
        "--token", token, check=True)
    netting = tmp_path / "net.json"
    netting.write_text(json.dumps({"currencies": {"EUR": {"transfers": [
        {"from": payer, "to": payee, "amount_minor_units": 250}]}}}))
    paid = json.loads(cli("settle", "pay", str(netting), "--currency", "EUR", "--token", token,
                          "--key", str(tmp_path / "a.key"), "--json", check=True).stdout)
    assert 1 == len(paid["paid"])
    balance = json.loads(cli("ledger", "balance", party_public_key(payee).hex(), "--json",
                             check=True).stdout)
    assert {token: 250} == balance["tokens"]
    refused = cli("settle", "token-mint", "--token", token, "--amount", "1", "--key",
                  str(tmp_path / "a.key"))
    assert 2 == refused.returncode


def test_micropayments_aggregate_into_one_output_per_period(sqlite_runtime: Runtime) -> None:
    node = sqlite_runtime.ledger
    tokens = SettlementTokens(node)
    token = tokens.create(node.signer, max_supply=10**9, initial=10**6).token_id
    node.transfer(node.signer, A.public_key, 10_000, token=token)
    payee = did_key(B.public_key)
    stream = MicropaymentStream(A, payee, channel="meter-7", period="2026-01", currency="EUR")
    vouchers = [stream.charge(1 + n % 3) for n in range(300)]
    [aggregate] = aggregate_vouchers(vouchers)
    assert (300, 600) == (aggregate["events"], aggregate["total_minor_units"])
    outputs_before = len(node.outputs(B.public_key))
    tokens.settle_stream(aggregate, A, token)
    assert {token: 600} == node.balance(B.public_key).tokens
    assert outputs_before + 1 == len(node.outputs(B.public_key))
    forged = dict(vouchers[-1], cumulative_minor_units=10**6)
    with pytest.raises(InvalidSignature):
        aggregate_vouchers([*vouchers, forged])
    with pytest.raises(InvalidInput):
        aggregate_vouchers([vouchers[5], vouchers[4]])


def test_only_genesis_token_issuers_create_tokens(tmp_path: Path) -> None:
    """The consortium's genesis decides who may create a settlement token (item 4)."""
    config = LedgerConfig()
    now = int(datetime.now(UTC).timestamp() * 1000)
    genesis = Genesis(config.network_id, now - 1000,
                      (Output(A.public_key, 1_000), Output(B.public_key, 1_000)),
                      (A.public_key,))
    db = SqliteDatabase(tmp_path / "ledger.db")
    node = LedgerNode(db, A, genesis=genesis, config=config)
    try:
        tokens = SettlementTokens(node)
        with pytest.raises(PermissionDenied, match="token issuer"):
            tokens.create(B, max_supply=100, initial=10)
        receipt = tokens.create(A, max_supply=100, initial=10)
        assert {receipt.token_id: 10} == node.balance(A.public_key).tokens
        assert {} == node.balance(B.public_key).tokens
    finally:
        node.close()
        db.close()


def test_cli_vouchers_sign_aggregate_and_pay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(tmp_path / "home"))
    cli("init", "--json", check=True)
    token = json.loads(cli("settle", "token-create", "--max-supply", "100000", "--initial",
                           "10000", "--json", check=True).stdout)["token"]
    payer = json.loads(cli("settle", "keygen", "--out", str(tmp_path / "a.key"), "--json",
                           check=True).stdout)["did"]
    cli("ledger", "transfer", "--to", party_public_key(payer).hex(), "--amount", "500",
        "--token", token, check=True)
    payee = did_key(B.public_key)
    key = str(tmp_path / "a.key")
    lines = [cli("settle", "voucher", "--key", key, "--amount", "7", "--payee", payee,
                 "--channel", "meter-9", "--period", "2026-02", check=True).stdout]
    for amount in (3, 5):
        last = tmp_path / "last.json"
        last.write_text(lines[-1])
        lines.append(cli("settle", "voucher", "--key", key, "--amount", str(amount),
                         "--after", str(last), check=True).stdout)
    assert [1, 2, 3] == [json.loads(v)["seq"] for v in lines]
    jsonl = tmp_path / "vouchers.jsonl"
    jsonl.write_text("".join(lines))
    aggregate = json.loads(cli("settle", "vouchers-aggregate", str(jsonl), "--json",
                               check=True).stdout)
    assert [(3, 15)] == [(s["events"], s["total_minor_units"]) for s in aggregate["streams"]]
    agg = tmp_path / "agg.json"
    agg.write_text(json.dumps(aggregate))
    paid = json.loads(cli("settle", "vouchers-pay", str(agg), "--token", token, "--key", key,
                          "--json", check=True).stdout)
    assert 1 == len(paid["paid"])
    balance = json.loads(cli("ledger", "balance", party_public_key(payee).hex(), "--json",
                             check=True).stdout)
    assert {token: 15} == balance["tokens"]
    # A tampered voucher, a stream continued by another key, an unreadable file: exit 2.
    forged = json.loads(lines[-1]) | {"cumulative_minor_units": 999}
    jsonl.write_text("\n".join([*[v.strip() for v in lines], json.dumps(forged)]) + "\n")
    assert 0 != cli("settle", "vouchers-aggregate", str(jsonl)).returncode
    other = tmp_path / "b.key"
    other.write_text(json.dumps({"type": "Ed25519", "seed": (b"\x07" * 32).hex()}))
    assert 2 == cli("settle", "voucher", "--key", str(other), "--amount", "1", "--after",
                    str(tmp_path / "last.json")).returncode
    (tmp_path / "junk.jsonl").write_text("{nope")
    assert 2 == cli("settle", "vouchers-aggregate", str(tmp_path / "junk.jsonl")).returncode
    assert 2 == cli("settle", "voucher", "--key", key, "--amount", "1").returncode
