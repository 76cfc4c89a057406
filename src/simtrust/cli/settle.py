"""``simtrust settle``: roaming reconciliation, statements and netting, offline from files.

``reconcile`` needs no data directory: it reads the agreement and both sides'
usage files and prints one JSON document (issue 15 item 7). ``statement``,
``sign`` and ``verify`` make and check the statement both parties sign;
``prove``/``check-proof`` prove one record against its root, and ``anchor``
puts that root on the ledger so ``check-proof --anchor`` needs only the
ledger; ``net`` nets many
signed statements. ``token-create``, ``token-mint`` and ``pay`` work on the
ledger of the data directory: a settlement token's foundry, minting by its
holder, and paying netted transfers in the token. Unreadable input is one
line on stderr and exit code 2, with nothing written; a signature that does not
verify exits 1.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from simtrust.cli._common import console, emit_json, open_runtime
from simtrust.errors import DecodeError, InvalidInput, SimtrustError
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer, parse_hex_id
from simtrust.settlement import (
    MicropaymentStream,
    SettlementTokens,
    aggregate_vouchers,
    anchor_statement,
    build_statement,
    carry_disputes,
    export_session_usage,
    load_agreement,
    load_suspensions,
    net_statements,
    parse_utc_micros,
    reconcile_files,
    record_proof,
    resolve_dispute,
    sign_statement,
    suspended_usage,
    verify_anchored_record,
    verify_record_proof,
    verify_statement,
)

__all__ = ["NAME", "app"]

NAME = "settle"

app = typer.Typer(
    name=NAME,
    help="Roaming settlement: reconcile usage files under an agreement, statements, netting.",
    no_args_is_help=True,
)


@app.command()
def reconcile(
    agreement: Annotated[
        Path, typer.Option("--agreement", help="Roaming agreement JSON (docs/settlement.md).")
    ],
    home: Annotated[Path, typer.Option("--home", help="The home network's usage CSV.")],
    visited: Annotated[Path, typer.Option("--visited", help="The visited network's usage CSV.")],
    records: Annotated[
        Path | None,
        typer.Option("--records", help="Write charging_id,imsi,side,class per input record here."),
    ] = None,
    suspended: Annotated[
        Path | None,
        typer.Option("--suspended", help="SIM suspensions: imsi,suspended_from,suspended_until."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Classify every record of both sides and rate the statement (integer minor units)."""
    terms = load_agreement(agreement)
    suspensions = load_suspensions(suspended) if suspended is not None else None
    flagged = suspended_usage(visited, suspensions) if suspensions is not None else None
    result = reconcile_files(terms, home, visited, records_out=records).to_json()
    if flagged is not None:
        result["fraud"] = {"suspended_sim_usage": flagged}
    if json_out:
        emit_json(result)
        return
    statement = result["statement"]
    console.print(f"agreement {result['agreement']}")
    for name, count in result["counts"].items():
        console.print(f"  {name:<17} {count:>12}")
    console.print(
        f"total {statement['total_minor_units']} {statement['currency']} (minor units), "
        f"disputed {statement['disputed_minor_units']}"
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise DecodeError(f"{what} {path}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise DecodeError(f"{what} {path}: not JSON") from None


def _write_json(path: Path, document: Any, mode: int = 0o644) -> None:
    """Write atomically: a temporary file renamed over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        with os.fdopen(handle, "w") as sink:
            json.dump(document, sink, indent=2, sort_keys=True)
            sink.write("\n")
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot write ({exc.strerror})") from None


def _signer(path: Path) -> Ed25519Signer:
    data = _read_json(path, "key file")
    seed = data.get("seed") if isinstance(data, dict) else None
    try:
        return Ed25519Signer(bytes.fromhex(str(seed)))
    except ValueError:
        raise DecodeError(f"key file {path}: 'seed' must be 64 hex digits") from None


OutOpt = Annotated[Path, typer.Option("--out", help="Where to write the JSON document.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command()
def keygen(out: OutOpt, json_out: JsonOpt = False) -> None:
    """Create an Ed25519 signing key (file mode 0600); prints its did:key."""
    if out.exists():
        raise InvalidInput(f"{out} exists; refusing to overwrite a key")
    signer = Ed25519Signer.generate()
    key = did_key(signer.public_key)
    _write_json(out, {"type": "Ed25519", "did": key, "seed": signer.seed().hex()}, 0o600)
    if json_out:
        emit_json({"did": key, "path": str(out)})
    else:
        console.print(key)


@app.command()
def statement(
    agreement: Annotated[Path, typer.Option("--agreement", help="Roaming agreement JSON.")],
    home: Annotated[Path, typer.Option("--home", help="The home network's usage CSV.")],
    visited: Annotated[Path, typer.Option("--visited", help="The visited network's usage CSV.")],
    out: OutOpt,
    json_out: JsonOpt = False,
) -> None:
    """Reconcile and write the unsigned statement, with the records' Merkle root."""
    terms = load_agreement(agreement)
    result = reconcile_files(terms, home, visited)
    document = build_statement(terms, result, home, visited)
    _write_json(out, document)
    if json_out:
        emit_json(document)
    else:
        console.print(f"{out}: records root {document['records']['merkle_root']}")


@app.command()
def sign(
    path: Annotated[Path, typer.Argument(help="Statement JSON, signed in place.")],
    key: Annotated[Path, typer.Option("--key", help="Key file from `settle keygen`.")],
    role: Annotated[str, typer.Option("--role", help="payer (home) or payee (visited).")],
    json_out: JsonOpt = False,
) -> None:
    """Add this party's Ed25519 signature over the statement (RFC 8785 form)."""
    document = _read_json(path, "statement")
    if not isinstance(document, dict):
        raise InvalidInput(f"statement {path}: not a JSON object")
    signed = sign_statement(document, role, _signer(key))
    _write_json(path, signed)
    if json_out:
        emit_json({"signed": role, "signatures": len(signed["signatures"])})


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="Statement JSON.")],
    json_out: JsonOpt = False,
) -> None:
    """Check both parties' signatures; exit 1 if one is missing or does not verify."""
    document = _read_json(path, "statement")
    if not isinstance(document, dict):
        raise InvalidInput(f"statement {path}: not a JSON object")
    roles = verify_statement(document)
    if json_out:
        emit_json({"verified": True, "signed_by": roles})
    else:
        console.print(f"verified: signed by {', '.join(roles)}")


def _statement_file(path: Path) -> dict[str, Any]:
    document = _read_json(path, "statement")
    if not isinstance(document, dict):
        raise InvalidInput(f"statement {path}: not a JSON object")
    return document


@app.command()
def resolve(
    path: Annotated[Path, typer.Argument(help="Signed statement whose disputes are resolved.")],
    agreed: Annotated[int, typer.Option("--agreed", help="Minor units the payer will pay.")],
    out: OutOpt,
    json_out: JsonOpt = False,
) -> None:
    """Write the unsigned resolution of a statement's open disputes (both parties sign it)."""
    resolution = resolve_dispute(_statement_file(path), agreed)
    _write_json(out, resolution)
    if json_out:
        emit_json(resolution)


@app.command()
def carry(
    path: Annotated[Path, typer.Argument(help="The next, still unsigned statement (in place).")],
    previous: Annotated[Path, typer.Option("--previous", help="The previous signed statement.")],
    resolution: Annotated[
        Path | None, typer.Option("--resolution", help="Its signed resolution, if any.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Carry the previous statement's unresolved disputes into the next statement."""
    settled = _statement_file(resolution) if resolution is not None else None
    updated = carry_disputes(_statement_file(path), _statement_file(previous), settled)
    _write_json(path, updated)
    if json_out:
        emit_json({"carried_disputes": updated["carried_disputes"]})


@app.command()
def prove(
    home: Annotated[Path, typer.Option("--home", help="The home network's usage CSV.")],
    visited: Annotated[Path, typer.Option("--visited", help="The visited network's usage CSV.")],
    index: Annotated[int, typer.Option("--index", help="Record number, home records first.")],
) -> None:
    """Print one record with its Merkle inclusion proof (JSON)."""
    emit_json(record_proof(home, visited, index))


@app.command("check-proof")
def check_proof(
    proof: Annotated[Path, typer.Argument(help="Proof JSON from `settle prove`.")],
    statement_path: Annotated[
        Path | None, typer.Option("--statement", help="Signed statement holding the root.")
    ] = None,
    anchor_path: Annotated[
        Path | None,
        typer.Option("--anchor", help="Receipt of `settle anchor`: check against the ledger."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a record's proof against a signed statement's root, or the root the ledger holds."""
    if (statement_path is None) == (anchor_path is None):
        raise InvalidInput("give either --statement or --anchor")
    record = _read_json(proof, "proof")
    if anchor_path is not None:
        receipt = _read_json(anchor_path, "anchor receipt")
        if not isinstance(receipt, dict):
            raise InvalidInput(f"anchor receipt {anchor_path}: not a JSON object")
        rt = open_runtime()
        try:
            result = verify_anchored_record(rt.ledger, record, receipt)
        finally:
            rt.close()
        if json_out:
            emit_json(result)
        else:
            console.print(f"verified against anchor {result['anchor']} (order {result['order']})")
        return
    assert statement_path is not None
    document = _read_json(statement_path, "statement")
    if not isinstance(document, dict):
        raise InvalidInput(f"statement {statement_path}: not a JSON object")
    verify_statement(document)
    verify_record_proof(record, str(document["records"]["merkle_root"]))
    if json_out:
        emit_json({"verified": True})
    else:
        console.print("verified")


@app.command()
def anchor(
    path: Annotated[Path, typer.Argument(help="Statement JSON (signatures present must verify).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the anchor receipt here.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Anchor the statement's usage-records root on the ledger (finalized on return)."""
    document = _read_json(path, "statement")
    if not isinstance(document, dict):
        raise InvalidInput(f"statement {path}: not a JSON object")
    rt = open_runtime()
    try:
        receipt = anchor_statement(rt.ledger, document)
    finally:
        rt.close()
    if out is not None:
        _write_json(out, receipt)
    if json_out:
        emit_json(receipt)
    else:
        console.print(f"anchored {receipt['size']} records at {receipt['domain']}"
                      f" {receipt['first']}..{receipt['last']}: {receipt['anchor']}")


@app.command()
def net(
    statements: Annotated[list[Path], typer.Argument(help="Statement JSON files.")],
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Accept statements without both signatures.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Multilateral netting: positions per party (sum zero) and at most N−1 transfers."""
    documents = []
    for path in statements:
        document = _read_json(path, "statement")
        if not isinstance(document, dict):
            raise InvalidInput(f"statement {path}: not a JSON object")
        try:
            if not unsigned:
                verify_statement(document)
            elif document.get("signatures"):
                verify_statement(document, require=())
        except SimtrustError as exc:
            raise type(exc)(f"statement {path}: {exc.detail}") from None
        documents.append(document)
    result = net_statements(documents)
    if json_out:
        emit_json(result)
        return
    for currency, book in result["currencies"].items():
        console.print(f"{currency}: gross {book['gross_minor_units']}")
        for transfer in book["transfers"]:
            console.print(
                f"  {transfer['from']} -> {transfer['to']}: {transfer['amount_minor_units']}"
            )


KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="Key file from `settle keygen` (default: the node key)."),
]


def _tokens() -> tuple[Any, SettlementTokens, Any]:

    rt = open_runtime()
    node = rt.ledger
    return rt, SettlementTokens(node), node


@app.command("token-create")
def token_create(
    max_supply: Annotated[int, typer.Option("--max-supply", help="Fixed maximum supply.")],
    initial: Annotated[int, typer.Option("--initial", help="Tokens minted now.")] = 0,
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a settlement token: a foundry output the key's holder controls."""
    rt, tokens, node = _tokens()
    try:
        signer = _signer(key) if key else node.signer
        receipt = tokens.create(signer, max_supply, initial)
    finally:
        rt.close()
    _print_receipt(receipt.to_json(), json_out)


@app.command("token-mint")
def token_mint(
    token: Annotated[str, typer.Option("--token", help="Token id (hex).")],
    amount: Annotated[int, typer.Option("--amount", help="Tokens to mint.")],
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Mint more of a token; only the holder of its foundry may."""
    rt, tokens, node = _tokens()
    try:
        signer = _signer(key) if key else node.signer
        receipt = tokens.mint(signer, parse_hex_id(token, "token id"), amount)
    finally:
        rt.close()
    _print_receipt(receipt.to_json(), json_out)


@app.command()
def pay(
    netting: Annotated[Path, typer.Argument(help="Output of `settle net --json`.")],
    currency: Annotated[str, typer.Option("--currency", help="Which currency's transfers.")],
    token: Annotated[str, typer.Option("--token", help="Settlement token id (hex).")],
    key: Annotated[Path, typer.Option("--key", help="The paying party's key file.")],
    json_out: JsonOpt = False,
) -> None:
    """Pay this party's netted transfers in the settlement token (finalized on return)."""
    book = _read_json(netting, "netting")
    try:
        transfers = book["currencies"][currency]["transfers"]
    except (KeyError, TypeError):
        raise InvalidInput(f"netting {netting}: no transfers in {currency}") from None
    if not isinstance(transfers, list):
        raise InvalidInput(f"netting {netting}: transfers must be a list")
    signer = _signer(key)
    rt, tokens, _ = _tokens()
    try:
        paid = tokens.settle(transfers, signer, parse_hex_id(token, "token id"))
    finally:
        rt.close()
    if json_out:
        emit_json({"paid": paid})
    else:
        for transfer in paid:
            console.print(f"{transfer['to']}: {transfer['amount_minor_units']}")


@app.command("usage-export")
def usage_export(
    out: Annotated[Path, typer.Option("--out", help="Usage CSV to write.")],
    home_plmn: Annotated[str, typer.Option("--home-plmn", help="The agreement's home PLMN.")],
    visited_plmn: Annotated[
        str | None, typer.Option("--visited-plmn", help="Only sessions in this network.")
    ] = None,
    since: Annotated[str | None, typer.Option("--from", help="Sessions started at or after "
                                              "this ISO 8601 instant.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="... and before this one.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write closed roaming sessions from RADIUS accounting as a usage file for `reconcile`."""
    since_us = parse_utc_micros(since) if since else None
    until_us = parse_utc_micros(until) if until else None
    rt = open_runtime()
    try:
        log = rt.aaa.accounting
        count = export_session_usage(
            lambda after: log.roaming_sessions(after=after, visited_plmn=visited_plmn,
                                               limit=5000),
            out, home_plmn=home_plmn, since_us=since_us, until_us=until_us)
    finally:
        rt.close()
    if json_out:
        emit_json({"records": count, "path": str(out)})
    else:
        console.print(f"{count} records written to {out}")


@app.command()
def voucher(
    key: Annotated[Path, typer.Option("--key", help="The payer's key file.")],
    amount: Annotated[int, typer.Option("--amount", help="This event's charge, minor units.")],
    after: Annotated[
        Path | None, typer.Option("--after", help="The stream's latest voucher (continue it).")
    ] = None,
    payee: Annotated[str | None, typer.Option("--payee", help="Payee did:key (new).")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Channel id (new).")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Period (new stream).")] = None,
    currency: Annotated[str, typer.Option("--currency", help="Currency (new stream).")] = "EUR",
) -> None:
    """Sign the next micropayment voucher: cumulative amount so far, one JSON document."""
    signer = _signer(key)
    if after is not None:
        stream = MicropaymentStream.resume(signer, _read_json(after, "voucher"))
    else:
        if not (payee and channel and period):
            raise InvalidInput("a new stream needs --payee, --channel and --period (or --after)")
        stream = MicropaymentStream(signer, payee, channel, period, currency)
    emit_json(stream.charge(amount))


@app.command("vouchers-aggregate")
def vouchers_aggregate(
    vouchers: Annotated[Path, typer.Argument(help="Vouchers as JSON Lines or a JSON list.")],
    json_out: JsonOpt = False,
) -> None:
    """Verify a period's vouchers; one settlement per channel and period."""
    try:
        text = vouchers.read_text(encoding="utf-8")
    except OSError as exc:
        raise DecodeError(f"vouchers {vouchers}: cannot read ({exc.strerror})") from None
    try:
        stripped = text.strip()
        items = json.loads(stripped) if stripped.startswith("[") else [
            json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError:
        raise DecodeError(f"vouchers {vouchers}: not JSON or JSON Lines") from None
    if not isinstance(items, list) or not all(isinstance(v, dict) for v in items):
        raise InvalidInput(f"vouchers {vouchers}: each voucher is a JSON object")
    streams = aggregate_vouchers(items)
    if json_out:
        emit_json({"streams": streams})
        return
    for stream in streams:
        console.print(f"{stream['channel']} {stream['period']}: {stream['events']} events, "
                      f"{stream['total_minor_units']} {stream['currency']}")


@app.command("vouchers-pay")
def vouchers_pay(
    aggregate: Annotated[Path, typer.Argument(help="Output of `vouchers-aggregate --json`.")],
    token: Annotated[str, typer.Option("--token", help="Settlement token id (hex).")],
    key: Annotated[Path, typer.Option("--key", help="The paying party's key file.")],
    json_out: JsonOpt = False,
) -> None:
    """Pay each aggregated stream of this payer with one token transfer (finalized)."""
    document = _read_json(aggregate, "aggregate")
    streams = document.get("streams") if isinstance(document, dict) else None
    if not isinstance(streams, list):
        raise InvalidInput(f"aggregate {aggregate}: no 'streams' list")
    signer = _signer(key)
    me = did_key(signer.public_key)
    rt, tokens, _ = _tokens()
    try:
        paid = [tokens.settle_stream(s, signer, parse_hex_id(token, "token id"))
                for s in streams if isinstance(s, dict) and s.get("payer") == me]
    finally:
        rt.close()
    if json_out:
        emit_json({"paid": paid})
    else:
        for stream in paid:
            console.print(f"{stream['channel']}: {stream['total_minor_units']} -> "
                          f"{stream['payee']} ({stream['message_id']})")


def _print_receipt(receipt: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(receipt)
        return
    for name, value in receipt.items():
        console.print(f"{name}: {value}")
