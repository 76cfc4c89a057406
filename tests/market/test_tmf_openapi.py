"""The served OpenAPI document describes the TMF routes with the official schemas,
and every TMF response validates against both the served description and the official file.

``simtrust.api.tmf_openapi`` embeds the official schemas (extracted by
``tools/tmf_schemas.py``); here: the packaged extract is what the official files in
``specs/tmf`` give; each embedded schema is the official definition, renamed and
nothing else; the served document is a valid OpenAPI 3.1 document
(openapi-spec-validator); then every TMF operation the server offers is called,
and each answer's status must be declared and its body must validate against the
schema the served document gives for that status (openapi-schema-validator,
OAS 3.1) and against the official file directly (jsonschema: swagger 2.0
``definitions`` as draft 4, OpenAPI 3.0 ``components`` as draft 7).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft4Validator, Draft7Validator
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from simtrust.api.tmf_openapi import OFFICIAL_MARK, official
from simtrust.market import LISTENER_EVENTS
from simtrust.runtime import Runtime

from .conftest import (
    CATALOG,
    INVENTORY,
    LOOPBACK,
    ORDERING,
    SERVICE_CATALOG,
    SERVICE_INVENTORY,
    SERVICE_ORDERING,
    add_stock,
    char,
    order_body,
    publish,
    service_spec,
)

V5 = "/tmf-api/productOrderingManagement/v5"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "tmf_schemas.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("tmf_schemas", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _official_file(folder: Path, name: str) -> dict[str, Any]:
    text = (folder / name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    return loaded


def test_packaged_extract_is_the_official_files(shared_dir: Path) -> None:
    rendered = _tool().render(shared_dir / "specs" / "tmf")
    assert json.loads(rendered) == official()


def test_embedded_schemas_are_the_official_definitions(shared_dir: Path) -> None:
    folder = shared_dir / "specs" / "tmf"
    data = official()
    for prefix, api in data["apis"].items():
        doc = _official_file(folder, api["file"])
        source = doc["definitions"] if "swagger" in doc else doc["components"]["schemas"]
        local = "#/definitions/" if "swagger" in doc else "#/components/schemas/"
        mine = {k[len(prefix) + 1:]: v for k, v in data["schemas"].items()
                if k.startswith(prefix + "_")}
        assert mine
        for name, schema in mine.items():
            text = json.dumps(schema, sort_keys=True).replace(
                f'"#/components/schemas/{prefix}_', f'"{local}')
            assert json.loads(text) == source[name], (prefix, name)


@pytest.fixture
def served(api: Any) -> dict[str, Any]:
    doc: dict[str, Any] = api.get("/openapi.json").json()
    return doc


def test_served_document_is_valid_and_names_the_official_schemas(
        served: dict[str, Any]) -> None:
    validate(served)
    tmf = [(p, m, op) for p, item in served["paths"].items() if p.startswith("/tmf-api/")
           for m, op in item.items() if m in ("get", "post", "patch", "delete")]
    assert len(tmf) >= 50
    for path, method, op in tmf:
        assert OFFICIAL_MARK in op, (method, path)
        for status, answer in op["responses"].items():
            if status in ("202", "204"):  # no body (TMF622 v5 DELETE: 202 Accepted)
                assert "content" not in answer
                continue
            schema = answer["content"]["application/json"]["schema"]
            ref = schema.get("$ref") or schema["items"]["$ref"]
            assert ref.startswith(f"#/components/schemas/{op[OFFICIAL_MARK]['api']}_"), \
                (method, path, status, ref)
        if "requestBody" in op:
            for media in op["requestBody"]["content"].values():
                assert media["schema"]["$ref"].startswith(
                    f"#/components/schemas/{op[OFFICIAL_MARK]['api']}_")


Validator = Draft4Validator | Draft7Validator


class Conformance:
    """Validates each TMF answer against the served document and the official file."""

    def __init__(self, served: dict[str, Any], folder: Path) -> None:
        self.served = served
        self.folder = folder
        self.files: dict[str, dict[str, Any]] = {}
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
            for p in served["paths"] if p.startswith("/tmf-api/")]
        self.seen: set[tuple[str, str]] = set()
        self.checked = 0

    def _operation(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        path = httpx.URL(url).path
        for pattern, template in self.templates:
            if pattern.match(path):
                op = self.served["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
        raise AssertionError(f"{method} {path} is not in the served document")

    def _official_schema(self, mark: dict[str, Any], status: str) -> Validator | None:
        doc = self.files.get(mark["file"])
        if doc is None:
            doc = self.files[mark["file"]] = _official_file(self.folder, mark["file"])
        op = doc["paths"][mark["path"]][mark["method"]]
        answer = op["responses"].get(status) or op["responses"].get("default")
        if answer is None and status[0] in "45":
            answer = op["responses"]["400"]
        if "swagger" in doc:
            schema = answer.get("schema")
            return None if schema is None else Draft4Validator(
                {**schema, "definitions": doc["definitions"]},
                format_checker=Draft4Validator.FORMAT_CHECKER)
        while "$ref" in answer:
            answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
        content = answer.get("content", {}).get("application/json")
        return None if content is None else Draft7Validator(
            {**content["schema"], "components": doc["components"]},
            format_checker=Draft7Validator.FORMAT_CHECKER)

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        if "/tmf-api/" not in str(request.url):
            return
        response.read()
        template, op = self._operation(request.method, str(request.url))
        status = str(response.status_code)
        assert status in op["responses"], (request.method, template, status, response.text)
        self.seen.add((request.method, template))
        schema = op["responses"][status].get("content", {}).get("application/json", {}).get(
            "schema")
        if schema is None:
            assert not response.content, (request.method, template, status)
            return
        body = response.json()
        served = OAS31Validator({**schema, "components": self.served["components"]},
                                format_checker=OAS31Validator.FORMAT_CHECKER)
        errors = [e.message for e in served.iter_errors(body)][:3]
        assert not errors, ("served", request.method, template, status, errors)
        validator = self._official_schema(op[OFFICIAL_MARK], status)
        assert validator is not None, (request.method, template, status)
        errors = [e.message for e in validator.iter_errors(body)][:3]
        assert not errors, ("official", request.method, template, status, errors)
        self.checked += 1


def test_every_tmf_operation_answers_what_the_official_files_describe(
        api: Any, served: dict[str, Any], sqlite_runtime: Runtime,
        operator_headers: dict[str, str], shared_dir: Path) -> None:
    rt = sqlite_runtime
    check = Conformance(served, shared_dir / "specs" / "tmf")
    api.event_hooks["response"].append(check)
    rt.market_events.allowed_networks = LOOPBACK
    rt.tenants.create_tenant("acme", "Acme")
    acme = {"Authorization": f"Bearer "
                             f"{rt.tenants.create_key('tenant-admin', 'a', tenant_id='acme').secret}"}
    op = operator_headers
    viewer = {"Authorization": "Bearer "
                               f"{rt.tenants.create_key('tenant-viewer', 'v', tenant_id='acme').secret}"}
    add_stock(rt, 4)
    offering = publish(api, op, "SIMs", [service_spec(
        "SimBatch", "SIMs", char("stockTenant", default="stock", configurable=False))])
    manual = publish(api, op, "Consulting", [])

    # Catalogs: every kind, create / list / retrieve / patch / delete; errors too.
    spec_id = api.get(f"{SERVICE_CATALOG}/serviceSpecification", headers=op).json()[0]["id"]
    kinds = {f"{CATALOG}/catalog": {"name": "IoT", "catalogType": "B2B"},
             f"{CATALOG}/category": {"name": "Connectivity", "isRoot": True},
             f"{SERVICE_CATALOG}/serviceCatalog": {"name": "Network services"},
             f"{SERVICE_CATALOG}/serviceCategory": {"name": "Slices", "isRoot": True},
             f"{SERVICE_CATALOG}/serviceCandidate": {
                 "name": "SIM batch", "serviceSpecification": {"id": spec_id}},
             f"{CATALOG}/productOffering": {"name": "spare", "lifecycleStatus": "In design"},
             f"{CATALOG}/productSpecification": {"name": "spare spec"},
             f"{CATALOG}/productOfferingPrice": {
                 "name": "monthly", "priceType": "recurring", "recurringChargePeriodType": "month",
                 "price": {"unit": "EUR", "value": 4.5}},
             f"{SERVICE_CATALOG}/serviceSpecification": service_spec(
                 "SimBatch", "spare SIMs", char("apnName"))}
    for base, body in kinds.items():
        made = api.post(base, json=body, headers=op)
        assert 201 == made.status_code, made.text
        item = f"{base}/{made.json()['id']}"
        assert 200 == api.get(base, params={"fields": "name"}, headers=acme).status_code
        assert 200 == api.get(item, headers=op).status_code
        assert 200 == api.patch(item, json={"description": "changed"}, headers=op).status_code
        assert 400 == api.patch(item, json={"id": "other"}, headers=op).status_code
        assert 403 == api.post(base, json=body, headers=viewer).status_code
        assert 204 == api.delete(item, headers=op).status_code
        assert 404 == api.get(item, headers=op).status_code
    assert 401 == api.get(f"{CATALOG}/productOffering").status_code
    candidates = f"{SERVICE_CATALOG}/serviceCandidate"
    assert 404 == api.post(candidates, json={"name": "c", "serviceSpecification": {"id": "no"}},
                           headers=op).status_code
    assert 400 == api.post(candidates, json={"name": "c"}, headers=op).status_code
    assert not api.get(candidates, headers=op).json()

    # Orders in v4 and v5, the one that provisions and the manual one.
    for base in (ORDERING, V5):
        made = api.post(f"{base}/productOrder", json=order_body(offering["id"]), headers=acme)
        assert 201 == made.status_code, made.text
        assert 200 == api.get(f"{base}/productOrder", headers=acme).status_code
        assert 200 == api.get(f"{base}/productOrder/{made.json()['id']}",
                              headers=acme).status_code
        assert 400 == api.post(f"{base}/productOrder", json=order_body(offering["id"], 0),
                               headers=acme).status_code
        assert 404 == api.post(f"{base}/productOrder", json=order_body("nope"),
                               headers=acme).status_code
        manual_order = api.post(f"{base}/productOrder", json=order_body(manual["id"]),
                                headers=acme).json()
        assert 200 == api.patch(f"{base}/productOrder/{manual_order['id']}",
                                json={"description": "urgent"}, headers=acme).status_code
        assert 409 == api.patch(f"{base}/productOrder/{manual_order['id']}",
                                json={"state": "completed"}, headers=op).status_code
        task = api.post(f"{base}/cancelProductOrder", json={
            "productOrder": {"id": manual_order["id"]}, "cancellationReason": "changed mind"},
            headers=acme)
        assert 201 == task.status_code, task.text
        assert 409 == api.post(f"{base}/cancelProductOrder", json={
            "productOrder": {"id": manual_order["id"]}}, headers=acme).status_code
        assert 200 == api.get(f"{base}/cancelProductOrder", headers=acme).status_code
        assert 200 == api.get(f"{base}/cancelProductOrder/{task.json()['id']}",
                              headers=acme).status_code
        if base == V5:  # DELETE: a final order leaves the seller's list, an open one cancels
            assert 403 == api.delete(f"{base}/productOrder/{manual_order['id']}",
                                     headers=acme).status_code
            assert 204 == api.delete(f"{base}/productOrder/{manual_order['id']}",
                                     headers=op).status_code
            assert 404 == api.delete(f"{base}/productOrder/{manual_order['id']}",
                                     headers=op).status_code
            fresh = api.post(f"{base}/productOrder", json=order_body(manual["id"]),
                             headers=acme).json()
            assert 202 == api.delete(f"{base}/productOrder/{fresh['id']}",
                                     headers=acme).status_code

    # What the orders created.
    for base, kind in ((INVENTORY, "product"), (SERVICE_ORDERING, "serviceOrder"),
                       (SERVICE_INVENTORY, "service")):
        listing = api.get(f"{base}/{kind}", headers=acme)
        assert 200 == listing.status_code
        assert listing.json(), (kind, listing.text)
        assert 200 == api.get(f"{base}/{kind}/{listing.json()[0]['id']}",
                              headers=acme).status_code
        assert 404 == api.get(f"{base}/{kind}/missing", headers=acme).status_code
        if kind == "product":
            one = f"{base}/{kind}/{listing.json()[0]['id']}"
            assert 200 == api.patch(one, json={"description": "fleet"},
                                    headers=acme).status_code
            assert 409 == api.patch(one, json={"status": "terminated"},
                                    headers=acme).status_code

    # Service orders and service writes placed by a client (TMF641, TMF638).
    sims = {"name": "SIMs", "serviceSpecification": {"id": spec_id}}
    placed = api.post(f"{SERVICE_ORDERING}/serviceOrder", json={"serviceOrderItem": [
        {"id": "1", "action": "add", "service": sims}]}, headers=acme)
    assert 201 == placed.status_code, placed.text
    assert 422 == api.post(f"{SERVICE_ORDERING}/serviceOrder", json={"serviceOrderItem": [
        {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "no"}}}]},
        headers=acme).status_code
    assert 400 == api.post(f"{SERVICE_ORDERING}/serviceOrder", json={"serviceOrderItem": 1},
                           headers=acme).status_code
    future = api.post(f"{SERVICE_ORDERING}/serviceOrder", json={
        "requestedStartDate": "2099-01-01T00:00:00Z", "serviceOrderItem": [
            {"id": "1", "action": "add", "service": sims}]}, headers=acme)
    assert 201 == future.status_code, future.text  # waits for its requestedStartDate
    assert "acknowledged" == api.get(f"{SERVICE_ORDERING}/serviceOrder/{future.json()['id']}",
                                     headers=acme).json()["state"]
    waiting = rt.market.client_services.create_order(
        "acme", {"serviceOrderItem": [{"id": "1", "action": "add", "service": sims}]}, "test")
    waiting_id = waiting.document["id"]
    assert 200 == api.patch(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                            json={"description": "soon"}, headers=acme).status_code
    assert 409 == api.delete(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                             headers=acme).status_code  # not final yet
    task = api.post(f"{SERVICE_ORDERING}/cancelServiceOrder", json={
        "serviceOrder": {"id": waiting_id}, "cancellationReason": "typo"}, headers=acme)
    assert 201 == task.status_code, task.text
    assert 409 == api.post(f"{SERVICE_ORDERING}/cancelServiceOrder", json={
        "serviceOrder": {"id": waiting_id}}, headers=acme).status_code
    tasks = api.get(f"{SERVICE_ORDERING}/cancelServiceOrder", headers=acme)
    assert [task.json()] == tasks.json()
    stored = api.get(f"{SERVICE_ORDERING}/cancelServiceOrder/{task.json()['id']}",
                     headers=acme).json()
    assert ("done", "typo", waiting_id) == (stored["state"], stored["cancellationReason"],
                                            stored["serviceOrder"]["id"])
    assert 404 == api.get(f"{SERVICE_ORDERING}/cancelServiceOrder/missing",
                          headers=acme).status_code
    assert 403 == api.delete(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                             headers=viewer).status_code
    assert 204 == api.delete(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                             headers=acme).status_code
    assert 404 == api.get(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                          headers=acme).status_code
    assert 404 == api.delete(f"{SERVICE_ORDERING}/serviceOrder/{waiting_id}",
                             headers=acme).status_code
    fulfilling = next(o["id"] for o in api.get(f"{SERVICE_ORDERING}/serviceOrder",
                                               headers=acme).json()
                      if o.get("orderRelationship"))
    assert 409 == api.delete(f"{SERVICE_ORDERING}/serviceOrder/{fulfilling}",
                             headers=acme).status_code
    assert 404 == api.patch(f"{SERVICE_ORDERING}/serviceOrder/missing",
                            json={"description": "x"}, headers=acme).status_code
    made = api.post(f"{SERVICE_INVENTORY}/service", json={**sims, "state": "active"},
                    headers=acme)
    assert 201 == made.status_code, made.text
    one = f"{SERVICE_INVENTORY}/service/{made.json()['id']}"
    assert 200 == api.patch(one, json={"description": "spare"}, headers=acme).status_code
    assert 422 == api.patch(one, json={"startDate": "2026-01-01T00:00:00Z"},
                            headers=acme).status_code
    assert 204 == api.delete(one, headers=acme).status_code
    assert 404 == api.delete(one, headers=acme).status_code

    # Every API's hub.
    for base in (CATALOG, SERVICE_CATALOG, ORDERING, SERVICE_ORDERING, INVENTORY,
                 SERVICE_INVENTORY, V5):
        hub = api.post(f"{base}/hub", json={"callback": "http://127.0.0.1:9/listener"},
                       headers=acme)
        assert 201 == hub.status_code, hub.text
        assert 400 == api.post(f"{base}/hub", json={"callback": "ftp://x"},
                               headers=acme).status_code
        assert 204 == api.delete(f"{base}/hub/{hub.json()['id']}", headers=acme).status_code

    # Import and export jobs of both catalogs (the file's place refuses connections here).
    for base in (CATALOG, SERVICE_CATALOG):
        for kind in ("importJob", "exportJob"):
            job = api.post(f"{base}/{kind}", json={"url": "http://127.0.0.1:9/c.json"},
                           headers=op)
            assert 201 == job.status_code, job.text
            assert 400 == api.post(f"{base}/{kind}", json={}, headers=op).status_code
            assert 200 == api.get(f"{base}/{kind}", headers=op).status_code
            one = f"{base}/{kind}/{job.json()['id']}"
            assert "Failed" == api.get(one, headers=op).json()["status"]
            assert 404 == api.get(one, headers=acme).status_code
            assert 204 == api.delete(one, headers=op).status_code
            assert 404 == api.delete(one, headers=op).status_code

    # The client-side listeners: a delivery not signed by a partner seller is refused.
    for base, names in ((ORDERING, LISTENER_EVENTS["productOrdering"]),
                        (INVENTORY, LISTENER_EVENTS["productInventory"])):
        for name in names:
            event = {"eventId": "e", "eventTime": "2026-01-01T00:00:00Z",
                     "eventType": name[:1].upper() + name[1:], "event": {}}
            assert 401 == api.post(f"{base}/listener/{name}", json=event,
                                   headers=acme).status_code

    # Integers beyond 64 bits in the official bodies: an Error, never a server error.
    huge = order_body(offering["id"], 2**64)
    assert 400 == api.post(f"{ORDERING}/productOrder", json=huge, headers=acme).status_code
    odd = api.post(f"{CATALOG}/productOffering", json={"name": "x", "version": 2**64},
                   headers=op)
    assert odd.status_code in (201, 400), odd.text

    offered = {(m.upper(), p) for p, item in served["paths"].items()
               if p.startswith("/tmf-api/") for m in item if m in ("get", "post", "patch",
                                                                   "delete")}
    assert offered - check.seen == set()
    assert check.checked > 70
