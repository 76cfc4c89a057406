"""Streams: a neighbourhood of meters, a cloned meter caught, the market cleared and paid.

Six meters publish signed cumulative readings on their channels; a reader
verifies every frame; one meter identity shows up from a second SIM and the
watch raises a cloned-meter alert, so that meter's readings lose the
``clean`` annotation and its score drops below the market's threshold. The
batches are anchored on the ledger and one reading is proven against the
anchor alone. The interval's double auction clears at one price, delivery is
read from the trusted readings, and buyers pay sellers in a settlement token
(docs/settlement.md), one transfer per trade and interval. Finally a derived
datum (the neighbourhood's total) shows its provenance graph (docs/streams.md).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

from simtrust.identity import Ed25519Signer
from simtrust.ledger import Ed25519Signer as LedgerSigner
from simtrust.settlement import SettlementTokens
from simtrust.streams import (
    Author,
    BatchAnchorer,
    MeterReading,
    MeterWatch,
    Order,
    ProvenanceGraph,
    Reader,
    clear,
    decode_reading,
    delivered_wh,
    encode_reading,
    settle,
    sign_annotation,
    verify_message_proof,
)

ORDER = 65
THRESHOLD = Fraction(9, 10)  # every annotation but `source` must hold
START, END = 1_767_225_600, 1_767_226_500  # one 15-minute interval


def run(ctx: Any) -> dict[str, Any]:

    node = ctx.rt.ledger
    ticks = itertools.count(START * 1000)
    graph = ProvenanceGraph()
    gateway = Ed25519Signer.generate()  # the operator's annotating component
    watch = MeterWatch()
    names = ["alba", "brook", "cedar", "dune", "elm", "fern"]
    sellers, buyers = names[:3], names[3:]
    readings: dict[str, list[tuple[int, int, Fraction]]] = {n: [] for n in names}
    anchored = {}
    proof_checked = False
    for index, name in enumerate(names):
        meter = Ed25519Signer.generate(f"did:simtrust:demo:{name}#sim")
        author = Author(meter, lambda: next(ticks))
        reader = Reader(author.announce.to_bytes())
        did = meter.controller
        sim, device = f"89440000000000000{index:02d}", f"35209900{index:07d}"
        produced = 1_800 if name in sellers else 200
        frames = []
        for at, register in ((START, 10_000 * (index + 1)), (END, 10_000 * (index + 1) + produced)):
            frame = author.publish(encode_reading(MeterReading(did, register, at))).to_bytes()
            delivery = reader.accept(frame)
            reading = decode_reading(delivery.payload or b"")
            origin = ("89440000000000000999", "352099009999999") if (
                name == "cedar" and at == END) else (sim, device)
            for alert in watch.observe(reading, *origin):
                ctx.say(f"alert {alert.kind}: {alert.explanation}")
            datum = f"{name}@{at}"
            graph.add(datum)
            for kind, ok in (("signature", delivery.verdict == "ok"), ("sim", True),
                             ("tls", True), ("source", True),
                             ("clean", watch.is_clean(did)), ("anchored", True)):
                graph.annotate(sign_annotation(gateway, datum, kind, ok))
            readings[name].append((at, register, graph.score(datum)))
            frames.append(frame)
        batch = BatchAnchorer(author.channel, node.anchor).anchor(frames)
        anchored[name] = batch.anchor_id.hex()
        if not proof_checked:
            verify_message_proof(frames[1], batch.proof(batch.message_ids[1]), batch.root)
            proof_checked = True
    orders = [Order(n, "sell", 1_800, 18 + i) for i, n in enumerate(sellers)] + [
        Order(n, "buy", 2_000, 30 - i) for i, n in enumerate(buyers)]
    clearing = clear(orders)
    delivered = {}
    for name in sellers:
        try:
            delivered[name] = delivered_wh(readings[name], START, END, THRESHOLD)
        except Exception as exc:  # noqa: BLE001 - a refused delivery is reported, not fatal
            ctx.say(f"{name}'s delivery refused: {exc}")
            delivered[name] = 0
    wallets = {n: LedgerSigner.generate() for n in names}
    token = SettlementTokens(node).create(node.signer, max_supply=10**9, initial=10**6).token_id
    for name in buyers:
        node.transfer(node.signer, wallets[name].public_key, 10_000, token=token)
    payments = settle(clearing, delivered, lambda buyer, seller, amount: node.transfer(
        wallets[buyer], wallets[seller].public_key, amount, token=token))
    graph.add("neighbourhood-total", inputs=[f"{n}@{END}" for n in sellers])
    for kind in ("signature", "sim", "tls", "source", "clean", "anchored"):
        graph.annotate(sign_annotation(gateway, "neighbourhood-total", kind, True))
    ctx.say(f"market clears {clearing.volume_wh} Wh at {clearing.price} per kWh; "
            f"cedar's score {graph.score(f'cedar@{END}')}, paid {sum(p.amount for p in payments)}")
    return {
        "alerts": [a.kind for a in watch.alerts("did:simtrust:demo:cedar")],
        "scores": {n: str(readings[n][-1][2]) for n in names},
        "clearing": {"price": clearing.price, "volume_wh": clearing.volume_wh},
        "delivered_wh": delivered,
        "payments": [[p.buyer, p.seller, p.delivered_wh, p.amount] for p in payments],
        "seller_balances": {n: node.balance(wallets[n].public_key).tokens.get(token, 0)
                            for n in sellers},
        "token": token.hex(),
        "anchors": anchored,
        "total_score": str(graph.score("neighbourhood-total")),
        "provenance_nodes": sorted(graph.provenance("neighbourhood-total")["nodes"]),
    }
