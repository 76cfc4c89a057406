"""Slice SLA contracts (issue 15 item 5): TS 28.541 ServiceProfile targets, KPI reports
signed by monitoring agents, violations per period and credits by the schedule."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.errors import DecodeError, InvalidInput
from simtrust.identity import did_key
from simtrust.ledger import Ed25519Signer
from simtrust.settlement import evaluate_sla, measurement_signing_bytes, parse_sla_contract
from tests.settlement.test_cli import cli

AGENT = Ed25519Signer(bytes(range(3, 35)))
OTHER = Ed25519Signer(bytes(range(5, 37)))
CONTRACT: dict[str, Any] = {
    "id": "sla-embb-1",
    "provider": "did:example:op-a",
    "customer": "did:example:op-b",
    "currency": "EUR",
    "fee_minor_units": 100_000,
    "start": "2026-03-01T00:00:00Z",
    "end": "2026-03-04T00:00:00Z",
    "period_seconds": 86_400,
    "service_profile": {
        "serviceProfileId": "sp-1", "sst": 1, "availability": 99.9, "dLLatency": 20,
        "dLThptPerSlice": {"guaThpt": 100_000, "maxThpt": 200_000},
    },
    "credits": [
        {"kpi": "availability", "shortfall": 0, "credit_percent": 10},
        {"kpi": "availability", "shortfall": 0.9, "credit_percent": 25},
        {"kpi": "dLLatency", "credit_percent": 5},
        {"kpi": "dLThptPerSlice", "credit_percent": 5},
    ],
    "max_credit_percent": 50,
    "agents": [did_key(AGENT.public_key)],
}


def report(time: str, kpi: str, value: str, signer: Ed25519Signer = AGENT,
           contract: str = "sla-embb-1") -> str:
    signature = signer.sign(measurement_signing_bytes(contract, time, kpi, value))
    encoded = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return f"{time},{kpi},{value},{did_key(signer.public_key)},{encoded}"


def files(tmp_path: Path, rows: list[str], **changes: Any) -> tuple[Path, Path]:
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps({**CONTRACT, **changes}))
    measurements = tmp_path / "m.csv"
    measurements.write_text("\n".join(["time,kpi,value,agent,signature", *rows]) + "\n")
    return contract, measurements


ROWS = [
    # day 1: within every target
    report("2026-03-01T10:00:00Z", "availability", "99.95"),
    report("2026-03-01T10:00:00Z", "dLLatency", "12"),
    report("2026-03-01T10:00:00Z", "dLThptPerSlice", "150000"),
    # day 2: availability 99.5 (short by 0.4 -> 10 %), latency mean 25 ms (-> 5 %)
    report("2026-03-02T10:00:00Z", "availability", "99.5"),
    report("2026-03-02T08:00:00Z", "dLLatency", "20"),
    report("2026-03-02T20:00:00Z", "dLLatency", "30"),
    # day 3: availability 98 (short by 1.9 -> 25 %), throughput 90 Mbit/s (-> 5 %)
    report("2026-03-03T10:00:00Z", "availability", "98.0"),
    report("2026-03-03T10:00:00Z", "dLThptPerSlice", "90000"),
    # not counted: another agent, a forged value, outside the term, unknown KPI
    report("2026-03-01T11:00:00Z", "availability", "10", signer=OTHER),
    report("2026-03-01T12:00:00Z", "availability", "99.95").replace(",99.95,", ",50,"),
    report("2026-03-04T00:00:00Z", "availability", "1"),
    report("2026-03-01T12:00:00Z", "jitter", "1"),
]


def test_credits_follow_the_schedule(tmp_path: Path) -> None:
    result = evaluate_sla(parse_sla_contract(files(tmp_path, ROWS)[0].read_text()),
                          files(tmp_path, ROWS)[1])
    days = result["periods"]
    assert [[], ["availability", "dLLatency"], ["availability", "dLThptPerSlice"]] == [
        d["violations"] for d in days]
    assert ["0", "15", "30"] == [d["credit_percent"] for d in days]
    assert [0, 15_000, 30_000] == [d["credit_minor_units"] for d in days]
    assert 45_000 == result["total_credit_minor_units"]
    assert "25" == days[1]["kpis"]["dLLatency"]["measured"]
    assert [9, 10, 11, 12] == [r["row"] for r in result["rejected"]]
    assert 8 == result["accepted_reports"]


def test_cap_and_half_up(tmp_path: Path) -> None:
    rows = [report("2026-03-01T10:00:00Z", "availability", "90"),
            report("2026-03-01T10:00:00Z", "dLLatency", "99"),
            report("2026-03-01T10:00:00Z", "dLThptPerSlice", "1")]
    contract, measurements = files(tmp_path, rows, fee_minor_units=333, max_credit_percent=15)
    day = evaluate_sla(parse_sla_contract(contract.read_text()), measurements)["periods"][0]
    assert "15" == day["credit_percent"]  # 25 + 5 + 5, capped
    assert 50 == day["credit_minor_units"]  # 333 x 15 % = 49.95 -> 50


def test_unsigned_reports_count_when_the_contract_names_no_agent(tmp_path: Path) -> None:
    rows = ["2026-03-02T10:00:00Z,availability,99.5,,"]
    contract, measurements = files(tmp_path, rows, agents=[])
    result = evaluate_sla(parse_sla_contract(contract.read_text()), measurements)
    assert 10_000 == result["total_credit_minor_units"]


@pytest.mark.parametrize("change", [
    {"service_profile": {}}, {"fee_minor_units": -1}, {"period_seconds": 0},
    {"end": "2026-02-01T00:00:00Z"}, {"credits": [{"kpi": "uLLatency", "credit_percent": 1}]},
    {"agents": ["did:web:x"]},
])
def test_bad_contract(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_sla_contract(json.dumps({**CONTRACT, **change}))


def test_cli_evaluate_and_bad_input(tmp_path: Path) -> None:
    contract, measurements = files(tmp_path, ROWS)
    done = cli("sla", "evaluate", "--contract", str(contract), "--measurements",
               str(measurements), "--json", check=True)
    assert 45_000 == json.loads(done.stdout)["total_credit_minor_units"]
    measurements.write_text("when,what\n1,2\n")
    done = cli("sla", "evaluate", "--contract", str(contract), "--measurements",
               str(measurements), "--json")
    assert (2, "") == (done.returncode, done.stdout)
    assert 1 == len(done.stderr.strip().splitlines())
    bad = tmp_path / "bad.csv"
    bad.write_text("time,kpi,value\nyesterday,availability,1\n")
    with pytest.raises(DecodeError):
        evaluate_sla(parse_sla_contract(contract.read_text()), bad)
