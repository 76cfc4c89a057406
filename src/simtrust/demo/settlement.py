"""Settlement: operators reconcile roaming, net with a third, settle in tokens; an SLA credit.

Operator A's fleet roams in B's network: both sides' usage files (with an
injected partial record, a visited-only record and a duplicate) are reconciled
under their agreement, and the statement is signed by both. B's SIMs roam in C
and C's in A; the three signed statements are netted (at most two transfers)
and paid in a settlement token created and minted on the ledger. A slice SLA
between A and C is violated on one day and credited by its schedule: the
credit note both sign is netted and paid in the same token (docs/settlement.md).
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import (
    USAGE_COLUMNS,
    SettlementTokens,
    build_credit_note,
    build_statement,
    evaluate_sla,
    load_agreement,
    measurement_signing_bytes,
    net_statements,
    parse_sla_contract,
    party_public_key,
    reconcile_files,
    sign_statement,
    verify_statement,
)

ORDER = 70
PLMNS = {"A": "26201", "B": "20810", "C": "23415"}


def _usage(rng: random.Random, home: str, visited: str, sims: int) -> list[list[str]]:
    rows = []
    for n in range(sims):
        imsi = f"{PLMNS[home]}{n:010d}"
        for session in range(3):
            service = rng.choice(["data", "data", "voice", "sms"])
            start = f"2026-01-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:{session:02d}:00Z"
            up, down = rng.randint(10_000, 900_000), rng.randint(100_000, 9_000_000)
            rows.append([str(1_000_000 * (n + 1) + session), imsi, PLMNS[visited], PLMNS[home],
                         service, start, str(rng.randint(5, 900)), str(up), str(down),
                         str(rng.randint(1, 5))])
    return rows


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join([",".join(USAGE_COLUMNS)] + [",".join(r) for r in rows]) + "\n")
    return path


def _agreement(folder: Path, home: str, visited: str, keys: dict[str, Ed25519Signer]) -> Path:
    path = folder / f"agreement-{home}{visited}.json"
    path.write_text(json.dumps({
        "id": f"ra-{PLMNS[home]}-{PLMNS[visited]}-2026-01",
        "home_plmn": PLMNS[home], "visited_plmn": PLMNS[visited],
        "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2026-02-01T00:00:00Z",
        "currency": "EUR", "tolerance_percent": 2,
        "tariffs": {"data_per_mb": 150, "sms_per_event": 5, "voice_per_minute": 20},
        "parties": {"home": did_key(keys[home].public_key),
                    "visited": did_key(keys[visited].public_key)},
    }))
    return path


def _statement(folder: Path, home: str, visited: str, keys: dict[str, Ed25519Signer],
               rng: random.Random, sims: int, inject: bool) -> tuple[dict[str, Any], Any]:
    records = _usage(rng, home, visited, sims)
    home_rows = [list(r) for r in records]
    visited_rows = [list(r) for r in records]
    if inject:
        home_rows[0][8] = str(int(home_rows[0][8]) // 2)  # partial: home saw half the bytes
        del home_rows[1]  # visited-only: the home network never saw this session
        visited_rows.append(list(visited_rows[2]))  # duplicate on the visited side
    terms = load_agreement(_agreement(folder, home, visited, keys))
    home_file = _write(folder / f"{home}{visited}-home.csv", home_rows)
    visited_file = _write(folder / f"{home}{visited}-visited.csv", visited_rows)
    result = reconcile_files(terms, home_file, visited_file)
    statement = build_statement(terms, result, home_file, visited_file)
    statement = sign_statement(statement, "payer", keys[home])
    statement = sign_statement(statement, "payee", keys[visited])
    verify_statement(statement)
    return statement, result


def plot_netting(statements: list[dict[str, Any]], book: dict[str, Any], names: dict[str, str],
                 path: Path) -> None:
    """Bar chart: each operator's gross payable/receivable before netting, its net after."""
    import matplotlib  # noqa: PLC0415 - heavy, and only this chart needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the Agg backend

    parties = list(names)
    owes = {p: sum(s["total_minor_units"] for s in statements if s["payer"] == p) for p in parties}
    owed = {p: sum(s["total_minor_units"] for s in statements if s["payee"] == p) for p in parties}
    net = book["positions"]
    labels = [names[p] for p in parties]
    x = range(len(parties))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([i - 0.27 for i in x], [owed[p] / 100 for p in parties], 0.27,
           label="receivable (gross)", color="#4c9a2a")
    ax.bar(list(x), [-owes[p] / 100 for p in parties], 0.27, label="payable (gross)",
           color="#c0392b")
    ax.bar([i + 0.27 for i in x], [net.get(p, 0) / 100 for p in parties], 0.27,
           label="net position after netting", color="#2c3e50")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("EUR")
    transfers = len(book["transfers"])
    ax.set_title(f"Roaming positions before and after netting ({len(statements)} statements → "
                 f"{transfers} transfer{'s' if transfers != 1 else ''})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sla(keys: dict[str, Ed25519Signer]) -> dict[str, Any]:
    agent = Ed25519Signer(bytes(range(40, 72)))
    contract = parse_sla_contract(json.dumps({
        "id": "sla-urllc-a-c", "provider": did_key(keys["C"].public_key),
        "customer": did_key(keys["A"].public_key), "currency": "EUR", "fee_minor_units": 250_000,
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z", "period_seconds": 86_400,
        "service_profile": {"sst": 2, "availability": 99.99, "dLLatency": 5},
        "credits": [{"kpi": "availability", "credit_percent": 10},
                    {"kpi": "availability", "shortfall": 0.5, "credit_percent": 30},
                    {"kpi": "dLLatency", "credit_percent": 5}],
        "agents": [did_key(agent.public_key)],
    }))
    rows = ["time,kpi,value,agent,signature"]
    for time, kpi, value in [("2026-01-01T12:00:00Z", "availability", "99.995"),
                             ("2026-01-01T12:00:00Z", "dLLatency", "3"),
                             ("2026-01-02T12:00:00Z", "availability", "99.2"),
                             ("2026-01-02T12:00:00Z", "dLLatency", "7")]:
        signature = agent.sign(measurement_signing_bytes(contract.id, time, kpi, value))
        rows.append(f"{time},{kpi},{value},{did_key(agent.public_key)},"
                    f"{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}")
    return {"contract": contract, "rows": rows}


def run(ctx: Any) -> dict[str, Any]:
    folder = ctx.home / "settlement"
    folder.mkdir(exist_ok=True)
    rng = random.Random(15)
    keys = {name: Ed25519Signer(bytes([ord(name)]) * 32) for name in PLMNS}
    names = {did_key(k.public_key): f"operator {n} ({PLMNS[n]})" for n, k in keys.items()}
    ab, ab_result = _statement(folder, "A", "B", keys, rng, 40, inject=True)
    ctx.say(f"A↔B reconciled: {ab_result.counts}; total {ab['total_minor_units']} EUR cents, "
            f"disputed {ab['disputed_minor_units']}; signed by both")
    bc, _ = _statement(folder, "B", "C", keys, rng, 25, inject=False)
    ca, _ = _statement(folder, "C", "A", keys, rng, 12, inject=False)
    statements = [ab, bc, ca]
    book = net_statements(statements)["currencies"]["EUR"]
    ctx.say(f"netting 3 statements, gross {book['gross_minor_units']}: "
            f"{len(book['transfers'])} transfers move {book['transferred_minor_units']}")
    chart = folder / "netting.png"
    plot_netting(statements, book, names, chart)

    node = ctx.rt.ledger
    tokens = SettlementTokens(node)
    token = tokens.create(node.signer, max_supply=10**12, initial=10**9).token_id
    for key in keys.values():
        node.transfer(node.signer, key.public_key, 10**7, token=token)
    before = {p: node.balance(party_public_key(p)).tokens[token] for p in names}
    for key in keys.values():
        tokens.settle(book["transfers"], key, token)
    after = {p: node.balance(party_public_key(p)).tokens[token] for p in names}
    moved = {names[p]: after[p] - before[p] for p in names}
    if any(after[p] - before[p] != book["positions"].get(p, 0) for p in names):
        raise AssertionError("token balances do not follow the net positions")
    ctx.say(f"settled in token {token.hex()[:16]}…: {moved}")

    sla = _sla(keys)
    measurements = folder / "sla-measurements.csv"
    measurements.write_text("\n".join(sla["rows"]) + "\n")
    credits = evaluate_sla(sla["contract"], measurements)
    ctx.say(f"SLA {credits['contract']}: violations "
            f"{[p['violations'] for p in credits['periods']]}, credit "
            f"{credits['total_credit_minor_units']} EUR cents")
    note = build_credit_note(sla["contract"], credits)
    note = sign_statement(sign_statement(note, "payer", keys["C"]), "payee", keys["A"])
    verify_statement(note)
    credit_book = net_statements([note])["currencies"]["EUR"]
    customer = party_public_key(note["payee"])
    held = node.balance(customer).tokens[token]
    tokens.settle(credit_book["transfers"], keys["C"], token)
    credited = node.balance(customer).tokens[token] - held
    ctx.say(f"credit note signed by C and A, paid in the token: {credited} EUR cents to A")
    return {
        "reconciliation": ab_result.counts,
        "statement_total": ab["total_minor_units"],
        "statement_disputed": ab["disputed_minor_units"],
        "netting": {"gross": book["gross_minor_units"], "transfers": book["transfers"],
                    "positions": {names[p]: v for p, v in book["positions"].items()}},
        "token": token.hex(),
        "token_moves": moved,
        "sla_credit_minor_units": credits["total_credit_minor_units"],
        "sla_credit_paid": credited,
        "chart": str(chart),
    }
