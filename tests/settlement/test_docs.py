"""The JSON Schemas in docs/settlement.md accept the documents the tests use and reject
what the parsers reject."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from tests.settlement.test_reconcile import AGREEMENT
from tests.settlement.test_sla import CONTRACT

DOC = Path(__file__).resolve().parents[2] / "docs" / "settlement.md"


def schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S):
        document = json.loads(block)
        if "$schema" in document:
            found[document["title"]] = document
    return found


def test_agreement_schema() -> None:
    schema = schemas()["Roaming agreement"]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(AGREEMENT, schema)
    jsonschema.validate({**AGREEMENT, "parties": {"home": "did:key:z6Mk"}}, schema)
    for bad in ({**AGREEMENT, "tariffs": {"data_per_mb": 1.5}}, {**AGREEMENT, "currency": "eur"},
                {k: v for k, v in AGREEMENT.items() if k != "tolerance_percent"}):
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_sla_contract_schema() -> None:

    schema = schemas()["Slice SLA contract"]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(CONTRACT, schema)
    assert not jsonschema.Draft202012Validator(schema).is_valid({**CONTRACT, "period_seconds": 0})
