"""Settlement tokens on the UTXO ledger: a foundry per token, minting, netted settlement transfers.

A settlement token is a native token whose supply a foundry output controls
(``docs/ledger.md``, "Native tokens"): whoever can spend the foundry output
mints, up to the maximum supply fixed at creation. Who may create a token at
all is the consortium's decision, written in its genesis (``token_issuers``);
the ledger voids a foundry created by any other key, and :meth:`create`
refuses before issuing. Netted positions settle as
token transfers from each payer's key to each payee's key; parties are named
by ``did:key`` so that the ledger owner (an Ed25519 public key) follows from
the name. Every transaction is finalized before the call returns (or raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simtrust.errors import InvalidInput, PermissionDenied, Rejected
from simtrust.identity import decode_multikey, did_key
from simtrust.ledger import (
    Ed25519Signer,
    Foundry,
    LedgerNode,
    Output,
    PayloadType,
    encode_transaction,
    foundry_token_id,
)

__all__ = ["SettlementTokens", "TokenReceipt", "party_public_key"]


def party_public_key(party: str) -> bytes:
    """The Ed25519 public key a ``did:key`` party owns on the ledger."""
    if not party.startswith("did:key:"):
        raise InvalidInput(f"{party}: settlement on the ledger needs did:key parties")
    _, key = decode_multikey(party.removeprefix("did:key:"))
    return key


@dataclass(frozen=True, slots=True)
class TokenReceipt:
    """The token a transaction created or minted, and the finalized message carrying it."""

    token_id: bytes
    message_id: bytes
    minted: int
    max_supply: int

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token_id.hex(),
            "message_id": self.message_id.hex(),
            "minted": self.minted,
            "max_supply": self.max_supply,
        }


class SettlementTokens:
    """Create, mint and settle with native tokens through one ledger node."""

    __slots__ = ("_node",)

    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def _issue(self, signer: Ed25519Signer, inputs: list[bytes], outputs: list[Output]) -> bytes:
        result = self._node.issue(
            PayloadType.TRANSACTION, encode_transaction(inputs, outputs, []), signer=signer
        )
        result.raise_if_rejected()
        if result.message_id is None:
            raise Rejected("encoding", "the transaction has no message id")
        status = self._node.status(result.message_id)
        if status.get("state") != "finalized":
            raise Rejected(
                str(status.get("reason") or status.get("state")),
                f"the token transaction was not applied ({status.get('reason') or 'pending'})",
            )
        return result.message_id

    def create(self, issuer: Ed25519Signer, max_supply: int, initial: int) -> TokenReceipt:
        """A new token whose foundry ``issuer`` holds, with ``initial`` tokens minted to it."""
        if not 0 <= initial <= max_supply or max_supply <= 0:
            raise InvalidInput("need 0 ≤ initial ≤ max_supply and max_supply > 0")
        issuers = self._node.genesis.token_issuers
        if issuers and issuer.public_key not in issuers:
            raise PermissionDenied(
                "the consortium's genesis does not list this key as a token issuer"
            )
        funding = [
            (oid, out)
            for oid, out in self._node.outputs(issuer.public_key)
            if out.foundry is None and out.amount >= 1
        ]
        if not funding:
            raise InvalidInput("the issuer holds no base units to fund a foundry output")
        oid, out = min(funding)
        token = foundry_token_id(oid, 0)
        tokens = dict(out.tokens)
        tokens[token] = tokens.get(token, 0) + initial
        held = tuple(sorted((t, n) for t, n in tokens.items() if n))
        outputs = [
            Output(issuer.public_key, 1, (), Foundry(token, initial, max_supply)),
            Output(issuer.public_key, out.amount - 1, held),
        ]
        message = self._issue(issuer, [oid], outputs)
        return TokenReceipt(token, message, initial, max_supply)

    def mint(self, issuer: Ed25519Signer, token: bytes, amount: int) -> TokenReceipt:
        """Mint ``amount`` more of ``token`` to ``issuer``, who must hold its foundry."""
        if amount <= 0:
            raise InvalidInput("mint a positive amount")
        owned = self._node.outputs(issuer.public_key)
        foundry = next(
            ((oid, out) for oid, out in owned if out.foundry and out.foundry.token_id == token),
            None,
        )
        if foundry is None:
            raise InvalidInput("this key does not hold the token's foundry: it may not mint")
        oid, out = foundry
        if out.foundry is None:  # narrowed above; kept for the type checker
            raise InvalidInput("not a foundry output")
        minted = out.foundry.minted + amount
        if minted > out.foundry.max_supply:
            raise InvalidInput(f"minting {amount} would exceed the maximum supply")
        supply = Foundry(token, minted, out.foundry.max_supply)
        outputs = [
            Output(issuer.public_key, out.amount, (), supply),
            Output(issuer.public_key, 0, ((token, amount),)),
        ]
        message = self._issue(issuer, [oid], outputs)
        return TokenReceipt(token, message, minted, out.foundry.max_supply)

    def settle(
        self, transfers: list[dict[str, Any]], payer: Ed25519Signer, token: bytes
    ) -> list[dict[str, Any]]:
        """Pay every netted transfer whose ``from`` is ``payer``'s did:key, in tokens."""
        me = did_key(payer.public_key)
        paid = []
        for transfer in transfers:
            if transfer.get("from") != me:
                continue
            amount = transfer.get("amount_minor_units")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise InvalidInput("a transfer's amount must be a positive integer")
            to = party_public_key(str(transfer.get("to")))
            message = self._node.transfer(payer, to, amount, token=token)
            state = self._node.status(message)
            if state.get("state") != "finalized":
                raise Rejected(str(state.get("reason")), "a settlement transfer was not applied")
            paid.append({**transfer, "message_id": message.hex()})
        return paid

    def settle_stream(
        self, aggregate: dict[str, Any], payer: Ed25519Signer, token: bytes
    ) -> dict[str, Any]:
        """Pay one aggregated micropayment stream with a single token transfer."""
        transfer = {"from": aggregate.get("payer"), "to": aggregate.get("payee"),
                    "amount_minor_units": aggregate.get("total_minor_units")}
        paid = self.settle([transfer], payer, token)
        if not paid:
            raise InvalidInput("the stream's payer is not this key")
        return {**aggregate, "message_id": paid[0]["message_id"]}
