"""TMF620 / TMF633 import and export jobs over real HTTP, checked against the official files.

Two nodes (two data directories) each serve their API on loopback; a file server
on loopback stands for the place the files go. A's product catalog is exported
(PUT to the file server, a JSON array of official ``ProductOffering``s, scoped by
``query``), then imported by B from that URL: the offerings keep their ids and
their references hold. Every job document validates against the official
``ImportJob`` / ``ExportJob`` (and errors against ``Error``). A job accepted by a
node that stops before running it runs when the node starts again, a job whose
runner stopped mid-run is taken over, and a file with a bad element fails the job
with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simtrust.config import load_settings
from simtrust.errors import NotFound
from simtrust.runtime import Runtime

from .conftest import CATALOG, LOOPBACK, SERVICE_CATALOG, TmfCheck, char, service_spec
from .loopback import FileServer, Node, until


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    a = Node(Runtime.ephemeral(tmp_path / "a"))
    b = Node(Runtime.ephemeral(tmp_path / "b"))
    try:
        yield a, b
    finally:
        for node in (b, a):
            node.close()
            node.rt.close()


def _finished(node: Node, location: str, tmf_check: TmfCheck, api: str,
              model: str) -> dict[str, Any]:
    """The job at ``location`` once it is no longer Not Started / Running."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        answer = node.client.get(location)
        assert 200 == answer.status_code, answer.text
        seen.update(answer.json())
        return seen["status"] in ("Succeeded", "Failed")

    until(done)
    tmf_check(api, model, seen)
    return seen


def _catalog(node: Node) -> dict[str, str]:
    """A product specification and two offerings (one launched) over it."""
    post = node.client.post
    spec = post(f"{CATALOG}/productSpecification", json={"name": "IoT SIM spec"}).json()
    price = post(f"{CATALOG}/productOfferingPrice", json={
        "name": "monthly", "priceType": "recurring", "recurringChargePeriodType": "month",
        "price": {"unit": "EUR", "value": 2.5}, "lifecycleStatus": "Active"}).json()
    launched = post(f"{CATALOG}/productOffering", json={
        "name": "IoT SIM EU", "lifecycleStatus": "Launched",
        "productSpecification": {"id": spec["id"]},
        "productOfferingPrice": [{"id": price["id"]}]}).json()
    post(f"{CATALOG}/productOffering", json={"name": "draft", "lifecycleStatus": "In design"})
    return {"spec": spec["id"], "price": price["id"], "launched": launched["id"]}


def test_export_then_import_between_two_nodes(nodes: tuple[Node, Node], files: FileServer,
                                              tmf_check: TmfCheck) -> None:
    a, b = nodes
    ids = _catalog(a)
    made = a.client.post(f"{CATALOG}/exportJob", json={
        "url": f"{files.url}/a/offerings.json", "path": "productOffering",
        "query": "lifecycleStatus=Launched", "contentType": "application/json"})
    assert 201 == made.status_code, made.text
    tmf_check("620", "ExportJob", made.json())
    assert made.json()["status"] in ("Not Started", "Running", "Succeeded")
    assert made.headers["Location"] == made.json()["href"]
    job = _finished(a, made.headers["Location"], tmf_check, "620", "ExportJob")
    assert "Succeeded" == job["status"], job
    assert "completionDate" in job
    exported = json.loads(files.files["/a/offerings.json"])
    assert "application/json" == files.types["/a/offerings.json"]
    assert [ids["launched"]] == [o["id"] for o in exported]
    tmf_check("620", "ProductOffering", exported)
    assert exported[0]["href"].startswith(f"{a.url}{CATALOG}/productOffering/")

    # the whole product catalog of A (specification, price, offerings) into B
    whole = a.client.post(f"{CATALOG}/exportJob", json={"url": f"{files.url}/a/all.json"})
    assert 201 == whole.status_code, whole.text
    assert "Succeeded" == _finished(a, whole.headers["Location"], tmf_check, "620",
                                    "ExportJob")["status"]
    assert 4 == len(json.loads(files.files["/a/all.json"]))
    # offerings first in the file: their references resolve once the rest is in
    reordered = sorted(json.loads(files.files["/a/all.json"]),
                       key=lambda d: d["@type"] != "ProductOffering")
    files.files["/a/reordered.json"] = json.dumps(reordered).encode()
    imported = b.client.post(f"{CATALOG}/importJob", json={
        "url": f"{files.url}/a/reordered.json", "path": f"{CATALOG}/"})
    assert 201 == imported.status_code, imported.text
    tmf_check("620", "ImportJob", imported.json())
    job = _finished(b, imported.headers["Location"], tmf_check, "620", "ImportJob")
    assert "Succeeded" == job["status"], job
    offering = b.client.get(f"{CATALOG}/productOffering/{ids['launched']}")
    assert 200 == offering.status_code, offering.text
    tmf_check("620", "ProductOffering", offering.json())
    assert ids["spec"] == offering.json()["productSpecification"]["id"]
    assert offering.json()["href"].startswith(b.url)
    assert 200 == b.client.get(f"{CATALOG}/productSpecification/{ids['spec']}").status_code

    listing = b.client.get(f"{CATALOG}/importJob")
    assert "1" == listing.headers["X-Total-Count"] == listing.headers["X-Result-Count"]
    tmf_check("620", "ImportJob", listing.json())
    assert 204 == b.client.delete(imported.headers["Location"]).status_code
    assert 404 == b.client.get(imported.headers["Location"]).status_code


def test_service_catalog_jobs_and_a_bad_file_writes_nothing(
        nodes: tuple[Node, Node], files: FileServer, tmf_check: TmfCheck) -> None:
    a, b = nodes
    spec = a.client.post(f"{SERVICE_CATALOG}/serviceSpecification", json=service_spec(
        "SimBatch", "IoT SIMs", char("apnName"))).json()
    made = a.client.post(f"{SERVICE_CATALOG}/exportJob", json={
        "url": f"{files.url}/specs.json", "path": f"serviceSpecification/{spec['id']}"})
    assert 201 == made.status_code, made.text
    assert "Succeeded" == _finished(a, made.headers["Location"], tmf_check, "633",
                                    "ExportJob")["status"]
    exported = json.loads(files.files["/specs.json"])
    tmf_check("633", "ServiceSpecification", exported)
    assert [spec["id"]] == [s["id"] for s in exported]

    # a candidate naming a specification in neither the file nor B's store: nothing lands
    files.files["/bad.json"] = json.dumps([*exported, {
        "@type": "ServiceCandidate", "name": "c",
        "serviceSpecification": {"id": "nowhere"}}]).encode()
    bad = b.client.post(f"{SERVICE_CATALOG}/importJob", json={"url": f"{files.url}/bad.json"})
    assert 201 == bad.status_code, bad.text
    job = _finished(b, bad.headers["Location"], tmf_check, "633", "ImportJob")
    assert "Failed" == job["status"]
    assert "element 1" in job["errorLog"]
    assert "nowhere" in job["errorLog"]
    assert [] == b.client.get(f"{SERVICE_CATALOG}/serviceSpecification").json()

    good = b.client.post(f"{SERVICE_CATALOG}/importJob", json={
        "url": f"{files.url}/specs.json", "path": "serviceSpecification"})
    assert "Succeeded" == _finished(b, good.headers["Location"], tmf_check, "633",
                                    "ImportJob")["status"]
    copied = b.client.get(f"{SERVICE_CATALOG}/serviceSpecification/{spec['id']}").json()
    tmf_check("633", "ServiceSpecification", copied)
    assert spec["specCharacteristic"] == copied["specCharacteristic"]

    missing = b.client.post(f"{SERVICE_CATALOG}/importJob", json={
        "url": f"{files.url}/absent.json"})
    job = _finished(b, missing.headers["Location"], tmf_check, "633", "ImportJob")
    assert "Failed" == job["status"]
    assert "404" in job["errorLog"]


def test_bad_job_requests_are_tmf_errors(nodes: tuple[Node, Node], files: FileServer,
                                         tmf_check: TmfCheck) -> None:
    a, _ = nodes
    a.rt.tenants.create_tenant("acme", "Acme")
    viewer = {"Authorization": "Bearer " + a.rt.tenants.create_key(
        "tenant-viewer", "v", tenant_id="acme").secret}
    acme = {"Authorization": "Bearer " + a.rt.tenants.create_key(
        "tenant-admin", "a", tenant_id="acme").secret}
    url = f"{files.url}/x.json"
    refused = {
        "no url": ({}, 400),
        "not http": ({"url": "ftp://example.com/x.json"}, 400),
        "private address": ({"url": "http://10.1.2.3/x.json"}, 400),
        "server-owned status": ({"url": url, "status": "Succeeded"}, 400),
        "other format": ({"url": url, "contentType": "text/csv"}, 400),
        "unknown resource": ({"url": url, "path": "productOrder"}, 400),
        "bad query": ({"url": url, "query": "&&"}, 400),
    }
    for name, (body, status) in refused.items():
        answer = a.client.post(f"{CATALOG}/exportJob", json=body)
        assert status == answer.status_code, (name, answer.text)
        tmf_check("620", "Error", answer.json())
    assert 403 == a.client.post(f"{CATALOG}/importJob", json={"url": url},
                                headers=viewer).status_code
    assert 400 == a.client.post(f"{CATALOG}/importJob", json={
        "url": url, "path": "productOffering/one"}).status_code
    assert [] == a.client.get(f"{CATALOG}/exportJob").json()

    mine = a.client.post(f"{CATALOG}/exportJob", json={"url": url})
    assert 201 == mine.status_code
    other = a.client.get(mine.headers["Location"], headers=acme)
    assert 404 == other.status_code
    tmf_check("620", "Error", other.json())
    assert [] == a.client.get(f"{CATALOG}/exportJob", headers=acme).json()
    assert 404 == a.client.get(f"{SERVICE_CATALOG}/exportJob/"
                               f"{mine.json()['id']}").status_code


def test_an_accepted_job_survives_a_restart(tmp_path: Path, files: FileServer) -> None:
    """Accepted by a node that stops before running it; the next start runs it."""
    home = tmp_path / "node"
    rt = Runtime.ephemeral(home)
    rt.market_events.allowed_networks = LOOPBACK
    rt.market.create_item("productSpecification", None, {"name": "spec"}, "t")
    waiting = rt.market.jobs.create("productCatalog", "exportJob", None, True,
                                    {"url": f"{files.url}/late.json"}, "t", "http://a")
    crashed = rt.market.jobs.create("productCatalog", "exportJob", None, True,
                                    {"url": f"{files.url}/crashed.json"}, "t", "http://a")
    # a runner that claimed the second one and stopped: its lease is over
    rt.db.execute("UPDATE market_jobs SET status = 'Running', owner = 'gone', lease_until = 1"
                  " WHERE id = ?", (crashed.document["id"],))
    rt.close()

    again = Runtime.open(load_settings(env={}, home=home))
    try:
        again.market_events.allowed_networks = LOOPBACK
        assert "Not Started" == again.market.jobs.get(
            "productCatalog", "exportJob", waiting.document["id"]).status
        assert 2 == again.market.jobs.run_due()
        for job in (waiting, crashed):
            done = again.market.jobs.get("productCatalog", "exportJob", job.document["id"])
            assert "Succeeded" == done.status, done.document
        assert ["spec"] == [d["name"] for d in json.loads(files.files["/late.json"])]
        assert b"[" == files.files["/crashed.json"][:1]
        assert None is again.market.jobs.run(waiting.document["id"])  # nothing left to claim
    finally:
        again.close()


def test_jobs_on_sqlite_and_postgresql(runtime: Runtime, files: FileServer) -> None:
    """The job table and its claims on both stores: run, take over, list, delete."""
    rt = runtime
    rt.market_events.allowed_networks = LOOPBACK
    rt.tenants.create_tenant("acme", "Acme")
    rt.market.create_item("productSpecification", "acme", {"name": "acme spec"}, "t")
    rt.market.create_item("productSpecification", None, {"name": "public spec"}, "t")
    jobs = rt.market.jobs
    mine = jobs.create("productCatalog", "exportJob", "acme", False,
                       {"url": f"{files.url}/acme.json", "path": "productSpecification"},
                       "t", "http://a")
    assert "Succeeded" == jobs.run(mine.document["id"])
    assert None is jobs.run(mine.document["id"])
    assert ["acme spec", "public spec"] == sorted(
        d["name"] for d in json.loads(files.files["/acme.json"]))
    files.files["/in.json"] = json.dumps([{"@type": "ProductSpecification", "id": "p-1",
                                           "name": "imported"}]).encode()
    imported = jobs.create("productCatalog", "importJob", "acme", False,
                           {"url": f"{files.url}/in.json"}, "t", "http://a")
    rt.db.execute("UPDATE market_jobs SET status = 'Running', owner = 'gone', lease_until = 1"
                  " WHERE id = ?", (imported.document["id"],))
    assert 1 == jobs.run_due()
    assert "acme" == rt.market.get_item("productSpecification", "p-1").tenant_id
    assert [mine.document["id"]] == [
        j.document["id"] for j in jobs.list("productCatalog", "exportJob", "acme", False)]
    assert [] == jobs.list("productCatalog", "exportJob", "other", False)
    assert [] == jobs.list("serviceCatalog", "exportJob", None, True)
    done = jobs.get("productCatalog", "importJob", imported.document["id"])
    assert "Succeeded" == done.status
    jobs.delete(done, "t")
    with pytest.raises(NotFound):
        jobs.get("productCatalog", "importJob", imported.document["id"])
