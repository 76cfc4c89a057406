"""Fuzzing the TMF request decoders with documents generated from the official schemas.

For each served TMF write operation, hypothesis draws request bodies from the
official request definition (``ProductOrder_Create``, ``ProductOffering_Create``,
``ServiceSpecification_Create``, ``CancelProductOrder_Create``,
``EventSubscriptionInput``, TMF622 v5 ``ProductOrder_FVO`` …) with
``schema_strategies.SchemaStrategies``: valid documents (checked against the
official file first, so the generator cannot drift) and documents broken at one
place. The server must answer a status the served OpenAPI document declares,
never a 5xx; an error is the TMF ``Error`` model; a success validates against the
official response definition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator, Draft7Validator

from simtrust.runtime import Runtime

from .conftest import CATALOG, ORDERING, SERVICE_CATALOG, TMF_FILES, TmfCheck
from .schema_strategies import SchemaStrategies

V5 = "/tmf-api/productOrderingManagement/v5"
V5_FILE = "TMF622-ProductOrdering-v5.0.0.oas.yaml"

#: (api, method, path template, request definition, response definition).
OPERATIONS = [
    ("620", "POST", f"{CATALOG}/productOffering", "ProductOffering_Create", "ProductOffering"),
    ("620", "PATCH", f"{CATALOG}/productOffering/{{o}}", "ProductOffering_Update",
     "ProductOffering"),
    ("620", "POST", f"{CATALOG}/productSpecification", "ProductSpecification_Create",
     "ProductSpecification"),
    ("620", "POST", f"{CATALOG}/productOfferingPrice", "ProductOfferingPrice_Create",
     "ProductOfferingPrice"),
    ("620", "POST", f"{CATALOG}/catalog", "Catalog_Create", "Catalog"),
    ("620", "POST", f"{CATALOG}/category", "Category_Create", "Category"),
    ("622", "POST", f"{ORDERING}/productOrder", "ProductOrder_Create", "ProductOrder"),
    ("622", "PATCH", f"{ORDERING}/productOrder/{{p}}", "ProductOrder_Update", "ProductOrder"),
    ("622", "POST", f"{ORDERING}/cancelProductOrder", "CancelProductOrder_Create",
     "CancelProductOrder"),
    ("622", "POST", f"{ORDERING}/hub", "EventSubscriptionInput", "EventSubscription"),
    ("633", "POST", f"{SERVICE_CATALOG}/serviceSpecification", "ServiceSpecification_Create",
     "ServiceSpecification"),
    ("633", "POST", f"{SERVICE_CATALOG}/serviceCatalog", "ServiceCatalog_Create",
     "ServiceCatalog"),
]


def _load(shared_dir: Path, name: str) -> dict[str, Any]:
    text = (shared_dir / "specs" / "tmf" / name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    return loaded


#: Per runtime: an orderable offering and an order of the operator (ids the hints offer).
_WORLDS: dict[int, tuple[str, str]] = {}


def _world(rt: Runtime) -> tuple[str, str]:
    if id(rt) not in _WORLDS:
        _WORLDS.clear()
        rt.tenants.create_tenant("acme", "Acme")
        offering = rt.market.create_item("productOffering", None,
                                         {"name": "IoT", "lifecycleStatus": "Launched"}, "t")
        order = rt.market.create_order("acme", {"productOrderItem": [
            {"id": "1", "action": "add", "productOffering": {"id": offering.document["id"]}}]},
            "t")
        _WORLDS[id(rt)] = (offering.document["id"], order.document["id"])
    return _WORLDS[id(rt)]


_OFFERING = "00000000-0000-4000-8000-000000000001"


def _hints() -> dict[str, st.SearchStrategy[Any]]:
    """Values the server knows, mixed with the schemas' own (ids filled in per example)."""
    return {"id": st.sampled_from([_OFFERING, "1", "2"]),
            "action": st.sampled_from(["add", "modify", "delete", "noChange"]),
            "lifecycleStatus": st.sampled_from(["Launched", "Active", "Retired"]),
            "callback": st.sampled_from(["https://example.com/listener",
                                         "http://127.0.0.1:9/x"])}


@pytest.fixture(scope="module")
def strategies(shared_dir: Path) -> dict[str, tuple[SchemaStrategies, Any]]:
    out = {}
    for api, name in TMF_FILES.items():
        doc = _load(shared_dir, name)
        out[api] = (SchemaStrategies(doc, _hints()), doc)
    v5 = _load(shared_dir, V5_FILE)
    out["622v5"] = (SchemaStrategies(v5, _hints()), v5)
    return out


def _validator(doc: dict[str, Any], definition: str) -> Any:
    if "definitions" in doc:
        return Draft4Validator({"$ref": f"#/definitions/{definition}",
                                "definitions": doc["definitions"]})
    return Draft7Validator({"$ref": f"#/components/schemas/{definition}",
                            "components": _by_discriminator(doc["components"])})


def _by_discriminator(value: Any) -> Any:
    """OpenAPI 3 components with each discriminated ``oneOf`` read as the discriminator says.

    JSON Schema alone has no discriminator: a ``Product`` with an ``id`` matches both
    ``Product_FVO`` and ``ProductRef_FVO``, so the plain ``oneOf`` refuses what the
    discriminator (``@type``) accepts. Each branch is taken when ``@type`` names it.
    """
    if isinstance(value, list):
        return [_by_discriminator(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _by_discriminator(v) for k, v in value.items()}
    mapping = value.get("discriminator", {}).get("mapping")
    if mapping and "oneOf" in value:
        name = value["discriminator"]["propertyName"]
        del out["oneOf"]
        out["allOf"] = [*out.get("allOf", []), *[
            {"if": {"properties": {name: {"const": tag}}, "required": [name]},
             "then": {"$ref": ref}} for tag, ref in mapping.items()],
            {"properties": {name: {"enum": sorted(mapping)}}, "required": [name]}]
    return out


_DEFINITIONS = sorted({(a, d) for a, _, _, d, _ in OPERATIONS} | {("622v5", "ProductOrder_FVO")})


@pytest.mark.parametrize(("api_name", "definition"), _DEFINITIONS)
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_documents_are_valid(strategies: dict[str, tuple[SchemaStrategies, Any]],
                                       api_name: str, definition: str,
                                       data: st.DataObject) -> None:
    """The generator's valid documents pass the official schemas."""
    gen, doc = strategies[api_name]
    body = data.draw(gen.instances(definition))
    errors = [e.message for e in _validator(doc, definition).iter_errors(body)]
    assert not errors, (definition, errors[:3], body)


def _fill(body: Any, offering: str) -> Any:
    text = json.dumps(body).replace(_OFFERING, offering)
    return json.loads(text)


#: The served OpenAPI document of the current test client.
_SERVED: dict[int, dict[str, Any]] = {}


def _answer_checked(api: Any, response: Any, method: str, template: str, tmf_check: TmfCheck,
                    api_name: str, answer_definition: str) -> None:
    if id(api) not in _SERVED:
        _SERVED.clear()
        _SERVED[id(api)] = api.get("/openapi.json").json()
    declared = _SERVED[id(api)]["paths"][
        template.replace("{o}", "{id}").replace("{p}", "{id}")][method.lower()]
    assert str(response.status_code) in declared["responses"], (response.status_code,
                                                                response.text)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()
        assert {"code", "reason", "message", "status"} <= set(error), error
    elif api_name != "622v5" and response.content:
        tmf_check(api_name, answer_definition, response.json())


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), which=st.integers(0, len(OPERATIONS) - 1), broken=st.booleans())
def test_official_shapes_answer_documented_statuses(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        strategies: dict[str, tuple[SchemaStrategies, Any]], tmf_check: TmfCheck,
        data: st.DataObject, which: int, broken: bool) -> None:
    offering, order = _world(sqlite_runtime)
    api_name, method, template, definition, answer = OPERATIONS[which]
    gen, _ = strategies[api_name]
    body = data.draw(gen.mutants(definition) if broken else gen.instances(definition))
    url = template.format(o=offering, p=order)
    response = api.request(method, url, content=json.dumps(_fill(body, offering)),
                           headers={**operator_headers, "Content-Type": (
                               "application/merge-patch+json" if method == "PATCH"
                               else "application/json")})
    _answer_checked(api, response, method, template, tmf_check, api_name, answer)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), broken=st.booleans())
def test_v5_order_shapes_answer_documented_statuses(
        api: Any, sqlite_runtime: Runtime, operator_headers: dict[str, str],
        strategies: dict[str, tuple[SchemaStrategies, Any]], tmf_check: TmfCheck,
        data: st.DataObject, broken: bool) -> None:
    offering, _ = _world(sqlite_runtime)
    gen, doc = strategies["622v5"]
    body = data.draw(gen.mutants("ProductOrder_FVO") if broken
                     else gen.instances("ProductOrder_FVO"))
    response = api.post(f"{V5}/productOrder", content=json.dumps(_fill(body, offering)),
                        headers={**operator_headers, "Content-Type": "application/json"})
    _answer_checked(api, response, "POST", f"{V5}/productOrder", tmf_check, "622v5", "")
    if response.status_code == 201:
        errors = [e.message for e in _validator(doc, "ProductOrder").iter_errors(
            response.json())]
        assert not errors, errors[:3]
