"""The node's wallet: authoring, signing and submitting messages and value transfers.

Builds messages by the encoding of ``docs/ledger.md`` ("Messages") with
parents from tip selection, spends finalized outputs (``docs/ledger.md``,
"Value") and signs with the node key or a caller's key; every message goes
through the node's :class:`~simtrust.ledger._ingest.IngestPipeline` like
any other.
"""

from __future__ import annotations

from collections.abc import Sequence

from simtrust.errors import InvalidInput, Rejected
from simtrust.ledger._codec import (
    Anchor,
    Output,
    PayloadType,
    Unlock,
    encode_anchor,
    encode_tagged_data,
    encode_transaction,
    essence_digest,
    payload_code,
    signing_bytes,
    transaction_essence,
)
from simtrust.ledger._ingest import IngestPipeline
from simtrust.ledger._keys import Ed25519Signer
from simtrust.ledger._types import SubmitResult

__all__ = ["Wallet"]


class Wallet:
    """Messages and transfers signed by ``signer`` (the node key) or a given key."""

    __slots__ = ("_lock", "_pipeline", "network_id", "signer")

    def __init__(self, pipeline: IngestPipeline, signer: Ed25519Signer) -> None:
        self._pipeline = pipeline
        self._lock = pipeline.lock
        self.signer = signer
        self.network_id = pipeline.network_id

    def build(
        self,
        payload_type: int | str,
        payload: bytes,
        *,
        signer: Ed25519Signer | None = None,
        parents: Sequence[bytes] | None = None,
        issued_at_ms: int | None = None,
    ) -> bytes:
        """Encode and sign a message, choosing parents by tip selection when none are given."""
        ptype = payload_code(payload_type)
        key = signer or self.signer
        at = self._pipeline.now_ms() if issued_at_ms is None else issued_at_ms
        chosen = list(parents) if parents else self._pipeline.select_parents()
        body = signing_bytes(self.network_id, key.public_key, at, chosen, ptype, payload)
        return body + key.sign(body)

    def issue(
        self,
        payload_type: int | str,
        payload: bytes,
        *,
        signer: Ed25519Signer | None = None,
        parents: Sequence[bytes] | None = None,
    ) -> SubmitResult:
        """Build, sign and submit one message; raise :class:`Rejected` on rejection."""
        with self._lock:
            raw = self.build(payload_type, payload, signer=signer, parents=parents)
            return self._pipeline.submit(raw)

    def issue_data(self, tag: bytes, data: bytes, signer: Ed25519Signer | None = None) -> bytes:
        result = self.issue(PayloadType.TAGGED_DATA, encode_tagged_data(tag, data), signer=signer)
        return _accepted_id(result)

    def anchor(self, domain: str, first: int, last: int, size: int, root: bytes) -> bytes:
        """Issue an anchor message signed by the node key; return its id."""
        payload = encode_anchor(Anchor(domain, first, last, size, root))
        return _accepted_id(self.issue(PayloadType.ANCHOR, payload))

    def transfer(
        self,
        signer: Ed25519Signer,
        to: bytes,
        amount: int,
        *,
        token: bytes | None = None,
    ) -> bytes:
        """Send ``amount`` base units (or native tokens of ``token``) from ``signer`` to ``to``."""
        with self._lock:
            raw = self.build_transfer(signer, to, amount, token=token)
            return _accepted_id(self._pipeline.submit(raw))

    def build_transfer(
        self,
        signer: Ed25519Signer,
        to: bytes,
        amount: int,
        *,
        token: bytes | None = None,
    ) -> bytes:
        """A signed transfer message spending ``signer``'s finalized outputs (not submitted)."""
        if len(to) != 32:
            raise InvalidInput("recipient must be a 32-byte Ed25519 public key")
        if amount <= 0:
            raise InvalidInput("amount must be positive")
        with self._lock:
            owner = signer.public_key
            chosen: list[tuple[bytes, Output]] = []
            have_base = have_token = 0
            for oid, out in self._pipeline.utxo.outputs_of(owner):
                if out.foundry is not None:
                    continue
                tok = dict(out.tokens).get(token, 0) if token else 0
                if token and not tok:
                    continue
                chosen.append((oid, out))
                have_base += out.amount
                have_token += tok
                if (have_token if token else have_base) >= amount:
                    break
            if (have_token if token else have_base) < amount:
                raise InvalidInput("insufficient funds")
            outputs = _transfer_outputs(owner, to, amount, token, chosen, have_base)
            payload = encode_transaction([o for o, _ in chosen], outputs)
            return self.build(PayloadType.TRANSACTION, payload, signer=signer)

    def sign_unlock(self, signer: Ed25519Signer, inputs: Sequence[bytes],
                    outputs: Sequence[Output]) -> Unlock:
        """An unlock by ``signer`` for a transaction another key issues."""
        digest = essence_digest(self.network_id, transaction_essence(inputs, outputs))
        return Unlock(signer.public_key, signer.sign(digest))


def _accepted_id(result: SubmitResult) -> bytes:
    result.raise_if_rejected()
    if result.message_id is None:
        raise Rejected("encoding", "message has no id")
    return result.message_id


def _transfer_outputs(
    owner: bytes,
    to: bytes,
    amount: int,
    token: bytes | None,
    chosen: Sequence[tuple[bytes, Output]],
    have_base: int,
) -> list[Output]:
    tokens_in: dict[bytes, int] = {}
    for _, out in chosen:
        for tid, n in out.tokens:
            tokens_in[tid] = tokens_in.get(tid, 0) + n
    if token is None:
        outputs = [Output(to, amount)]
        change_base = have_base - amount
        change_tokens = tokens_in
    else:
        # The recipient's output carries the tokens; base units all go back as change.
        outputs = [Output(to, 0, ((token, amount),))]
        change_base = have_base
        change_tokens = dict(tokens_in)
        change_tokens[token] -= amount
    rest = tuple(sorted((t, n) for t, n in change_tokens.items() if n))
    if change_base or rest:
        outputs.append(Output(owner, change_base, rest))
    return outputs

