"""Shared gear of the market tests: the official TMF files as a checker, a catalog, SIM stock."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from simtrust.domain import Iccid, Imsi
from simtrust.runtime import Runtime
from simtrust.subscriber import OpKind, SimSecrets, SimSpec, SimState, luhn_check_digit

TMF_FILES = {
    "620": "TMF620-ProductCatalog-v4.1.0.swagger.json",
    "622": "TMF622-ProductOrdering-v4.0.0.swagger.json",
    "633": "TMF633-ServiceCatalog-v4.0.0.swagger.json",
    "637": "TMF637-ProductInventory-v4.0.0.swagger.json",
    "638": "TMF638-ServiceInventory-v4.0.0.swagger.json",
    "641": "TMF641-ServiceOrdering-v4.1.0.swagger.json",
}
SERVICE_CATALOG = "/tmf-api/serviceCatalogManagement/v4"
CATALOG = "/tmf-api/productCatalogManagement/v4"
ORDERING = "/tmf-api/productOrderingManagement/v4"
SERVICE_ORDERING = "/tmf-api/serviceOrdering/v4"
INVENTORY = "/tmf-api/productInventory/v4"
SERVICE_INVENTORY = "/tmf-api/serviceInventory/v4"
#: TS 35.208 test set 1 (K, OPc).
K1 = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC1 = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
TmfCheck = Callable[[str, str, Any], None]
#: Hub callbacks of the tests reach listeners on loopback (refused unless allowed).
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture(scope="session")
def tmf_check(shared_dir: Path) -> TmfCheck:
    """tmf_check(api, definition, body): body (or each element of a list) validates."""
    folder = shared_dir / "specs" / "tmf"
    docs = {api: json.loads((folder / name).read_text(encoding="utf-8"))
            for api, name in TMF_FILES.items()}
    cache: dict[tuple[str, str], Draft4Validator] = {}

    def run(api: str, definition: str, body: Any) -> None:
        key = (api, definition)
        if key not in cache:
            defs = docs[api]["definitions"]
            assert definition in defs, definition
            cache[key] = Draft4Validator({"$ref": f"#/definitions/{definition}",
                                          "definitions": defs},
                                         format_checker=Draft4Validator.FORMAT_CHECKER)
        for element in body if isinstance(body, list) else [body]:
            errors = sorted(cache[key].iter_errors(element), key=str)
            assert not errors, (definition, [e.message for e in errors[:3]])

    return run


def stock_iccid(n: int, issuer: str = "89882") -> Iccid:
    body = f"{issuer}{n:013d}"
    return Iccid(body + str(luhn_check_digit(body)))


def add_stock(rt: Runtime, count: int, *, tenant: str = "stock", plmn: str = "00101",
              first: int = 1) -> list[Iccid]:
    """``count`` SIMs in ``inventory`` state in the seller's stock tenant."""
    if tenant not in {t.id for t in rt.tenants.list_tenants()}:
        rt.tenants.create_tenant(tenant, "SIM stock")
    made = []
    for n in range(first, first + count):
        spec = SimSpec(stock_iccid(n), Imsi(f"{plmn}{n:010d}", 2),
                       SimSecrets(K1, OPC1, OpKind.OPC), state=SimState.INVENTORY)
        made.append(rt.subscriber.inventory.add_sim(tenant, spec, actor="test").iccid)
    return made


def char(name: str, *, default: Any = None, mandatory: bool = False,
         configurable: bool = True, value_type: str = "string") -> dict[str, Any]:
    """A TMF633 CharacteristicSpecification."""
    doc: dict[str, Any] = {"name": name, "valueType": value_type,
                           "minCardinality": 1 if mandatory else 0, "maxCardinality": 1,
                           "configurable": configurable}
    if default is not None:
        doc["characteristicValueSpecification"] = [
            {"value": default, "isDefault": True, "valueType": value_type}]
    return doc


def service_spec(function: str, name: str, *chars: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "lifecycleStatus": "Active", "version": "1.0",
            "targetEntitySchema": {"@type": function,
                                   "@schemaLocation": f"https://simtrust.dev/schemas/market/"
                                                      f"{function}.json"},
            "specCharacteristic": list(chars)}


def publish(api: Any, headers: dict[str, str], name: str, specs: list[dict[str, Any]],
            check: TmfCheck | None = None) -> dict[str, Any]:
    """Service specifications, a product specification over them and a launched offering."""
    refs = []
    for body in specs:
        made = api.post(f"{SERVICE_CATALOG}/serviceSpecification", json=body, headers=headers)
        assert 201 == made.status_code, made.text
        if check is not None:
            check("633", "ServiceSpecification", made.json())
        refs.append({"id": made.json()["id"], "name": body["name"]})
    product = api.post(f"{CATALOG}/productSpecification",
                       json={"name": name, "serviceSpecification": refs}, headers=headers)
    assert 201 == product.status_code, product.text
    offering = api.post(f"{CATALOG}/productOffering",
                        json={"name": name, "lifecycleStatus": "Launched", "isSellable": True,
                              "productSpecification": {"id": product.json()["id"]}},
                        headers=headers)
    assert 201 == offering.status_code, offering.text
    doc: dict[str, Any] = offering.json()
    return doc


def order_body(offering_id: str, quantity: int = 1, **chars: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "1", "action": "add", "quantity": quantity,
                            "productOffering": {"id": offering_id}}
    if chars:
        item["product"] = {"productCharacteristic": [{"name": k, "value": v}
                                                     for k, v in chars.items()]}
    return {"productOrderItem": [item]}


class Listener:
    """A real HTTP listener for TMF notifications; refuses the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.hosts: list[str] = []
        #: When set, every post is answered with a 307 redirect to this URL.
        self.redirect_to: str | None = None
        self.refused = 0
        self._fail = fail_first
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._cond:
                    outer.hosts.append(str(self.headers.get("Host")))
                    if outer.redirect_to is not None:
                        self.send_response(307)
                        self.send_header("Location", outer.redirect_to)
                    elif outer.refused < outer._fail:
                        outer.refused += 1
                        self.send_response(503)
                    else:
                        outer.events.append(json.loads(body))
                        outer._cond.notify_all()
                        self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/listener"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, found: Callable[[dict[str, Any]], bool],
                 timeout: float = 60.0) -> dict[str, Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: any(found(e) for e in self.events), timeout), \
                [e.get("eventType") for e in self.events]
            return next(e for e in self.events if found(e))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener(fail_first=1)
    yield server
    server.close()
