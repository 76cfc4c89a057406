"""Roaming statements: the reconciled totals both parties sign, with the record batch's root.

A statement is a JSON object; its signing bytes are the RFC 8785 (JCS) form of
the object without ``signatures``, signed with Ed25519 (RFC 8032) by each
party's key, named as a ``did:key``. The usage records stay off the ledger:
the statement carries the RFC 9162 §2.1 Merkle root over every record of both
files (``records.merkle_root``), so any single record can be proven against a
signed statement (or a ledger anchor of that root) with an inclusion proof.
A slice SLA's credits become a ``SlaCreditNote`` (the provider owes the customer
the credits its schedule grants), signed and netted the same way.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rfc8785

from simtrust.crypto.merkle import (
    InclusionProof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    verify_inclusion,
)
from simtrust.errors import DecodeError, InvalidInput, InvalidSignature
from simtrust.identity import decode_multikey, did_key
from simtrust.ledger import Ed25519Signer, verify_ed25519
from simtrust.settlement._agreement import RoamingAgreement, parse_utc_micros
from simtrust.settlement._reconcile import USAGE_COLUMNS, Reconciliation
from simtrust.settlement._sla import SlaContract

__all__ = [
    "CREDIT_NOTE_TYPE",
    "RESOLUTION_TYPE",
    "STATEMENT_TYPE",
    "build_credit_note",
    "build_statement",
    "carry_disputes",
    "record_leaves",
    "record_proof",
    "resolve_dispute",
    "sign_statement",
    "statement_id",
    "statement_signing_bytes",
    "verify_record_proof",
    "verify_statement",
]

STATEMENT_TYPE = "RoamingStatement"
RESOLUTION_TYPE = "DisputeResolution"
CREDIT_NOTE_TYPE = "SlaCreditNote"
_SIGNED_TYPES = (STATEMENT_TYPE, RESOLUTION_TYPE, CREDIT_NOTE_TYPE)
_ROLES = ("payer", "payee")


def _party(agreement: RoamingAgreement, side: str, plmn: str) -> str:
    parties = agreement.raw.get("parties")
    if isinstance(parties, dict) and isinstance(parties.get(side), str) and parties[side]:
        return str(parties[side])
    return f"plmn:{plmn}"


def record_leaves(home: Path, visited: Path) -> Iterator[bytes]:
    """Leaf data of every record: ``side`` and the ten fields, CSV-encoded, home file first.

    Records are the ones reconciliation counts (blank lines skipped), in file order,
    each re-encoded as one canonical CSV line in the column order of the format.
    """
    for side, path in (("home", home), ("visited", visited)):
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DecodeError(f"{side} file {path}: unreadable ({exc})") from None
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            continue
        names = [name.strip() for name in reader.fieldnames]
        if sorted(names) != sorted(USAGE_COLUMNS):
            raise DecodeError(f"{side} file {path}: bad header")
        reader.fieldnames = names
        for row in reader:
            values = [row.get(name) or "" for name in USAGE_COLUMNS]
            if not any(values):
                continue
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow([side, *values])
            yield line.getvalue().encode()


def build_statement(
    agreement: RoamingAgreement, result: Reconciliation, home: Path, visited: Path
) -> dict[str, Any]:
    """The unsigned statement of ``result``: the home party pays the visited party."""
    leaves = list(record_leaves(home, visited))
    raw = agreement.raw
    discounts: dict[str, Any] = {key: result.statement[key] for key in
                 ("discounts", "discount_minor_units", "payable_minor_units")
                 if key in result.statement}
    return {
        "type": STATEMENT_TYPE,
        "version": 1,
        "agreement": agreement.id,
        "period": {"from": str(raw["valid_from"]), "until": str(raw["valid_until"])},
        "payer": _party(agreement, "home", agreement.home_plmn),
        "payee": _party(agreement, "visited", agreement.visited_plmn),
        "currency": agreement.currency,
        "total_minor_units": result.statement["total_minor_units"],
        "disputed_minor_units": result.statement["disputed_minor_units"],
        "lines": result.statement["lines"],
        **discounts,
        **({} if agreement.dispute_window_days is None
           else {"dispute_window_days": agreement.dispute_window_days}),
        "counts": result.counts,
        "records": {"merkle_root": merkle_root(leaves).hex(), "size": len(leaves)},
        "signatures": [],
    }


def build_credit_note(contract: SlaContract, evaluation: dict[str, Any]) -> dict[str, Any]:
    """The unsigned credit note of an SLA evaluation: the provider pays the customer.

    ``evaluation`` is what :func:`evaluate_sla` returned for ``contract``. The note
    names the contract, the periods that earned a credit and the total; both
    parties sign it like a statement and :func:`net_statements` nets it as an
    obligation of ``credit_minor_units`` from provider to customer.
    """
    if evaluation.get("contract") != contract.id:
        raise InvalidInput("the evaluation is of another contract")
    payer, payee = contract.raw.get("provider"), contract.raw.get("customer")
    if not isinstance(payer, str) or not payer or not isinstance(payee, str) or not payee:
        raise InvalidInput("contract: a credit note needs 'provider' and 'customer'")
    if payer == payee:
        raise InvalidInput("contract: provider and customer are the same party")
    periods = [
        {"start": p["start"], "end": p["end"], "violations": p["violations"],
         "credit_minor_units": p["credit_minor_units"]}
        for p in evaluation["periods"] if p["credit_minor_units"]
    ]
    return {
        "type": CREDIT_NOTE_TYPE,
        "version": 1,
        "contract": contract.id,
        "term": {"from": str(contract.raw["start"]), "until": str(contract.raw["end"])},
        "payer": payer,
        "payee": payee,
        "currency": contract.currency,
        "fee_minor_units": contract.fee_minor_units,
        "credit_minor_units": evaluation["total_credit_minor_units"],
        "periods": periods,
        "accepted_reports": evaluation["accepted_reports"],
        "signatures": [],
    }


def statement_signing_bytes(statement: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of the statement without its ``signatures``."""
    body = {key: value for key, value in statement.items() if key != "signatures"}
    try:
        return rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"statement: not canonicalizable JSON ({exc})") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise DecodeError("statement: a signature is not base64url") from None


def sign_statement(statement: dict[str, Any], role: str, signer: Ed25519Signer) -> dict[str, Any]:
    """A copy of ``statement`` with ``role``'s signature added (replacing an older one)."""
    if role not in _ROLES:
        raise InvalidInput(f"role must be one of {', '.join(_ROLES)}")
    key = did_key(signer.public_key)
    party = statement.get(role)
    if isinstance(party, str) and party.startswith("did:key:") and party != key:
        raise InvalidInput(f"the key does not belong to the {role} {party}")
    signature = signer.sign(statement_signing_bytes(statement))
    others = [s for s in statement.get("signatures", []) if s.get("role") != role]
    entry = {"role": role, "key": key, "signature": _b64(signature)}
    return {**statement, "signatures": [*others, entry]}


def verify_statement(statement: dict[str, Any], require: tuple[str, ...] = _ROLES) -> list[str]:
    """Check every signature; each role in ``require`` must have signed. Returns signed roles.

    A party named by ``did:key`` must have signed with that key; other party names
    (``did:simtrust``, ``plmn:``) bind to keys through the ledger, outside this check.
    """
    if statement.get("type") not in _SIGNED_TYPES:
        raise InvalidInput(f"not a {' or '.join(_SIGNED_TYPES)}")
    signatures = statement.get("signatures", [])
    if not isinstance(signatures, list):
        raise InvalidInput("statement: 'signatures' must be a list")
    message = statement_signing_bytes(statement)
    roles: list[str] = []
    for entry in signatures:
        if not isinstance(entry, dict) or entry.get("role") not in _ROLES:
            raise InvalidInput("statement: a signature has no valid role")
        role, key = str(entry["role"]), entry.get("key")
        if not isinstance(key, str) or not key.startswith("did:key:"):
            raise InvalidInput("statement: a signature's key must be a did:key")
        party = statement.get(role)
        if isinstance(party, str) and party.startswith("did:key:") and party != key:
            raise InvalidSignature(f"statement: the {role} signature is not by {party}")
        _, public = decode_multikey(key.removeprefix("did:key:"))
        verify_ed25519(public, _unb64(str(entry.get("signature", ""))), message)
        roles.append(role)
    missing = [role for role in require if role not in roles]
    if missing:
        raise InvalidSignature(f"statement: not signed by the {' and '.join(missing)}")
    return roles


def record_proof(home: Path, visited: Path, index: int) -> dict[str, Any]:
    """The record at ``index`` (home records first) with its inclusion proof."""
    leaves = list(record_leaves(home, visited))
    if not 0 <= index < len(leaves):
        raise InvalidInput(f"no record {index}: the files hold {len(leaves)}")
    proof = inclusion_proof(leaves, index)
    return {
        "record": leaves[index].decode(),
        "index": index,
        "size": len(leaves),
        "path": [node.hex() for node in proof.path],
        "merkle_root": merkle_root(leaves).hex(),
        "leaf_hash": leaf_hash(leaves[index]).hex(),
    }


def verify_record_proof(proof: dict[str, Any], root_hex: str) -> None:
    """Raise unless ``proof`` leads from its record to ``root_hex`` (a statement's root)."""
    try:
        path = tuple(bytes.fromhex(node) for node in proof["path"])
        inclusion = InclusionProof(
            index=int(proof["index"]), tree_size=int(proof["size"]), path=path
        )
        verify_inclusion(str(proof["record"]).encode(), inclusion, bytes.fromhex(root_hex))
    except (KeyError, TypeError, ValueError):
        raise DecodeError("record proof: malformed") from None


def statement_id(statement: dict[str, Any]) -> str:
    """SHA-256 (hex) of the statement's signing bytes: what resolutions and carries cite."""
    return hashlib.sha256(statement_signing_bytes(statement)).hexdigest()


def _open_disputes(statement: dict[str, Any]) -> int:
    carried = statement.get("carried_disputes", [])
    if not isinstance(carried, list):
        raise InvalidInput("statement: 'carried_disputes' must be a list")
    disputed = statement.get("disputed_minor_units")
    if isinstance(disputed, bool) or not isinstance(disputed, int) or disputed < 0:
        raise InvalidInput("statement: 'disputed_minor_units' must be a non-negative integer")
    return disputed + sum(int(entry.get("remaining_minor_units", 0)) for entry in carried)


def resolve_dispute(statement: dict[str, Any], agreed_minor_units: int) -> dict[str, Any]:
    """The unsigned resolution of a statement's open disputes (its own and those it carries).

    ``agreed_minor_units`` of them are owed by the payer to the payee (netted like a
    statement once both sign); the rest is dropped by agreement.
    """
    verify_statement(statement)
    open_amount = _open_disputes(statement)
    if not 0 <= agreed_minor_units <= open_amount:
        raise InvalidInput(f"the agreed amount must lie between 0 and {open_amount}")
    return {
        "type": RESOLUTION_TYPE,
        "version": 1,
        "statement": statement_id(statement),
        "agreement": statement.get("agreement"),
        "payer": statement["payer"],
        "payee": statement["payee"],
        "currency": statement["currency"],
        "disputed_minor_units": open_amount,
        "agreed_minor_units": agreed_minor_units,
        "signatures": [],
    }


_DAY_US = 86_400 * 1_000_000


def _check_window_closed(previous: dict[str, Any], next_statement: dict[str, Any]) -> None:
    """Refuse to carry while the previous statement's dispute window is still open.

    The window (the agreement's ``dispute_window_days``, copied into the statement)
    runs from the end of the previous period; disputes expire into the first next
    statement whose period ends at or after its close. Judged from the statements'
    own periods, never from a clock, so both parties reach the same answer.
    """
    days = previous.get("dispute_window_days")
    if days is None:
        return
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3_660:
        raise InvalidInput("statement: 'dispute_window_days' must be an integer from 0 to 3660")
    try:
        closes = parse_utc_micros(str(previous["period"]["until"])) + days * _DAY_US
        reached = parse_utc_micros(str(next_statement["period"]["until"]))
    except (KeyError, TypeError):
        raise InvalidInput("statement: 'period.until' is missing") from None
    if reached < closes:
        raise InvalidInput(
            f"the dispute window of the previous statement is open for {days} days after its"
            " period: resolve the disputes, or carry them into a statement whose period ends"
            " after the window closes")


def carry_disputes(
    next_statement: dict[str, Any],
    previous: dict[str, Any],
    resolution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``next_statement`` (unsigned) carrying what ``previous`` left unresolved.

    Disputes that the dispute window let expire move into the next statement of the
    same agreement and parties: they stay disputed (never netted) until a resolution
    signed by both parties settles them.
    """
    verify_statement(previous)
    if next_statement.get("signatures"):
        raise InvalidInput("carry disputes before the parties sign the next statement")
    for field in ("agreement", "payer", "payee", "currency"):
        if next_statement.get(field) != previous.get(field):
            raise InvalidInput(f"the statements differ in {field}: nothing to carry")
    remaining = _open_disputes(previous)
    if resolution is None and remaining:
        _check_window_closed(previous, next_statement)
    if resolution is not None:
        verify_statement(resolution)
        if resolution.get("type") != RESOLUTION_TYPE or resolution.get(
            "statement"
        ) != statement_id(previous):
            raise InvalidInput("the resolution does not resolve the previous statement")
        remaining = 0  # a signed resolution settles every open dispute of that statement
    carried = [dict(entry) for entry in next_statement.get("carried_disputes", [])]
    if remaining:
        carried.append({"statement": statement_id(previous), "remaining_minor_units": remaining})
    return {**next_statement, "carried_disputes": carried}
