"""A realistic pre-signed ledger workload, built in parallel worker processes.

Used by ``bench/bench_ledger_ingest.py``: lanes of wallets issue tagged data
(70 %) and value transactions (30 %: one or two inputs and change, a few
deliberate double spends) over their own sub-tangles with tip selection, so
every message is valid against a node that ingests the lanes interleaved.
Lives in the package so spawned workers can import it.
"""

from __future__ import annotations

import hashlib
import random

from simtrust.ledger import (
    Ed25519Signer,
    Genesis,
    Output,
    PayloadType,
    encode_tagged_data,
    encode_transaction,
    message_id,
    network_id_from_name,
    output_id,
    signing_bytes,
)

__all__ = ["LANES", "NETWORK", "VALUE_SHARE", "gen_lane", "make_genesis"]

NETWORK = "simtrust-bench"
LANES = 16
WALLETS_PER_LANE = 8
START_BALANCE = 10**12
VALUE_SHARE = 0.30
DOUBLE_SPEND_SHARE = 0.001


def _wallet(lane: int, index: int) -> Ed25519Signer:
    seed = hashlib.blake2b(f"bench-wallet-{lane}-{index}".encode(), digest_size=32).digest()
    return Ed25519Signer(seed)


def make_genesis(t0: int) -> Genesis:
    outputs = tuple(
        Output(_wallet(lane, w).public_key, START_BALANCE)
        for lane in range(LANES)
        for w in range(WALLETS_PER_LANE)
    )
    return Genesis(network_id_from_name(NETWORK), t0 - 1000, outputs)


def gen_lane(args: tuple[int, int, int, bytes]) -> list[bytes]:
    """Pre-sign ``count`` messages of one lane (its own wallets and sub-tangle)."""
    lane, count, t0, genesis_id = args
    rng = random.Random(lane)
    net = network_id_from_name(NETWORK)
    wallets = [_wallet(lane, w) for w in range(WALLETS_PER_LANE)]
    # Each wallet owns a main output (spent and recreated as change) and small receipts.
    main: list[tuple[bytes, int]] = [
        (output_id(genesis_id, lane * WALLETS_PER_LANE + w), START_BALANCE)
        for w in range(WALLETS_PER_LANE)
    ]
    receipts: list[list[tuple[bytes, int]]] = [[] for _ in wallets]
    spent: list[bytes] = []
    tips: list[bytes] = [genesis_id]
    out: list[bytes] = []
    for i in range(count):
        w = i % WALLETS_PER_LANE
        key = wallets[w]
        at = t0 + (i * LANES + lane) // 10
        k = min(len(tips), rng.choice((2, 3, 4)))
        parents = rng.sample(tips, k)
        roll = rng.random()
        if roll < DOUBLE_SPEND_SHARE and spent:
            # Re-spend an output spent before: finalized as conflicting (white flag).
            ptype = PayloadType.TRANSACTION
            payload = encode_transaction(
                [rng.choice(spent)], [Output(wallets[(w + 1) % WALLETS_PER_LANE].public_key, 1)]
            )
        elif roll < VALUE_SHARE:
            ptype = PayloadType.TRANSACTION
            to = (w + 1 + rng.randrange(WALLETS_PER_LANE - 1)) % WALLETS_PER_LANE
            amount = rng.randint(1, 1000)
            inputs = [main[w]]
            if receipts[w] and rng.random() < 0.5:
                inputs.append(receipts[w].pop(0))
            total = sum(a for _, a in inputs)
            payload = encode_transaction(
                [o for o, _ in inputs],
                [Output(wallets[to].public_key, amount), Output(key.public_key, total - amount)],
            )
        else:
            ptype = PayloadType.TAGGED_DATA
            payload = encode_tagged_data(b"telemetry", rng.randbytes(rng.randint(32, 160)))
        body = signing_bytes(net, key.public_key, at, parents, ptype, payload)
        raw = body + key.sign(body)
        mid = message_id(raw)
        if ptype == PayloadType.TRANSACTION and roll >= DOUBLE_SPEND_SHARE:
            spent.extend(o for o, _ in inputs)
            receipts[to].append((output_id(mid, 0), amount))
            main[w] = (output_id(mid, 1), total - amount)
        for p in parents:
            if p in tips and p != genesis_id:
                tips.remove(p)
        if genesis_id in tips and len(tips) > 1:
            tips.remove(genesis_id)
        tips.append(mid)
        if len(tips) > 32:
            tips.pop(0)
        out.append(raw)
    return out


