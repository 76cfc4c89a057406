"""Slice SLA contracts: targets from TS 28.541 ServiceProfile attributes, credits per period.

The contract names targets with the ServiceProfile attribute names of
3GPP TS 28.541 §6.3.3 (``availability`` in percent, ``dLLatency``/``uLLatency``
in ms, ``dLThptPerSlice``/``uLThptPerSlice``/``dLThptPerUE``/``uLThptPerUE``
with ``guaThpt`` in kbit/s), a measurement period, the fee per period and a
credit schedule. KPI reports (one CSV row each) are signed by monitoring agents
named as ``did:key`` (Ed25519). Per period and KPI the measured value is the
exact mean of the accepted reports; a KPI is violated when it falls short of
its target; the period's credit is the largest scheduled credit of each
violated KPI, summed, capped, and rounded half up in minor units of the fee.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from simtrust.errors import DecodeError, InvalidInput, SimtrustError
from simtrust.identity import decode_multikey
from simtrust.ledger import verify_ed25519
from simtrust.settlement._agreement import parse_utc_micros

__all__ = [
    "MEASUREMENT_COLUMNS",
    "SLA_KPIS",
    "SlaContract",
    "evaluate_sla",
    "load_sla_contract",
    "measurement_signing_bytes",
    "parse_sla_contract",
]

#: KPI name → (direction, where its target sits in the ServiceProfile).
#: ``min``: the measured value must be at least the target; ``max``: at most.
SLA_KPIS: dict[str, tuple[str, tuple[str, ...]]] = {
    "availability": ("min", ("availability",)),
    "dLLatency": ("max", ("dLLatency",)),
    "uLLatency": ("max", ("uLLatency",)),
    "dLThptPerSlice": ("min", ("dLThptPerSlice", "guaThpt")),
    "uLThptPerSlice": ("min", ("uLThptPerSlice", "guaThpt")),
    "dLThptPerUE": ("min", ("dLThptPerUE", "guaThpt")),
    "uLThptPerUE": ("min", ("uLThptPerUE", "guaThpt")),
}
MEASUREMENT_COLUMNS = ("time", "kpi", "value", "agent", "signature")
_MICROS = 1_000_000


def _number(value: object, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput(f"contract: {what} must be a number")
    try:
        exact = Fraction(value)
    except (ValueError, InvalidOperation):
        raise InvalidInput(f"contract: {what} must be a finite number") from None
    if exact < 0:
        raise InvalidInput(f"contract: {what} must not be negative")
    return exact


@dataclass(frozen=True, slots=True)
class SlaContract:
    """What evaluation needs of a slice SLA contract; ``raw`` keeps the signed document."""

    id: str
    currency: str
    fee_minor_units: int
    start_us: int
    end_us: int
    period_us: int
    targets: dict[str, Fraction]
    schedule: dict[str, list[tuple[Fraction, Fraction]]]
    max_credit_percent: Fraction
    agents: frozenset[str]
    raw: dict[str, Any]


def _target(profile: dict[str, Any], path: tuple[str, ...]) -> object:
    value: object = profile
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def parse_sla_contract(text: str | bytes) -> SlaContract:
    """The contract in ``text`` (JSON), validated; see ``docs/settlement.md`` for its schema."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise DecodeError("contract: not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("contract: the document must be a JSON object")
    for key in ("id", "currency", "start", "end"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InvalidInput(f"contract: {key!r} must be a non-empty string")
    fee = data.get("fee_minor_units")
    if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
        raise InvalidInput("contract: 'fee_minor_units' must be a non-negative integer")
    period = data.get("period_seconds")
    if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
        raise InvalidInput("contract: 'period_seconds' must be a positive integer")
    start, end = parse_utc_micros(data["start"]), parse_utc_micros(data["end"])
    if start >= end:
        raise InvalidInput("contract: 'start' must be before 'end'")
    profile = data.get("service_profile")
    if not isinstance(profile, dict):
        raise InvalidInput("contract: 'service_profile' must be an object (TS 28.541)")
    targets = {}
    for kpi, (_, path) in SLA_KPIS.items():
        value = _target(profile, path)
        if value is not None:
            targets[kpi] = _number(value, ".".join(path))
    if not targets:
        raise InvalidInput("contract: the service profile sets no KPI target")
    schedule: dict[str, list[tuple[Fraction, Fraction]]] = {}
    credits = data.get("credits", [])
    if not isinstance(credits, list):
        raise InvalidInput("contract: 'credits' must be a list")
    for entry in credits:
        if not isinstance(entry, dict) or entry.get("kpi") not in targets:
            raise InvalidInput("contract: each credit names a KPI the profile targets")
        kpi = str(entry["kpi"])
        shortfall = _number(entry.get("shortfall", 0), f"credits.{kpi}.shortfall")
        percent = _number(entry.get("credit_percent"), f"credits.{kpi}.credit_percent")
        schedule.setdefault(kpi, []).append((shortfall, percent))
    cap = _number(data.get("max_credit_percent", 100), "max_credit_percent")
    agents = data.get("agents", [])
    if not isinstance(agents, list) or not all(
        isinstance(a, str) and a.startswith("did:key:") for a in agents
    ):
        raise InvalidInput("contract: 'agents' must be a list of did:key identifiers")
    return SlaContract(
        id=data["id"],
        currency=data["currency"],
        fee_minor_units=fee,
        start_us=start,
        end_us=end,
        period_us=period * _MICROS,
        targets=targets,
        schedule=schedule,
        max_credit_percent=cap,
        agents=frozenset(agents),
        raw=data,
    )


def load_sla_contract(path: Path) -> SlaContract:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"contract {path}: cannot read ({exc.strerror})") from None
    try:
        return parse_sla_contract(text)
    except InvalidInput as exc:
        raise type(exc)(f"{path}: {exc.detail}") from None


def measurement_signing_bytes(contract_id: str, time: str, kpi: str, value: str) -> bytes:
    """What an agent signs for one report: ``contract,time,kpi,value`` as one CSV line."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([contract_id, time, kpi, value])
    return line.getvalue().encode()


def _check_signature(contract: SlaContract, row: dict[str, str]) -> str | None:
    """Why the report is not accepted, or ``None`` when it is."""
    if not contract.agents:
        return None
    agent = row.get("agent") or ""
    if agent not in contract.agents:
        return "agent not named by the contract"
    try:
        signature = base64.urlsafe_b64decode(
            (row.get("signature") or "") + "=" * (-len(row.get("signature") or "") % 4)
        )
        _, public = decode_multikey(agent.removeprefix("did:key:"))
        verify_ed25519(
            public,
            signature,
            measurement_signing_bytes(contract.id, row["time"], row["kpi"], row["value"]),
        )
    except (ValueError, SimtrustError):
        return "signature does not verify"
    return None


def _decimal(fraction: Fraction) -> str:
    """Six decimals, half up (display only: decisions use the exact value)."""
    scaled = fraction * 10**6
    whole = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
    sign = "-" if whole < 0 else ""
    digits = str(abs(whole)).rjust(7, "0")
    return f"{sign}{digits[:-6]}.{digits[-6:]}".rstrip("0").rstrip(".")


def _read_measurements(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DecodeError(f"measurements {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DecodeError(f"measurements {path}: not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    names = [n.strip() for n in (reader.fieldnames or [])]
    if not {"time", "kpi", "value"} <= set(names) or not set(names) <= set(MEASUREMENT_COLUMNS):
        raise DecodeError(
            f"measurements {path}: bad header; expected time,kpi,value[,agent,signature]"
        )
    reader.fieldnames = names
    rows: list[dict[str, str]] = []
    for row in reader:
        if any(v for v in row.values() if v):
            if None in row:
                raise DecodeError(f"measurements {path}: row {len(rows) + 1} has extra fields")
            rows.append({k: (v or "").strip() for k, v in row.items()})
    return rows


def evaluate_sla(contract: SlaContract, measurements: Path) -> dict[str, Any]:
    """Violations and credits per period of ``contract`` from the reports in ``measurements``."""
    rows = _read_measurements(measurements)
    sums: dict[tuple[int, str], list[Fraction]] = {}
    rejected = []
    for number, row in enumerate(rows, start=1):
        try:
            at = parse_utc_micros(row["time"])
            value = Fraction(Decimal(row["value"]))
        except (InvalidInput, InvalidOperation, ValueError):
            raise DecodeError(
                f"measurements {measurements}: row {number}: bad time or value"
            ) from None
        reason = None
        if row["kpi"] not in contract.targets:
            reason = "KPI not in the contract"
        elif not contract.start_us <= at < contract.end_us:
            reason = "outside the contract's term"
        else:
            reason = _check_signature(contract, row)
        if reason:
            rejected.append({"row": number, "reason": reason})
            continue
        period = (at - contract.start_us) // contract.period_us
        sums.setdefault((period, row["kpi"]), []).append(value)
    count = -(-(contract.end_us - contract.start_us) // contract.period_us)
    periods = []
    total = 0
    for period in range(count):
        begin = contract.start_us + period * contract.period_us
        kpis: dict[str, Any] = {}
        percent = Fraction(0)
        for kpi, target in contract.targets.items():
            values = sums.get((period, kpi))
            if not values:
                kpis[kpi] = {"target": _decimal(target), "reports": 0, "violated": False}
                continue
            mean = sum(values, Fraction(0)) / len(values)
            direction = SLA_KPIS[kpi][0]
            shortfall = target - mean if direction == "min" else mean - target
            violated = shortfall > 0
            credit = Fraction(0)
            if violated:
                tiers = contract.schedule.get(kpi, [])
                credit = max((p for floor, p in tiers if shortfall >= floor), default=Fraction(0))
            percent += credit
            kpis[kpi] = {
                "target": _decimal(target),
                "measured": _decimal(mean),
                "reports": len(values),
                "violated": violated,
                "credit_percent": _decimal(credit),
            }
        percent = min(percent, contract.max_credit_percent)
        amount = contract.fee_minor_units * percent / 100
        minor = (2 * amount.numerator + amount.denominator) // (2 * amount.denominator)
        total += minor
        periods.append(
            {
                "start": _iso(begin),
                "end": _iso(min(begin + contract.period_us, contract.end_us)),
                "kpis": kpis,
                "violations": sorted(k for k, v in kpis.items() if v["violated"]),
                "credit_percent": _decimal(percent),
                "credit_minor_units": minor,
            }
        )
    return {
        "contract": contract.id,
        "currency": contract.currency,
        "fee_minor_units": contract.fee_minor_units,
        "periods": periods,
        "total_credit_minor_units": total,
        "accepted_reports": len(rows) - len(rejected),
        "rejected": rejected,
    }


def _iso(micros: int) -> str:

    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"
