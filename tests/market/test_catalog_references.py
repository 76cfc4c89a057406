"""References inside the TMF620/TMF633 catalogs must resolve (market/_references.py).

An offering naming a missing specification, a specification naming a missing
service specification, a category whose parent does not exist, a tenant's
private resource named from the public catalog or from another tenant: 422
``unknown-reference`` (TMF Error, naming the member), nothing written; the same
documents with existing references are created, and a patch that breaks a
reference is refused and leaves the stored document unchanged.
"""

from __future__ import annotations

from typing import Any

from simtrust.runtime import Runtime

from .conftest import CATALOG, SERVICE_CATALOG, TmfCheck

MISSING = "00000000-0000-4000-8000-00000000dead"


def _refused(check: TmfCheck, response: Any, api: str, attribute: str) -> None:
    assert 422 == response.status_code, response.text
    error = response.json()
    check(api, "Error", error)
    assert "unknown-reference" == error["code"], error
    assert attribute == error.get("attribute"), error


def test_catalog_references_must_resolve(api: Any, sqlite_runtime: Runtime,
                                         operator_headers: dict[str, str],
                                         tmf_check: TmfCheck) -> None:
    op = operator_headers
    rt = sqlite_runtime
    for name in ("acme", "globex"):
        rt.tenants.create_tenant(name, name)
    keys = {name: {"Authorization": "Bearer " + rt.tenants.create_key(
        "tenant-admin", name, tenant_id=name).secret} for name in ("acme", "globex")}

    def count(kind: str) -> int:
        return len(rt.market.list_items(kind, None, True))

    before = count("productOffering")
    _refused(tmf_check, api.post(f"{CATALOG}/productOffering", json={
        "name": "IoT", "productSpecification": {"id": MISSING}}, headers=op),
        "620", "productSpecification")
    _refused(tmf_check, api.post(f"{CATALOG}/productOffering", json={
        "name": "IoT", "category": [{"id": MISSING}]}, headers=op), "620", "category[0]")
    _refused(tmf_check, api.post(f"{CATALOG}/productSpecification", json={
        "name": "p", "serviceSpecification": [{"id": MISSING}]}, headers=op),
        "620", "serviceSpecification[0]")
    _refused(tmf_check, api.post(f"{CATALOG}/category", json={
        "name": "c", "parentId": MISSING}, headers=op), "620", "parentId")
    _refused(tmf_check, api.post(f"{SERVICE_CATALOG}/serviceCatalog", json={
        "name": "s", "category": [{"id": MISSING}]}, headers=op), "633", "category[0]")
    assert before == count("productOffering")
    assert 0 == count("productSpecification") == count("category")

    # existing references: created
    service = api.post(f"{SERVICE_CATALOG}/serviceSpecification", json={"name": "APN"},
                       headers=op).json()
    spec = api.post(f"{CATALOG}/productSpecification", json={
        "name": "p", "serviceSpecification": [{"id": service["id"]}]}, headers=op)
    assert 201 == spec.status_code, spec.text
    category = api.post(f"{CATALOG}/category", json={"name": "c"}, headers=op).json()
    offering = api.post(f"{CATALOG}/productOffering", json={
        "name": "IoT", "productSpecification": {"id": spec.json()["id"]},
        "category": [{"id": category["id"]}],
        "productOfferingPrice": [{"name": "by value", "priceType": "recurring"}]},
        headers=op)
    assert 201 == offering.status_code, offering.text
    tmf_check("620", "ProductOffering", offering.json())

    # a patch that breaks a reference: refused, the stored document unchanged
    url = f"{CATALOG}/productOffering/{offering.json()['id']}"
    _refused(tmf_check, api.patch(url, json={"productSpecification": {"id": MISSING}},
                                  headers=op), "620", "productSpecification")
    assert offering.json()["productSpecification"] == api.get(url, headers=op).json()[
        "productSpecification"]

    # a tenant's private specification: its own offerings may name it, nobody else's
    private = api.post(f"{CATALOG}/productSpecification", json={"name": "mine"},
                       headers=keys["acme"]).json()
    mine = api.post(f"{CATALOG}/productOffering", json={
        "name": "own", "productSpecification": {"id": private["id"]}}, headers=keys["acme"])
    assert 201 == mine.status_code, mine.text
    for who in (keys["globex"], op):
        _refused(tmf_check, api.post(f"{CATALOG}/productOffering", json={
            "name": "theirs", "productSpecification": {"id": private["id"]}}, headers=who),
            "620", "productSpecification")
