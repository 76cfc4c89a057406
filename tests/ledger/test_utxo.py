"""Value: exact balances, white-flag double spends, unlocks, foundry-minted native tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.errors import InvalidInput
from simtrust.ledger import (
    Ed25519Signer,
    Foundry,
    Genesis,
    LedgerConfig,
    LedgerNode,
    Output,
    PayloadType,
    encode_transaction,
    foundry_token_id,
    output_id,
)
from simtrust.ledger._node import DEFAULT_SUPPLY
from simtrust.store import SqliteDatabase
from tests.ledger.conftest import ManualClock

ALICE = Ed25519Signer(b"\x0a" * 32)
BOB = Ed25519Signer(b"\x0b" * 32)


def tx(node: LedgerNode, signer: Ed25519Signer, inputs: list[bytes], outputs: list[Output],
       unlockers: tuple[Ed25519Signer, ...] = ()) -> bytes:
    unlocks = [node.sign_unlock(u, inputs, outputs) for u in unlockers]
    payload = encode_transaction(inputs, outputs, unlocks)
    result = node.issue(PayloadType.TRANSACTION, payload, signer=signer)
    assert result.message_id is not None
    return result.message_id


def test_genesis_allocates_the_supply(node: LedgerNode, operator: Ed25519Signer) -> None:
    assert DEFAULT_SUPPLY == node.balance(operator.public_key).amount
    assert DEFAULT_SUPPLY == node.utxo.total_supply()


def test_transfer_balances_are_exact(node: LedgerNode, operator: Ed25519Signer) -> None:
    node.transfer(operator, ALICE.public_key, 1_000)
    node.transfer(ALICE, BOB.public_key, 333)
    node.transfer(ALICE, BOB.public_key, 1)
    assert 666 == node.balance(ALICE.public_key).amount
    assert 334 == node.balance(BOB.public_key).amount
    assert DEFAULT_SUPPLY - 1_000 == node.balance(operator.public_key).amount
    assert DEFAULT_SUPPLY == node.utxo.total_supply()
    with pytest.raises(InvalidInput):
        node.transfer(BOB, ALICE.public_key, 335)


def test_double_spend_later_one_conflicts_with_dependants(
    node: LedgerNode, operator: Ed25519Signer
) -> None:
    g0 = output_id(node.genesis_id, 0)
    first = tx(node, operator, [g0], [Output(ALICE.public_key, DEFAULT_SUPPLY)])
    second = tx(node, operator, [g0], [Output(BOB.public_key, DEFAULT_SUPPLY)])
    # BOB spends the output the conflicting tx "created": void too (dependant).
    dependant = tx(node, BOB, [output_id(second, 0)], [Output(ALICE.public_key, DEFAULT_SUPPLY)])
    assert "finalized" == node.status(first)["state"]
    assert {"state": "conflicting", "reason": "conflict-double-spend"}.items() <= node.status(
        second).items()
    assert "conflict-input-void" == node.status(dependant)["reason"]
    assert DEFAULT_SUPPLY == node.balance(ALICE.public_key).amount
    assert 0 == node.balance(BOB.public_key).amount
    # The conflicting messages stay in the tangle.
    assert node.get_message(second).id == second
    assert node.snapshot() == node.recompute()


def test_spending_needs_every_owner(node: LedgerNode, operator: Ed25519Signer) -> None:
    paid = node.transfer(operator, ALICE.public_key, 500)
    a_out = output_id(paid, 0)
    g_change = output_id(paid, 1)
    # Operator tries to spend ALICE's output without her unlock: void.
    stolen = tx(node, operator, [a_out, g_change],
                [Output(operator.public_key, DEFAULT_SUPPLY)])
    assert "conflict-unlock" == node.status(stolen)["reason"]
    # With ALICE's unlock signature it goes through.
    joint = tx(node, operator, [a_out, g_change],
               [Output(BOB.public_key, DEFAULT_SUPPLY)], unlockers=(ALICE,))
    assert "finalized" == node.status(joint)["state"]
    assert DEFAULT_SUPPLY == node.balance(BOB.public_key).amount


def test_amounts_must_balance(node: LedgerNode, operator: Ed25519Signer) -> None:
    g0 = output_id(node.genesis_id, 0)
    inflating = tx(node, operator, [g0], [Output(ALICE.public_key, DEFAULT_SUPPLY + 1)])
    assert "conflict-amount" == node.status(inflating)["reason"]
    assert DEFAULT_SUPPLY == node.utxo.total_supply()


def test_unknown_input_conflicts(node: LedgerNode, operator: Ed25519Signer) -> None:
    ghost = tx(node, operator, [output_id(b"\x44" * 32, 0)], [Output(ALICE.public_key, 1)])
    assert "conflict-double-spend" == node.status(ghost)["reason"]


def test_foundry_mints_transfers_and_melts_tokens(
    node: LedgerNode, operator: Ed25519Signer
) -> None:
    g0 = output_id(node.genesis_id, 0)
    token = foundry_token_id(g0, 0)
    op = operator.public_key
    created = tx(node, operator, [g0], [
        Output(op, 1, (), Foundry(token, 1_000, 1_000_000)),
        Output(op, DEFAULT_SUPPLY - 1, ((token, 1_000),)),
    ])
    assert "finalized" == node.status(created)["state"]
    assert {token: 1_000} == node.balance(op).tokens
    node.transfer(operator, ALICE.public_key, 250, token=token)
    assert {token: 250} == node.balance(ALICE.public_key).tokens
    assert {token: 750} == node.balance(op).tokens
    # Mint 500 more: foundry minted goes 1000 -> 1500.
    foundry_out = output_id(created, 0)
    change = next(oid for oid, o in node.outputs(op) if o.foundry is None)
    change_out = node.utxo.get(change)
    assert change_out is not None
    minted = tx(node, operator, [foundry_out, change], [
        Output(op, 1, (), Foundry(token, 1_500, 1_000_000)),
        Output(op, change_out.amount, ((token, 1_250),)),
    ])
    assert "finalized" == node.status(minted)["state"]
    assert {token: 1_250} == node.balance(op).tokens
    # Melt 250: minted goes 1500 -> 1250 and 250 tokens leave circulation.
    foundry_now = output_id(minted, 0)
    holding = output_id(minted, 1)
    held = node.utxo.get(holding)
    assert held is not None
    melted = tx(node, operator, [foundry_now, holding], [
        Output(op, 1, (), Foundry(token, 1_250, 1_000_000)),
        Output(op, held.amount, ((token, 1_000),)),
    ])
    assert "finalized" == node.status(melted)["state"]
    assert {token: 1_000} == node.balance(op).tokens
    # The maximum supply is fixed for the foundry's life.
    raised = tx(node, operator, [output_id(melted, 0), output_id(melted, 1)], [
        Output(op, 1, (), Foundry(token, 1_250, 2_000_000)),
        Output(op, held.amount, ((token, 1_000),)),
    ])
    assert "conflict-foundry" == node.status(raised)["reason"]


def test_token_rules_void_bad_transitions(node: LedgerNode, operator: Ed25519Signer) -> None:
    g0 = output_id(node.genesis_id, 0)
    op = operator.public_key
    fake = b"\x66" * 32
    out_of_thin_air = tx(node, operator, [g0], [Output(op, DEFAULT_SUPPLY, ((fake, 5),))])
    assert "conflict-tokens" == node.status(out_of_thin_air)["reason"]
    not_derived = tx(node, operator, [g0], [
        Output(op, 1, (), Foundry(fake, 5, 10)), Output(op, DEFAULT_SUPPLY - 1, ((fake, 5),)),
    ])
    assert "conflict-foundry" == node.status(not_derived)["reason"]
    token = foundry_token_id(g0, 0)
    undercounted = tx(node, operator, [g0], [
        Output(op, 1, (), Foundry(token, 5, 10)), Output(op, DEFAULT_SUPPLY - 1, ((token, 6),)),
    ])
    assert "conflict-foundry" == node.status(undercounted)["reason"]
    assert {} == node.balance(op).tokens
    assert node.snapshot() == node.recompute()


def test_genesis_token_issuers_decide_who_may_create_a_token(
    tmp_path: Path, clock: ManualClock, operator: Ed25519Signer
) -> None:
    """Only a key the genesis lists may create a foundry; any holder of it may still mint."""
    network = LedgerConfig().network_id
    t0 = int(clock().timestamp() * 1000) - 1000
    outputs = (Output(operator.public_key, 1_000), Output(ALICE.public_key, 1_000))
    genesis = Genesis(network, t0, outputs, (operator.public_key,))
    assert genesis == Genesis.decode(genesis.encode())
    plain = Genesis(network, t0, outputs)
    assert plain.encode() == Genesis.decode(plain.encode()).encode()  # old ids unchanged
    assert plain.id != genesis.id
    with pytest.raises(InvalidInput):
        Genesis.decode(genesis.encode()[:-1])
    db = SqliteDatabase(tmp_path / "issuers.db")
    node = LedgerNode(db, operator, genesis=genesis, clock=clock)
    try:
        a0 = output_id(genesis.id, 1)
        token = foundry_token_id(a0, 0)
        refused = tx(node, ALICE, [a0], [
            Output(ALICE.public_key, 1, (), Foundry(token, 5, 10)),
            Output(ALICE.public_key, 999, ((token, 5),)),
        ])
        assert "conflict-token-issuer" == node.status(refused)["reason"]
        assert {} == node.balance(ALICE.public_key).tokens
        o0 = output_id(genesis.id, 0)
        mine = foundry_token_id(o0, 0)
        created = tx(node, operator, [o0], [
            Output(ALICE.public_key, 1, (), Foundry(mine, 5, 10)),  # foundry handed to Alice
            Output(operator.public_key, 999, ((mine, 5),)),
        ])
        assert "finalized" == node.status(created)["state"]
        # Alice holds the foundry now: minting is hers, although she may not create tokens.
        minted = tx(node, ALICE, [output_id(created, 0)], [
            Output(ALICE.public_key, 1, (), Foundry(mine, 8, 10)),
            Output(ALICE.public_key, 0, ((mine, 3),)),
        ])
        assert "finalized" == node.status(minted)["state"]
        assert {mine: 3} == node.balance(ALICE.public_key).tokens
        assert node.snapshot() == node.recompute()
    finally:
        node.close()
    reopened = LedgerNode(db, operator, clock=clock)  # the rule comes back from the store
    try:
        assert genesis.id == reopened.genesis_id
        b0 = output_id(genesis.id, 1)
        again = tx(reopened, ALICE, [b0], [
            Output(ALICE.public_key, 1, (), Foundry(foundry_token_id(b0, 0), 1, 10)),
            Output(ALICE.public_key, 999, ((foundry_token_id(b0, 0), 1),)),
        ])
        assert "conflict-token-issuer" == reopened.status(again)["reason"]
    finally:
        reopened.close()
        db.close()
