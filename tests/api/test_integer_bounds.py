"""Integers beyond 64 bits are refused at the edge with a 422 problem, never a 500.

Every integer the OpenAPI document declares (query, path and body fields, nested
models included) must carry bounds inside the signed 64-bit range the stores
hold; every integer query and path parameter is then tried with 2**64. The TM
Forum routes' bodies are described by the official TMF schemas, unchanged
(``x-tmf-official``, api/tmf_openapi.py), which leave integers unbounded: those
bodies are kept as JSON documents, and ``tests/market/test_tmf_openapi.py``
posts integers beyond 64 bits to them (an Error, never a 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simtrust.api.tmf_openapi import OFFICIAL_MARK
from tests.api.openapi_walk import operations, resolve

PROBLEM = "application/problem+json"
HUGE = 2**64


def _integers(doc: dict[str, Any], schema: dict[str, Any], where: str,
              seen: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        yield from _integers(doc, resolve(doc, schema["$ref"]), where, (*seen, schema["$ref"]))
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for alt in schema.get(key, []):
            yield from _integers(doc, alt, where, seen)
    if schema.get("type") == "integer":
        yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _integers(doc, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from _integers(doc, schema["items"], f"{where}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _integers(doc, schema["additionalProperties"], f"{where}{{}}", seen)


def _bounded(schema: dict[str, Any]) -> bool:
    """Declared within 64 bits: an enum, ``format: int64``/``int32`` (with bounds; the
    document's numbers may be floats, so 2**63-1 can read as 2**63), or small bounds."""
    if "enum" in schema or "const" in schema:
        return True
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is None or high is None:
        return False
    if schema.get("format") in ("int64", "int32"):
        return True
    return -(2**53) <= low and high <= 2**53


def test_every_declared_integer_is_bounded_to_64_bits(api: Any) -> None:
    doc = api.get("/openapi.json").json()
    unbounded = []
    for method, path, op in operations(doc):
        for param in op.get("parameters", []):
            where = f"{method} {path} {param['in']}:{param['name']}"
            unbounded += [w for w, s in _integers(doc, param["schema"], where) if not _bounded(s)]
        if OFFICIAL_MARK in op:
            continue
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            where = f"{method} {path} body({media})"
            unbounded += [w for w, s in _integers(doc, content["schema"], where)
                          if not _bounded(s)]
    assert [] == unbounded


def _integer_parameters(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for method, path, op in operations(doc):
        for param in op.get("parameters", []):
            if param["in"] in ("query", "path") and any(
                    True for _ in _integers(doc, param["schema"], "")):
                found.append((method, path, param))
    return found


def test_every_integer_parameter_answers_422_beyond_64_bits(
        api: Any, operator_headers: dict[str, str]) -> None:
    doc = api.get("/openapi.json").json()
    params = _integer_parameters(doc)
    assert len(params) >= 10  # after_seq, after_id, after, entry_id, limit, version, ...
    for method, path, param in params:
        url = path
        query: dict[str, Any] = {}
        for other in [p for p in doc["paths"][path][method.lower()].get("parameters", [])
                      if p["in"] == "path"]:
            value = HUGE if other is param else "x"
            url = url.replace("{" + other["name"] + "}", str(value))
        if param["in"] == "query":
            query[param["name"]] = HUGE
        response = api.request(method, url, params=query, headers=operator_headers)
        assert 422 == response.status_code, (method, path, param["name"], response.text)
        # TM Forum routes answer the TMF630 Error model, with the same errors member.
        media = "application/json" if path.startswith("/tmf-api/") else PROBLEM
        assert response.headers["content-type"].startswith(media)
        locations = [e["location"] for e in response.json()["errors"]]
        assert any(loc.endswith(param["name"]) for loc in locations), (path, locations)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/v1/sims", {"tenant_id": "acme", "iccid": "8988200000000000017",
                          "imsi": "001010000000001", "k": "00" * 16, "opc": "00" * 16,
                          "group_id": HUGE}),
    ("PATCH", "/v1/sims/8988200000000000017", {"group_id": HUGE}),
    ("POST", "/v1/devices", {"tenant_id": "acme", "imei": "352099000000014",
                             "group_id": HUGE}),
    ("POST", "/v1/sims", {"tenant_id": "acme", "iccid": "8988200000000000017",
                          "imsi": "001010000000001", "k": "00" * 16, "topc": "00" * 32,
                          "tuak": {"keccak_iterations": HUGE}}),
])
def test_body_integers_beyond_64_bits_are_422(
        api: Any, operator_headers: dict[str, str], method: str, url: str,
        body: dict[str, Any]) -> None:
    api.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=operator_headers)
    response = api.request(method, url, json=body, headers=operator_headers)
    assert 422 == response.status_code, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def test_policy_rule_integers_beyond_64_bits_are_422(
        api: Any, operator_headers: dict[str, str]) -> None:
    api.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=operator_headers)
    rule = {"kind": "allow", "dst": "10.0.0.0/8", "ports": [HUGE]}
    response = api.put("/v1/policy/policies/acme/tenant", json={"rules": [rule]},
                       headers=operator_headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM)
