"""The UTXO ledger: integer base units, native tokens under foundries, white-flag conflicts.

Applied only to finalized messages, in finalized order (``docs/ledger.md``,
"Value"). A transaction that spends an output that is already spent, unknown,
or was created by a void transaction is marked conflicting: it stays in the
tangle, its ledger effect is void ("white flag", IOTA TIP-0002), so every
dependant of a void transaction is void too. Genesis allocates the supply.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simtrust.errors import InvalidInput, Rejected
from simtrust.ledger._codec import (
    Foundry,
    Output,
    Transaction,
    _decode_output,
    decode_payload,
    encode_output,
    output_id,
)
from simtrust.ledger._orderer import FinalizedMessage

__all__ = ["Balance", "Genesis", "UtxoLedger", "foundry_token_id"]

_FOUNDRY_DOMAIN = b"simtrust/foundry/v1"
_GENESIS_DOMAIN = b"simtrust/genesis/v1"
_ISSUERS_TAG = b"\x00TI"


def foundry_token_id(first: bytes, output_index: int) -> bytes:
    """Token id of the foundry at output ``output_index`` of a tx with lowest input ``first``."""
    return hashlib.blake2b(
        _FOUNDRY_DOMAIN + first + struct.pack(">H", output_index), digest_size=32
    ).digest()


@dataclass(frozen=True, slots=True)
class Genesis:
    """The supply allocation every node of a network starts from."""

    network_id: bytes
    time_ms: int
    outputs: tuple[Output, ...]
    #: Keys allowed to create a token foundry; empty: any key holding base units may.
    token_issuers: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        parts = [self.network_id, struct.pack(">QH", self.time_ms, len(self.outputs))]
        parts += [encode_output(o) for o in self.outputs]
        if self.token_issuers:
            # An optional trailing section, so a genesis without issuers keeps its id.
            parts.append(_ISSUERS_TAG + struct.pack(">H", len(self.token_issuers)))
            parts += list(self.token_issuers)
        return b"".join(parts)

    @property
    def id(self) -> bytes:
        """The genesis id: root parent of the tangle and tx id of the genesis outputs."""
        return hashlib.blake2b(_GENESIS_DOMAIN + self.encode(), digest_size=32).digest()

    @classmethod
    def decode(cls, data: bytes) -> Genesis:
        if len(data) < 18:
            raise InvalidInput("malformed genesis")
        network_id = data[:8]
        time_ms, count = struct.unpack_from(">QH", data, 8)
        pos = 18
        outputs = []
        for _ in range(count):
            out, pos = _decode_output(data, pos)
            outputs.append(out)
        issuers: list[bytes] = []
        if data[pos:pos + len(_ISSUERS_TAG)] == _ISSUERS_TAG:
            pos += len(_ISSUERS_TAG)
            if pos + 2 > len(data):
                raise InvalidInput("malformed genesis token issuers")
            (n,) = struct.unpack_from(">H", data, pos)
            pos += 2
            if n == 0 or pos + 32 * n > len(data):
                raise InvalidInput("malformed genesis token issuers")
            issuers = [data[pos + 32 * i:pos + 32 * (i + 1)] for i in range(n)]
            pos += 32 * n
        if pos != len(data):
            raise InvalidInput("trailing bytes after genesis")
        return cls(network_id, time_ms, tuple(outputs), tuple(issuers))


@dataclass(frozen=True, slots=True)
class Balance:
    """Exact holdings of one owner: base units and native tokens by token id."""

    owner: bytes
    amount: int
    tokens: dict[bytes, int]
    outputs: int


class UtxoLedger:
    """Unspent outputs in memory, backed by ``ledger_outputs`` rows the node writes."""

    __slots__ = ("_by_owner", "_issuers", "_unspent", "_void", "new_rows", "spent_rows")

    def __init__(self, token_issuers: Iterable[bytes] = ()) -> None:
        #: Genesis rule: only these keys may create a foundry (empty: anyone may).
        self._issuers = frozenset(token_issuers)
        self._unspent: dict[bytes, Output] = {}
        self._by_owner: dict[bytes, set[bytes]] = {}
        self._void: set[bytes] = set()
        self.new_rows: list[tuple[bytes, bytes, int]] = []
        self.spent_rows: list[tuple[int, bytes]] = []

    # ----------------------------------------------------------- loading

    def load_genesis(self, genesis: Genesis) -> None:
        self._create(genesis.id, genesis.outputs, 0)

    def restore(
        self, unspent: Iterable[tuple[bytes, bytes]], void: Iterable[bytes]
    ) -> None:
        """Load unspent ``(output_id, encoded output)`` rows and the void tx ids."""
        for oid, body in unspent:
            out, _ = _decode_output(body, 0)
            self._add(oid, out)
        self._void.update(void)
        self.new_rows.clear()

    def mark_void(self, msg_id: bytes) -> None:
        self._void.add(msg_id)

    # ----------------------------------------------------------- queries

    def get(self, oid: bytes) -> Output | None:
        return self._unspent.get(oid)

    def outputs_of(self, owner: bytes) -> list[tuple[bytes, Output]]:
        return sorted((oid, self._unspent[oid]) for oid in self._by_owner.get(owner, ()))

    def balance(self, owner: bytes) -> Balance:
        amount = 0
        tokens: dict[bytes, int] = {}
        ids = self._by_owner.get(owner, set())
        for oid in ids:
            out = self._unspent[oid]
            amount += out.amount
            for tid, n in out.tokens:
                tokens[tid] = tokens.get(tid, 0) + n
        return Balance(owner, amount, dict(sorted(tokens.items())), len(ids))

    def total_supply(self) -> int:
        return sum(o.amount for o in self._unspent.values())

    def state_hash(self) -> bytes:
        """BLAKE2b-256 over the sorted unspent set: equal states hash equal."""
        h = hashlib.blake2b(digest_size=32)
        for oid in sorted(self._unspent):
            h.update(oid)
            h.update(encode_output(self._unspent[oid]))
        return h.digest()

    def __len__(self) -> int:
        return len(self._unspent)

    # ----------------------------------------------------------- applying

    def apply(self, fm: FinalizedMessage) -> None:
        """Apply a finalized transaction or raise ``Rejected`` (white flag)."""
        tx = fm.body
        if not isinstance(tx, Transaction):
            tx = decode_payload(1, fm.payload)
            if not isinstance(tx, Transaction):
                raise Rejected("payload", "not a transaction")
        consumed = self._check(fm, tx)
        for oid in tx.inputs:
            out = self._unspent.pop(oid)
            owned = self._by_owner[out.owner]
            owned.discard(oid)
            if not owned:
                del self._by_owner[out.owner]
            self.spent_rows.append((fm.order, oid))
        del consumed
        self._create(fm.message_id, tx.outputs, fm.order)

    def _check(self, fm: FinalizedMessage, tx: Transaction) -> list[Output]:
        unspent = self._unspent
        signers = {fm.issuer}
        signers.update(u.public_key for u in tx.unlocks)
        consumed: list[Output] = []
        for oid in tx.inputs:
            out = unspent.get(oid)
            if out is None:
                if oid[:32] in self._void:
                    raise Rejected("conflict-input-void", "spends an output of a void transaction")
                raise Rejected("conflict-double-spend", "input already spent or unknown")
            if out.owner not in signers:
                raise Rejected("conflict-unlock", "an input's owner did not sign")
            consumed.append(out)
        amount_in = sum(o.amount for o in consumed)
        amount_out = sum(o.amount for o in tx.outputs)
        if amount_in != amount_out:
            raise Rejected(
                "conflict-amount", f"inputs hold {amount_in} base units, outputs {amount_out}"
            )
        self._check_tokens(tx, consumed, signers)
        return consumed

    def _check_tokens(
        self, tx: Transaction, consumed: Sequence[Output], signers: set[bytes]
    ) -> None:
        delta: dict[bytes, int] = {}
        for o in consumed:
            for tid, n in o.tokens:
                delta[tid] = delta.get(tid, 0) - n
        for o in tx.outputs:
            for tid, n in o.tokens:
                delta[tid] = delta.get(tid, 0) + n
        f_in: dict[bytes, Foundry] = {}
        for o in consumed:
            if o.foundry is not None:
                f_in[o.foundry.token_id] = o.foundry
        f_out: dict[bytes, Foundry] = {}
        for index, o in enumerate(tx.outputs):
            f = o.foundry
            if f is None:
                continue
            if f.token_id in f_out:
                raise Rejected("conflict-foundry", "two foundries for one token")
            f_out[f.token_id] = f
            if f.token_id not in f_in:
                if f.token_id != foundry_token_id(tx.inputs[0], index):
                    raise Rejected("conflict-foundry", "a new foundry's token id is not derived")
                if self._issuers and not self._issuers & signers:
                    raise Rejected(
                        "conflict-token-issuer", "genesis does not let this key create tokens"
                    )
        for tid in f_in:
            if tid not in f_out:
                raise Rejected("conflict-foundry", "a foundry must be carried over")
        for tid, new in f_out.items():
            old = f_in.get(tid)
            minted_before = 0 if old is None else old.minted
            if old is not None and old.max_supply != new.max_supply:
                raise Rejected("conflict-foundry", "a foundry's maximum supply is fixed")
            if delta.get(tid, 0) != new.minted - minted_before:
                raise Rejected(
                    "conflict-foundry", "tokens minted or melted differ from the foundry"
                )
        for tid, d in delta.items():
            if d != 0 and tid not in f_out:
                raise Rejected("conflict-tokens", "native tokens created or destroyed")

    def _add(self, oid: bytes, out: Output) -> None:
        self._unspent[oid] = out
        owned = self._by_owner.get(out.owner)
        if owned is None:
            self._by_owner[out.owner] = {oid}
        else:
            owned.add(oid)

    def _create(self, tx_id: bytes, outputs: Sequence[Output], order: int) -> None:
        for index, out in enumerate(outputs):
            oid = output_id(tx_id, index)
            self._add(oid, out)
            self.new_rows.append((oid, encode_output(out), order))
