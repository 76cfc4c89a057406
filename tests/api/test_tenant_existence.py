"""Another tenant's object answers exactly like a missing one, on every route.

The test walks the served OpenAPI document: every operation that names a
tenant-owned object (a path parameter such as ``iccid`` or ``tenant_id``, a
``tenant_id`` query parameter or body member) is called by tenant acme once
with globex's object and once with an identifier nothing has; both answers must
be equal (status, problem type, title, detail and members, the identifier
itself masked). A new route with an unclassified parameter fails the test until
it is added here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from simtrust.runtime import Runtime
from simtrust.subscriber import Imei, build_services
from tests.api.openapi_walk import operations
from tests.subscriber.conftest import K1, OPC1, iccid, imsi, spec

#: Path parameters that name a tenant-owned object.
OWNED = {"iccid", "imei", "tenant_id", "key_id", "event_id", "entry_id", "label"}
#: Path parameters of objects no tenant owns (ledger, DIDs, credentials, network data).
NOT_OWNED = {"message_id", "owner", "did", "list_id", "supiOrSuci", "address", "scope",
             "token",  # a settlement token on the ledger (consortium-wide)
             "contract",  # a contract on the ledger (consortium-wide)
             "report_id", "reporter",  # shared fraud reports on the ledger (consortium-wide)
             "tac",  # a device model's type allocation code (operator-only, no tenant's)
             # a TM Forum resource id, shared by four resource kinds; their tenant
             # isolation (hidden answers like missing) is in tests/market/test_tmf_api.py
             "id",
             # named inside the tenant the tenant_id query selects, or operator-only:
             "name", "username", "ref", "path",
    # an energy-market interval is a time, named inside the tenant the tenant_id query
    # selects (each tenant runs its own market); nothing of another tenant is addressed
    "interval_start",
    # a settlement period (YYYY-MM), likewise named inside the tenant tenant_id selects
    "period",
    # a certificate serial: same not-found error in code (pki.get_certificate); no
    # certificate can be issued here without an EST enrolment
    "serial",
    # a firmware campaign lives in the running LwM2M server's memory; another tenant's
    # answers like a missing one in code (fota._visible), tested in tests/devices/test_api.py
    "campaign_id",
    # an uploaded firmware package, addressed by its SHA-256 inside the tenant the
    # tenant_id query selects (one folder per tenant): another tenant's digest answers
    # like one never uploaded, tested in tests/devices/test_packages.py
    "digest",
    # an OID4VCI credential offer, fetched by reference by a wallet without a key
    # (OID4VCI §4.1.3): a random handle the operator hands out, owned by no tenant
    "offer_id",
    # an OpenID4VP presentation request: its relying party's outcome route answers
    # another tenant's like a missing one in code (OID4VP.result), tested in
    # tests/identity/test_oid4vc_errors.py; the wallet's routes are keyless by spec
    "request_id",
    # streams objects (a meter, a channel, a datum, an alert): another tenant's answers
    # like a missing one in code (api.routes.streams: one NotFound for both, passed to
    # check_tenant), tested in tests/streams/test_api.py; creating them needs signed
    # author frames and a device certificate, beyond this walker's world
    "meter", "channel_id", "datum_id", "alert_id",
    # a capability decision's receipt (an audit record id): answered only to an operator
    # or the key that asked for the decision, anyone else gets the missing answer in code
    # (api.routes.capability._own_decision), tested in tests/audit/test_receipts.py
    "receipt_id"}

#: Public by design: a CA's CRL is fetched by relying parties without a key.
PUBLIC = {("GET", "/v1/pki/cas/{label}/crl")}

SIM_CSV = "ICCID,IMSI,KI,OPC\n{iccid},{imsi},{k},{opc}\n"


def _sim(n: int, tenant: str) -> dict[str, Any]:
    return {"tenant_id": tenant, "iccid": iccid(n).value, "imsi": imsi(n).value,
            "k": K1.hex(), "opc": OPC1.hex()}


#: A valid request body for each write operation that carries a tenant-owned object.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v1/sims/{iccid}"): {"apn": None},
    ("POST", "/v1/sims/{iccid}/transition"): {"state": "active"},
    ("POST", "/v1/sims/{iccid}/disconnect"): {},
    ("POST", "/v1/sims/{iccid}/coa"): {"session_timeout": 60},
    ("PUT", "/v1/apns/{name}/access"): {"session_timeout": 60},
    ("PUT", "/v1/apns/{name}/tunnel"): {
        "name": "t1", "local_address": "192.0.2.1", "remote_address": "192.0.2.2",
        "local_id": "gw.example", "remote_id": "vpn.example",
        "enterprise_prefixes": ["172.16.0.0/24"], "psk_hex": "00" * 16},
    ("POST", "/v1/apns/{name}/users"): {"username": "u", "password": "p"},
    ("PUT", "/v1/policy/policies/{tenant_id}/{scope}"): {"rules": []},
    ("PUT", "/v1/policy/alerting/{tenant_id}"): {"webhook_url": None},
    ("PUT", "/v1/tenants/{tenant_id}/attach-policy"): {},
    ("PUT", "/v1/tenants/{tenant_id}/sim-allocation"): {"iccid_prefixes": ["8988299"]},
    ("PUT", "/v1/tenants/{tenant_id}/address-allocation"): {"networks": ["10.99.0.0/16"]},
    ("PUT", "/v1/pki/cas/{label}/profile"): {},
    ("POST", "/v1/pki/sims/{iccid}/revoke"): {},
    ("POST", "/v1/sims"): lambda t: _sim(50, t),
    ("POST", "/v1/device-groups"): lambda t: {"tenant_id": t, "name": "meters"},
    ("POST", "/v1/devices"): lambda t: {"tenant_id": t, "imei": "352099000000501"},
    ("POST", "/v1/apns"): lambda t: {"tenant_id": t, "name": "iot2"},
    ("POST", "/v1/blocklist"): lambda t: {"tenant_id": t, "type": "imei",
                                          "value": "352099000000519"},
    ("POST", "/v1/api-keys"): lambda t: {"tenant_id": t, "role": "tenant-viewer",
                                         "name": "probe"},
    ("POST", "/v1/policy/devices"): lambda t: {"tenant_id": t, "imsi": imsi(51).value},
    ("POST", "/v1/pki/cas"): lambda t: {"tenant_id": t, "label": "probe-ca"},
    ("POST", "/v1/meters"): lambda t: {"tenant_id": t, "channel": "00" * 32, "credential": {}},
    ("POST", "/v1/streams/channels"): lambda t: {"tenant_id": t, "announce": "AAAA"},
    ("PUT", "/v1/streams/policy"): lambda t: {"tenant_id": t, "weights": {"signature": 1}},
    ("POST", "/v1/lwm2m/devices/{iccid}/read"): {"path": "/3/0"},
    ("POST", "/v1/lwm2m/devices/{iccid}/write"): {"path": "/1/1/1", "values": {"/1/1/1": 60}},
    ("POST", "/v1/lwm2m/devices/{iccid}/execute"): {"path": "/3/0/4"},
    ("POST", "/v1/lwm2m/devices/{iccid}/read-composite"): {"paths": ["/3/0/3"]},
    ("POST", "/v1/lwm2m/devices/{iccid}/write-composite"): {"values": {"/1/1/1": 60}},
    ("POST", "/v1/fota/campaigns"): lambda t: {"tenant_id": t, "groups": [1], "version": "2",
                                               "package_uri": "https://fw.example/2.bin"},
    ("POST", "/v1/fota/config"): lambda t: {"tenant_id": t, "group_id": 1, "path": "/1/0",
                                            "values": {"/1/0/1": 60}},
    ("POST", "/v1/fraud/alerts/{event_id}/verdict"): {"verdict": "confirmed"},
    ("POST", "/v1/settlement/statements"): lambda t: {"tenant_id": t, "period": "2026-11",
                                                      "statements": []},
    ("POST", "/v1/energy/orders"): lambda t: {"tenant_id": t, "interval_start": 0,
                                              "meter": "m", "side": "buy", "wh": 1, "price": 1},
    ("POST", "/v1/energy/intervals/{interval_start}/clear"): lambda t: {"tenant_id": t},
    ("POST", "/v1/energy/intervals/{interval_start}/settle"): lambda t: {"tenant_id": t,
                                                                       "token_id": "ab"},
    ("POST", "/v1/energy/deposits"): lambda t: {"tenant_id": t, "meter": "m",
                                                "message_id": "ab" * 32},
    ("POST", "/v1/energy/withdrawals"): lambda t: {"tenant_id": t, "meter": "m",
                                                   "token_id": "ab", "amount": 1},
}
#: Raw (CSV) bodies of the import operations.
CSV_BODIES = {
    ("POST", "/v1/sims/import"): SIM_CSV.format(iccid=iccid(52).value, imsi=imsi(52).value,
                                                k=K1.hex(), opc=OPC1.hex()),
    ("POST", "/v1/blocklist/import"): "type,value\nimei,352099000000527\n",
}


@pytest.fixture
def world(sqlite_runtime: Runtime) -> dict[str, Any]:
    rt = sqlite_runtime
    rt.tenants.create_tenant("acme", "Acme")
    rt.tenants.create_tenant("globex", "Globex")
    acme = rt.tenants.create_key("tenant-admin", "acme", tenant_id="acme")
    globex_key = rt.tenants.create_key("tenant-admin", "globex", tenant_id="globex")
    services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
    inv = services.inventory
    inv.add_sim("globex", spec(1), actor="test")
    device = Imei("352099000000014")
    inv.add_device("globex", device, actor="test")
    services.blocklist.add_imei("352099000000022", actor="test", tenant_id="globex")
    entry = services.blocklist.entries("globex", include_global=False)[0]
    event = rt.audit.append(actor="test", action="probe", subject="sim:x", outcome="info",
                            tenant_id="globex")
    rt.bootstrap.cas.create_hosted("globex", "globex-ca", common_name="Globex CA",
                                   actor="test")
    services.close()
    return {
        "headers": {"Authorization": f"Bearer {acme.secret}"},
        # name -> (globex's, nobody's)
        "ids": {
            "iccid": (iccid(1).value, iccid(2).value),
            "imei": (device.value, "352099000000030"),
            "tenant_id": ("globex", "nosuch"),
            "key_id": (globex_key.key.id, "0123456789abcdef"),
            "event_id": (event.event_id, str(uuid.uuid4())),
            "entry_id": (str(entry.id), str(entry.id + 987_654)),
            "label": ("globex-ca", "nosuch-ca"),
        },
    }


def _mask(body: Any, ids: tuple[str, str]) -> Any:
    if isinstance(body, dict):
        return {k: _mask(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [_mask(v, ids) for v in body]
    if isinstance(body, str | int) and not isinstance(body, bool):
        text = str(body)
        for value in sorted(ids, key=len, reverse=True):
            text = text.replace(value, "<id>")
        return text
    return body


def _call(api: Any, method: str, path: str, op: dict[str, Any], owned: str, value: str,
          world: dict[str, Any]) -> Any:
    headers = world["headers"]
    url = path
    params: dict[str, str] = {}
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        if where == "path":
            filler = (value if name == owned else world["ids"][name][1] if name in OWNED
                      else "tenant" if name == "scope"
                      else "0" if param.get("schema", {}).get("type") == "integer" else "x")
            url = url.replace("{" + name + "}", filler)
        elif where == "query" and name == "tenant_id" and owned == "tenant_id":
            params[name] = value
        elif where == "query" and param.get("required"):
            params[name] = "x"  # a well-formed value; the tenant check comes first
    key = (method, path)
    if key in CSV_BODIES:
        return api.request(method, url, params=params, content=CSV_BODIES[key],
                           headers={**headers, "Content-Type": "text/csv"})
    body = BODIES.get(key)
    if callable(body):
        body = body(value)
    return api.request(method, url, params=params, json=body, headers=headers)


def _owned_inputs(op: dict[str, Any], method: str, path: str) -> set[str]:
    found = set()
    for param in op.get("parameters", []):
        if param["in"] == "path":
            assert param["name"] in OWNED | NOT_OWNED, f"classify {param['name']} of {path}"
            if param["name"] in OWNED:
                found.add(param["name"])
        elif param["in"] == "query" and param["name"] == "tenant_id":
            found.add("tenant_id")
    if (method, path) in BODIES and callable(BODIES[(method, path)]):
        found.add("tenant_id")
    return found


def test_other_tenants_objects_answer_like_missing_ones(
        api: Any, world: dict[str, Any]) -> None:
    doc = api.get("/openapi.json").json()
    checked = []
    for method, path, op in operations(doc):
        body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = body_schema.get("schema", {}).get("$ref", "")
        if ref:
            props = doc["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {})
            assert "tenant_id" not in props or (method, path) in BODIES, \
                f"give a body for {method} {path} (it names a tenant)"
        if (method, path) in PUBLIC:
            continue
        for owned in _owned_inputs(op, method, path):
            theirs, nobodys = world["ids"][owned]
            a = _call(api, method, path, op, owned, theirs, world)
            b = _call(api, method, path, op, owned, nobodys, world)
            masked = (theirs, nobodys)
            assert (b.status_code, _mask(b.json(), masked)) == \
                (a.status_code, _mask(a.json(), masked)), (method, path, owned)
            assert a.status_code in (403, 404), (method, path, owned, a.text)
            checked.append((method, path, owned))
    assert len(checked) >= 35, checked
