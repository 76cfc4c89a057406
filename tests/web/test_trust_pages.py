"""Dashboard pages of the trust layer: validator health and finality (a real one-validator
consortium node), settlement netting with its chart, marketplace orders, stream provenance
and issued credentials, each scoped to the signed-in tenant like the API."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simtrust.errors import InvalidInput
from simtrust.identity import PRE_AUTHORIZED_GRANT, key_proof
from simtrust.identity import Ed25519Signer as HolderSigner
from simtrust.ledger import Ed25519Signer
from simtrust.ledger.net import (
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    Testnet,
    generate_local_network,
)
from simtrust.runtime import Runtime
from simtrust.settlement import StatementStore
from simtrust.streams import Author
from simtrust.web import create_site
from tests.ledger.net.conftest import make_messages, wait_sync
from tests.web.fleet import Fleet, build

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Fleet, Path]]:
    home = tmp_path_factory.mktemp("web-trust")
    rt = Runtime.ephemeral(home / "home")
    try:
        yield rt, build(rt), home
    finally:
        rt.close()


def sign_in(app: object, key: str) -> tuple[TestClient, str]:
    client = TestClient(app)  # type: ignore[arg-type]
    form = client.get("/ui/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert token is not None
    page = client.post("/ui/login", data={"api_key": key, "login_csrf": token.group(1),
                                          "next": "/ui/sims"})
    assert 200 == page.status_code, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return client, found.group(1)


def test_validator_health_and_finality_on_a_real_node(tmp_path: Path) -> None:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        genesis, paths = generate_local_network(
            1, tmp_path / "net", consensus=ConsensusParams(min_round_interval_ms=0))
        node = ConsortiumNode(genesis, NodeKeys.load(paths[0]), rt.db)
        rt.ledger = node.ledger
        operator = rt.tenants.create_key("operator-admin", "noc").secret
        raws = make_messages(genesis.network, Ed25519Signer.generate(),
                             [genesis.ledger_genesis().id], 5)
        assert ["accepted"] * 5 == [r.status for r in node.submit(raws)]
        for i in range(8):
            node.step(1000.0 + i)
        status = node.status()
        assert 5 == status["finalized"]
        client, _csrf = sign_in(create_site(rt, validator=node.status), operator)
        page = client.get("/ui/ledger")
        assert 200 == page.status_code
        assert "This validator" in page.text
        assert f"<dd>{status['round']} / {status['last_decided_round']}</dd>" in page.text
        assert "Messages finalized per ledger round" in page.text
        assert "Round leaders" in page.text
        # Without a validator (simtrust serve) the page has the rounds but no validator part.
        plain, _ = sign_in(create_site(rt), operator)
        text = plain.get("/ui/ledger").text
        assert "This validator" not in text
        assert "Messages finalized per ledger round" in text
    finally:
        rt.close()


@pytest.mark.slow
def test_serve_shows_the_configured_validators_health(tmp_path: Path) -> None:
    """simtrust serve (no validator inside) asks each validator in ledger_validators for its
    status: a real validator process is in step with its finality chart, a listed address
    that does not answer is shown unreachable; without the setting the part is absent."""
    net = Testnet.create(tmp_path / "testnet", 1,
                         consensus=ConsensusParams(min_round_interval_ms=0))
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        net.up(timeout=300)
        node = net.client(0)
        try:
            raws = make_messages(net.network, Ed25519Signer.generate(), node.parents(), 5)
            assert ["accepted"] * 5 == [r["status"] for r in node.submit(raws)]
            wait_sync(lambda: node.status()["finalized"] >= 5, "5 messages finalized")

            def sampled() -> bool:  # the probe follows one message id in 8: send until one is
                if isinstance(node.status()["latency"].get("admit_to_apply"), dict):
                    return True
                node.submit(make_messages(net.network, Ed25519Signer.generate(),
                                          node.parents(), 8))
                return False

            wait_sync(sampled, "a sampled message's finality")
        finally:
            node.close()
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{dead.getsockname()[1]}"
        dead.close()
        info = net.nodes[0]
        rt.settings = replace(rt.settings, ledger_validators=(
            f"{info.api}={info.api_key_file}, {silent}={info.api_key_file}"))
        operator = rt.tenants.create_key("operator-admin", "noc").secret
        client, _csrf = sign_in(create_site(rt), operator)
        page = client.get("/ui/ledger")
        assert 200 == page.status_code
        text = page.text
        assert "1 of 2 validators answered" in text
        row = re.search(r"<tr><td>0 \(epoch \d+\)</td><td><code>" + re.escape(info.api)
                        + r"</code></td>(.*?)</tr>", text, re.S)
        assert row is not None, text
        assert "in step" in row.group(1)
        assert re.search(re.escape(silent) + r"</code></td><td colspan=\"5\">unreachable",
                         text)
        assert "Finality latency per validator" in text
        assert "This validator" not in text
        assert info.api_key_file.read_text().strip() not in text
    finally:
        net.down()
        rt.close()
    plain = Runtime.ephemeral(tmp_path / "plain")
    try:
        client, _ = sign_in(create_site(plain),
                            plain.tenants.create_key("operator-admin", "noc").secret)
        text = client.get("/ui/ledger").text
        assert 'id="validators"' not in text
        assert "Finality latency" not in text
    finally:
        plain.close()


def _statements() -> list[dict[str, object]]:
    return [
        {"payer": "A", "payee": "B", "currency": "EUR", "total_minor_units": 900},
        {"payer": "B", "payee": "C", "currency": "EUR", "total_minor_units": 500},
        {"payer": "C", "payee": "A", "currency": "EUR", "total_minor_units": 200},
    ]


def test_settlement_netting_form(env: tuple[Runtime, Fleet, Path]) -> None:
    rt, fleet, _home = env
    client, csrf = sign_in(create_site(rt), fleet.acme_admin)
    bad = client.post("/ui/settlement", data={"csrf": csrf, "statements": "[{oops"})
    assert 422 == bad.status_code
    assert 'id="statements-error"' in bad.text
    assert "not JSON" in bad.text
    assert "[{oops" in bad.text  # what was typed is kept
    same = client.post("/ui/settlement", data={"csrf": csrf, "statements": json.dumps(
        [{"payer": "A", "payee": "A", "currency": "EUR", "total_minor_units": 1}])})
    assert 422 == same.status_code
    assert "same party" in same.text
    unsigned = client.post("/ui/settlement", data={
        "csrf": csrf, "statements": json.dumps(_statements()), "signatures": "1"})
    assert 422 == unsigned.status_code
    assert "statement 0" in unsigned.text
    good = client.post("/ui/settlement", data={"csrf": csrf,
                                               "statements": json.dumps(_statements())})
    assert 200 == good.status_code, good.text
    # A owes 900 and is owed 200: net -700; B +900 -500 = +400; C +500 -200 = +300.
    rows = re.findall(r"<tr><td>([ABC])</td><td>([\d,]+)</td><td>([\d,]+)</td>"
                      r"<td>(-?[\d,]+)</td></tr>", good.text)
    assert [("A", "900", "200", "-700"), ("B", "500", "900", "400"),
            ("C", "200", "500", "300")] == rows
    assert "before and after netting" in good.text
    transfers = re.findall(r"<tr><td>([ABC])</td><td>([ABC])</td><td>([\d,]+)</td></tr>",
                           good.text)
    assert [("A", "B", "400"), ("A", "C", "300")] == transfers  # N-1 = 2 transfers
    forged = client.post("/ui/settlement", data={"csrf": "x", "statements": "[]"})
    assert 403 == forged.status_code


def test_stored_period_netted_from_the_store_and_scoped(env: tuple[Runtime, Fleet, Path]) -> None:
    """Statements stored under a period (form or API) are netted from the store; a tenant
    sees its own periods only; a bad period is refused next to its field, input kept."""
    rt, fleet, _home = env
    client, csrf = sign_in(create_site(rt), fleet.acme_admin)
    bad = client.post("/ui/settlement", data={"csrf": csrf, "period": "2026-13",
                                              "statements": json.dumps(_statements())})
    assert 422 == bad.status_code
    assert 'id="period-error"' in bad.text
    assert 'value="2026-13"' in bad.text
    assert "&#34;payer&#34;: &#34;A&#34;" in bad.text  # the statements typed are kept too
    assert [] == StatementStore(rt.db).periods("acme")
    stored = client.post("/ui/settlement", data={"csrf": csrf, "period": "2026-10",
                                                 "statements": json.dumps(_statements())},
                         follow_redirects=False)
    assert 303 == stored.status_code
    assert "/ui/settlement?period=2026-10" == stored.headers["location"]
    page = client.get("/ui/settlement?period=2026-10")
    assert 200 == page.status_code
    assert "2026-10: 3 stored statements, netted" in page.text
    rows = re.findall(r"<tr><td>([ABC])</td><td>([\d,]+)</td><td>([\d,]+)</td>"
                      r"<td>(-?[\d,]+)</td></tr>", page.text)
    assert [("A", "900", "200", "-700"), ("B", "500", "900", "400"),
            ("C", "200", "500", "300")] == rows
    # The API reads the same store: storing the same statements again adds nothing.
    api = TestClient(create_site(rt), headers={"Authorization": f"Bearer {fleet.acme_admin}"})
    again = api.post("/v1/settlement/statements", json={
        "period": "2026-10", "statements": _statements(), "require_signatures": False})
    assert (201, {"period": "2026-10", "stored": 0, "known": 3}) == (again.status_code,
                                                                      again.json())
    netted = api.get("/v1/settlement/statements/2026-10").json()
    assert 3 == len(netted["statements"])
    assert {"A": -700, "B": 400, "C": 300} == netted["netting"]["currencies"]["EUR"]["positions"]
    # Another tenant: no periods, the period answers like a missing one, API likewise.
    globex, _ = sign_in(create_site(rt), fleet.globex_admin)
    other = globex.get("/ui/settlement")
    assert "2026-10" not in other.text
    assert 404 == globex.get("/ui/settlement?period=2026-10").status_code
    globex_api = TestClient(create_site(rt),
                            headers={"Authorization": f"Bearer {fleet.globex_admin}"})
    assert {"periods": []} == globex_api.get("/v1/settlement/statements").json()
    assert [] == globex_api.get("/v1/settlement/statements/2026-10").json()["statements"]
    assert 404 == globex_api.get("/v1/settlement/statements?tenant_id=acme").status_code
    # A viewer may net but not store.
    viewer, vcsrf = sign_in(create_site(rt), fleet.acme_viewer)
    refused = viewer.post("/ui/settlement", data={"csrf": vcsrf, "period": "2026-11",
                                                  "statements": json.dumps(_statements())})
    assert 422 == refused.status_code
    assert 'id="period-error"' in refused.text
    assert 403 == TestClient(create_site(rt), headers={
        "Authorization": f"Bearer {fleet.acme_viewer}"}).post(
        "/v1/settlement/statements",
        json={"period": "2026-11", "statements": _statements()}).status_code


def test_statement_store_on_both_stores(runtime: Runtime) -> None:
    """settlement migration 1 on SQLite and PostgreSQL: store, dedupe, periods, bad input."""
    store = StatementStore(runtime.db)
    now = runtime.clock()
    assert {"stored": 3, "known": 0} == store.put(_statements(), period="2026-09",
                                                  tenant_id=None, require_signatures=False,
                                                  now=now)
    assert {"stored": 0, "known": 3} == store.put(_statements(), period="2026-09",
                                                  tenant_id=None, require_signatures=False,
                                                  now=now)
    [period] = store.periods(None)
    assert ("2026-09", 3, ["EUR"], 3) == (period["period"], period["statements"],
                                          period["currencies"], period["parties"])
    assert _statements() == sorted(store.statements("2026-09", None),
                                   key=lambda s: -int(str(s["total_minor_units"])))
    for bad_period in ("2026-9", "2026-00", "26-09", ""):
        with pytest.raises(InvalidInput, match="YYYY-MM"):
            store.put(_statements(), period=bad_period, tenant_id=None,
                      require_signatures=False, now=now)
    with pytest.raises(InvalidInput, match="statement 0"):
        store.put(_statements(), period="2026-09", tenant_id=None, require_signatures=True,
                  now=now)


def test_market_orders_are_scoped(env: tuple[Runtime, Fleet, Path]) -> None:
    rt, fleet, _home = env
    market = rt.market
    offering = market.create_item("productOffering", None,
                                  {"name": "IoT 1 GB", "lifecycleStatus": "Launched"}, "test")
    order = market.create_order("acme", {"productOrderItem": [
        {"id": "a", "action": "add", "productOffering": {"id": offering.document["id"]}}]},
        "test")
    oid = order.document["id"]
    acme, _ = sign_in(create_site(rt), fleet.acme_viewer)
    page = acme.get("/ui/market")
    assert 200 == page.status_code
    assert oid in page.text
    assert "Product orders by state" in page.text
    globex, _ = sign_in(create_site(rt), fleet.globex_admin)
    assert oid not in globex.get("/ui/market").text
    operator, _ = sign_in(create_site(rt), fleet.operator)
    assert oid in operator.get("/ui/market").text


def test_stream_provenance_picture_and_isolation(env: tuple[Runtime, Fleet, Path]) -> None:
    rt, fleet, _home = env
    streams = rt.streams
    author = Author(Ed25519Signer.generate(), lambda: 1)
    channel = streams.open_channel("acme", author.announce.to_bytes(), label="meter 7",
                                   actor="test")["id"]
    first = streams.publish(channel, author.publish(b"reading 1").to_bytes(), actor="test")
    second = streams.publish(channel, author.publish(b"reading 2").to_bytes(), actor="test")
    derived = streams.derive("acme", [first["message_id"], second["message_id"]],
                             label="daily total", actor="test")["datum"]
    acme, _ = sign_in(create_site(rt), fleet.acme_viewer)
    listing = acme.get("/ui/streams")
    assert 200 == listing.status_code
    assert "meter 7" in listing.text
    assert f"/ui/provenance/{derived}" in listing.text
    page = acme.get(f"/ui/provenance/{derived}")
    assert 200 == page.status_code
    assert "<svg" in page.text
    assert first["message_id"][:24] in page.text
    assert "signature: holds" in page.text
    globex, _ = sign_in(create_site(rt), fleet.globex_admin)
    assert "meter 7" not in globex.get("/ui/streams").text
    hidden = globex.get(f"/ui/provenance/{derived}")
    missing = globex.get("/ui/provenance/derived-" + "0" * 32)
    assert 404 == hidden.status_code == missing.status_code
    # Another tenant's datum answers exactly like a missing one.
    assert hidden.text.replace(derived, "ID") == missing.text.replace("derived-" + "0" * 32, "ID")


def _credential(uuid: str) -> dict[str, object]:
    return {"@context": ["https://www.w3.org/ns/credentials/v2",
                         "https://www.w3.org/ns/credentials/examples/v2"],
            "id": f"urn:uuid:{uuid}", "type": ["VerifiableCredential", "DeviceCertificate"],
            "credentialSubject": {"id": "did:example:meter-9"}}


def test_issued_credentials_carry_their_tenant(env: tuple[Runtime, Fleet, Path]) -> None:
    """A credential issued for a tenant is listed to that tenant only, on the page and in the
    API's audit trail; VC-API and OpenID4VCI issuance both record the tenant."""
    rt, fleet, _home = env
    api = TestClient(create_site(rt), headers={"Authorization": f"Bearer {fleet.operator}"})
    acme_id = "5b1a0e0c-8b0e-4a7e-9d7a-2f3c4e5d6f70"
    globex_id = "6c2b1f1d-9c1f-4b8f-8e8b-3a4d5e6f7a81"
    issued = api.post("/credentials/issue", json={
        "credential": _credential(acme_id), "tenantId": "acme",
        "options": {"credentialStatus": {"type": "BitstringStatusListEntry"}}})
    assert 201 == issued.status_code, issued.text
    assert 201 == api.post("/credentials/issue", json={
        "credential": _credential(globex_id), "tenantId": "globex"}).status_code
    unknown = api.post("/credentials/issue", json={"credential": _credential(globex_id),
                                                   "tenantId": "nobody"})
    assert (404, "application/problem+json") == (unknown.status_code,
                                                 unknown.headers["content-type"])
    # OpenID4VCI: the offer names the tenant; the wallet's credential is recorded under it.
    offer = api.post("/oid4vci/offers", json={
        "credential_configuration_id": "DeviceCredential", "tenantId": "acme",
        "claims": {"imei": "490154203237518", "model": "meter-x1"}})
    assert 201 == offer.status_code, offer.text
    code = offer.json()["credentialOffer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    wallet = TestClient(create_site(rt))
    access = wallet.post("/oauth2/token", data={
        "grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code}).json()["access_token"]
    meta = wallet.get("/.well-known/openid-credential-issuer").json()
    nonce = wallet.post("/oid4vci/nonce").json()["c_nonce"]
    proof = key_proof(HolderSigner.generate(), issuer_url=meta["credential_issuer"],
                      nonce=nonce, now=rt.identity.now())
    got = wallet.post("/oid4vci/credential", headers={"Authorization": f"Bearer {access}"},
                      json={"credential_configuration_id": "DeviceCredential",
                            "proofs": {"jwt": [proof]}})
    assert 200 == got.status_code, got.text
    wallet_id = got.json()["credentials"][0]["credential"]["id"]

    operator, _ = sign_in(create_site(rt), fleet.operator)
    page = operator.get("/ui/credentials")
    assert 200 == page.status_code
    assert {acme_id, globex_id} <= set(re.findall(r"urn:uuid:([0-9a-f-]{36})", page.text))
    assert "DeviceCertificate" in page.text
    assert "Status-list entries" in page.text
    acme, _ = sign_in(create_site(rt), fleet.acme_viewer)
    text = acme.get("/ui/credentials").text
    assert f"urn:uuid:{acme_id}" in text
    assert wallet_id in text
    assert globex_id not in text
    assert "Status-list entries" in text  # the revocable acme credential's entry, only it
    entries = text[text.index("Status-list entries"):]
    assert f"urn:uuid:{acme_id}" in entries
    globex, _ = sign_in(create_site(rt), fleet.globex_admin)
    text = globex.get("/ui/credentials").text
    assert globex_id in text
    assert acme_id not in text
    assert wallet_id not in text
    assert "Status-list entries" not in text  # globex's credential holds no status entry
    # The API answers the same: a tenant's audit trail has its own issuances only.
    for key, mine, theirs in ((fleet.acme_viewer, acme_id, globex_id),
                              (fleet.globex_admin, globex_id, acme_id)):
        tenant_api = TestClient(create_site(rt), headers={"Authorization": f"Bearer {key}"})
        events = tenant_api.get("/v1/audit/events?action=credential.issue").json()
        subjects = {e["subject"] for e in (events["events"] if isinstance(events, dict)
                                           else events)}
        assert {f"urn:uuid:{mine}"} == subjects
        assert f"urn:uuid:{theirs}" not in subjects


def test_offer_tenant_is_stored_on_both_stores(runtime: Runtime) -> None:
    """identity migration 6: an OpenID4VCI offer keeps the tenant it was made for."""
    service = runtime.identity
    made = service.oid4vci.create_offer("DeviceCredential", {"model": "meter-x1"},
                                        now=service.now(), tenant_id="acme")
    row = runtime.db.query_one(
        "SELECT tenant_id FROM identity_oid4vci_offer WHERE offer_id = ?", (made["offerId"],))
    assert ("acme",) == tuple(row or ())
    assert (None, None) == service.oid4vci.issued_for("no such token")
