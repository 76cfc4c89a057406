"""The dashboard over HTTP (no browser): sessions, CSRF, tenant scoping, fleet, bulk, forms."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simtrust.audit.anchoring import anchor_pending
from simtrust.domain import Iccid
from simtrust.errors import AuthenticationRequired, PermissionDenied
from simtrust.runtime import Runtime
from simtrust.subscriber import luhn_check_digit
from simtrust.web import FleetQuery, SessionStore, create_site, parse_filter
from tests.web.fleet import MSISDN, Fleet, add_contract, build

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Fleet]]:
    rt = Runtime.ephemeral(tmp_path_factory.mktemp("web") / "home")
    try:
        fleet = build(rt)
        add_contract(rt)
        yield rt, fleet
    finally:
        rt.close()


def sign_in(rt: Runtime, key: str, base_url: str = "http://testserver") -> tuple[TestClient, str]:
    client = TestClient(create_site(rt), base_url=base_url)
    form = client.get("/ui/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert token is not None
    page = client.post("/ui/login", data={"api_key": key, "login_csrf": token.group(1),
                                          "next": "/ui/sims"})
    assert 200 == page.status_code, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return client, found.group(1)


def api(rt: Runtime, key: str) -> TestClient:
    return TestClient(create_site(rt), headers={"Authorization": f"Bearer {key}"})


def wait_job(client: TestClient, url: str) -> dict[str, object]:
    for _ in range(500):
        progress = client.get(url + "/progress").json()
        if progress["status"] != "running":
            return dict(progress)
        time.sleep(0.02)
    raise AssertionError("bulk job did not finish")


def test_pages_need_a_session(env: tuple[Runtime, Fleet]) -> None:
    rt, _fleet = env
    client = TestClient(create_site(rt))
    page = client.get("/ui/sims?q=8988", follow_redirects=False)
    assert 303 == page.status_code
    assert "/ui/login?next=%2Fui%2Fsims%3Fq%3D8988" == page.headers["location"]


def test_cookie_attributes_plain_and_tls(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    for base, name, secure in (("http://testserver", "simtrust_session", False),
                               ("https://testserver", "__Host-simtrust_session", True)):
        client = TestClient(create_site(rt), base_url=base)
        token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/ui/login").text)
        assert token is not None
        answer = client.post("/ui/login", data={"api_key": fleet.acme_admin,
                                                "login_csrf": token.group(1)},
                             follow_redirects=False)
        cookie = next(v for k, v in answer.headers.multi_items()
                      if k == "set-cookie" and v.startswith(name + "="))
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert secure == ("Secure" in cookie)
        assert fleet.acme_admin not in cookie


def test_wrong_key_and_missing_login_token(env: tuple[Runtime, Fleet]) -> None:
    rt, _fleet = env
    client = TestClient(create_site(rt))
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert token is not None
    wrong = client.post("/ui/login", data={"api_key": "stk_0000000000000000_" + "A" * 43,
                                           "login_csrf": token.group(1)})
    assert 401 == wrong.status_code
    assert "not valid" in wrong.text
    assert 'id="api_key-error"' in wrong.text
    forged = TestClient(create_site(rt)).post("/ui/login", data={"api_key": "x",
                                                                 "login_csrf": "guess"})
    assert 403 == forged.status_code


def test_idle_timeout_and_revoked_key(env: tuple[Runtime, Fleet]) -> None:
    rt, _fleet = env
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = SessionStore(rt.db, rt.tenants, lambda: now[0], timedelta(minutes=30))
    key = rt.tenants.create_key("tenant-viewer", "short-lived", "acme")
    session = store.sign_in(key.secret)
    now[0] += timedelta(minutes=29)
    assert session.key_id == store.get(session.sid).key_id  # activity restarts the clock
    now[0] += timedelta(minutes=31)
    with pytest.raises(AuthenticationRequired):
        store.get(session.sid)
    second = store.sign_in(key.secret)
    rt.tenants.revoke_key(key.key.id)
    with pytest.raises(AuthenticationRequired):
        store.get(second.sid)
    with pytest.raises(PermissionDenied):
        second.check_csrf("not the token")
    assert "csrf" not in repr(second).lower()
    assert second.sid not in repr(second)


def test_state_change_without_the_csrf_token_is_refused(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, _csrf = sign_in(rt, fleet.acme_admin)
    target = fleet.acme_iccids[20]
    for data in ({}, {"csrf": "forged"}):
        answer = client.post("/ui/sims/bulk", data={**data, "action": "suspend",
                                                    "scope": "selection", "iccid": [target],
                                                    "confirm": "yes"})
        assert 403 == answer.status_code
        assert "CSRF" in answer.text
    answer = client.post(f"/ui/sims/{target}/state", data={"state": "suspended"})
    assert 403 == answer.status_code
    assert "active" == api(rt, fleet.operator).get(f"/v1/sims/{target}").json()["state"]


def test_tenant_sees_only_its_own(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, _csrf = sign_in(rt, fleet.globex_admin)
    listing = client.get("/ui/sims").text
    assert fleet.globex_iccids[0] in listing
    assert not any(i in listing for i in fleet.acme_iccids)
    # Searching another tenant's identifiers, or naming its tenant, finds nothing.
    link = f'href="/ui/sims/{fleet.acme_iccids[3]}"'
    assert link not in client.get(f"/ui/sims?q={fleet.acme_iccids[3]}").text
    assert link not in client.get("/ui/sims?tenant=acme").text
    assert link not in client.get("/ui/sims?q=pump").text
    assert link not in client.get("/ui/sims?q=35693803").text
    other = client.get(f"/ui/sims/{fleet.acme_iccids[0]}")
    absent = "898829900000000000" + str(luhn_check_digit("898829900000000000"))
    missing = client.get(f"/ui/sims/{absent}")
    assert 404 == other.status_code == missing.status_code
    assert (other.text.replace(fleet.acme_iccids[0], "X")
            == missing.text.replace(absent, "X"))
    assert 404 == client.get(f"/ui/alerts/{fleet.alert_id}").status_code
    assert "detect.alert.scan" not in client.get("/ui/alerts").text
    export = client.get("/ui/sims/export.csv").text
    assert 1 + len(fleet.globex_iccids) == len(export.strip().splitlines())
    assert 404 == client.get(f"/ui/audit/{fleet.alert_id}/proof.json").status_code


def test_search_fields_and_keyset_pages(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, _csrf = sign_in(rt, fleet.operator)
    bound = fleet.acme_iccids[3]
    assert bound in client.get("/ui/sims?q=35693803").text  # IMEI prefix
    label = client.get("/ui/sims?q=pump HOUSE").text  # device label, any case
    assert bound in label
    assert fleet.acme_iccids[4] not in label
    assert bound in client.get("/ui/sims?q=4917012").text  # MSISDN from accounting
    imsi = client.get("/ui/sims?q=001012000000012").text
    assert fleet.globex_iccids[12] in imsi
    seen: list[str] = []
    url: str | None = "/ui/sims?sort=imsi&dir=desc"
    while url:
        page = client.get(url).text
        seen += re.findall(r'<a href="/ui/sims/(\d+)">', page)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert len(seen) == len(set(seen)) == len(fleet.acme_iccids) + len(fleet.globex_iccids)
    assert seen[0] == fleet.globex_iccids[-1]  # IMSI descending: globex's highest first


def test_filter_validation_keeps_input(env: tuple[Runtime, Fleet]) -> None:
    f, errors = parse_filter({"q": "x" * 70, "state": "gone", "group": "-1", "sort": "name",
                              "online": "maybe", "tenant": "globex"}, "acme", False)
    assert {"q", "state", "group", "sort", "online"} == set(errors)
    assert "acme" == f.tenant_id  # a tenant cannot widen its own scope
    rt, fleet = env
    client, _csrf = sign_in(rt, fleet.acme_admin)
    page = client.get("/ui/sims?q=abc&group=zz")
    assert 'id="group-error"' in page.text
    assert 'value="abc"' in page.text


def test_bulk_suspend_by_filter_then_resume_selection(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.acme_admin)
    form = {"csrf": csrf, "action": "suspend", "scope": "filter", "f_q": "89882110000000001"}
    confirm = client.post("/ui/sims/bulk", data=form)
    assert "<strong>10</strong> SIMs" in confirm.text  # ICCIDs ...0010 to ...0019
    started = client.post("/ui/sims/bulk", data={**form, "confirm": "yes"})
    job = wait_job(client, str(started.url))
    assert {"status": "done", "changed": 10, "skipped": 0} == {
        k: job[k] for k in ("status", "changed", "skipped")}
    suspended = api(rt, fleet.acme_admin).get("/v1/sims?state=suspended").json()["sims"]
    assert sorted(fleet.acme_iccids[10:20]) == sorted(s["iccid"] for s in suspended)
    back = client.post("/ui/sims/bulk", data={"csrf": csrf, "action": "resume",
                                              "scope": "selection", "confirm": "yes",
                                              "iccid": [*fleet.acme_iccids[10:20],
                                                        fleet.globex_iccids[0]]})
    job = wait_job(client, str(back.url))
    assert 10 == job["changed"]
    assert [{"iccid": fleet.globex_iccids[0], "reason": "no such SIM"}] == job["reasons"]
    assert "active" == api(rt, fleet.operator).get(
        f"/v1/sims/{fleet.globex_iccids[0]}").json()["state"]
    records = api(rt, fleet.operator).get(
        f"/v1/audit/events?subject=sim:{fleet.acme_iccids[10]}&action=sim.transition").json()
    assert ["active->suspended", "suspended->active"] == [
        e["details"]["from"] + "->" + e["details"]["to"] for e in records["events"][-2:]]


def test_bulk_move_group_and_viewer_refused(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.acme_admin)
    started = client.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "move", "group_id": str(fleet.group_id), "scope": "selection",
        "confirm": "yes", "iccid": fleet.acme_iccids[:2]})
    assert 2 == wait_job(client, str(started.url))["changed"]
    assert fleet.group_id == api(rt, fleet.acme_admin).get(
        f"/v1/sims/{fleet.acme_iccids[0]}").json()["group_id"]
    outsider, ocsrf = sign_in(rt, fleet.globex_admin)
    refused = outsider.post("/ui/sims/bulk", data={
        "csrf": ocsrf, "action": "move", "group_id": str(fleet.group_id), "scope": "selection",
        "iccid": fleet.globex_iccids[:1]})
    assert 422 == refused.status_code
    assert f"no device group {fleet.group_id}" in refused.text
    assert 404 == outsider.get(started.url).status_code  # another key's job
    viewer, vcsrf = sign_in(rt, fleet.acme_viewer)
    assert 403 == viewer.post("/ui/sims/bulk", data={
        "csrf": vcsrf, "action": "suspend", "scope": "selection",
        "iccid": fleet.acme_iccids[:1]}).status_code


def test_bulk_apply_policy_sets_binding_and_roaming(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.acme_admin)
    targets = fleet.acme_iccids[20:23]
    bad = client.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "policy", "scope": "selection", "binding_mode": "glued",
        "roaming": "12x", "iccid": targets})
    assert 422 == bad.status_code
    assert 'id="binding_mode-error"' in bad.text
    assert 'id="roaming-error"' in bad.text
    nothing = client.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "policy", "scope": "selection", "iccid": targets})
    assert 422 == nothing.status_code
    assert "choose a binding mode" in nothing.text
    confirm = client.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "policy", "scope": "selection", "binding_mode": "exact-pair",
        "roaming": "262, 208-01", "iccid": targets + fleet.globex_iccids[:1]})
    assert 200 == confirm.status_code
    assert "<strong>4</strong>" in confirm.text
    started = client.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "policy", "scope": "selection", "binding_mode": "exact-pair",
        "roaming": "262, 208-01", "confirm": "yes",
        "iccid": targets + fleet.globex_iccids[:1]})
    done = wait_job(client, str(started.url))
    assert (3, 1) == (done["changed"], done["skipped"])  # another tenant's SIM: "no such SIM"
    for iccid in targets:
        sim = api(rt, fleet.acme_admin).get(f"/v1/sims/{iccid}").json()
        assert "exact-pair" == sim["binding_mode"]
        assert ["20801", "262"] == sorted(sim["roaming"])
    assert "exact-pair" != api(rt, fleet.globex_admin).get(
        f"/v1/sims/{fleet.globex_iccids[0]}").json()["binding_mode"]
    audited = rt.audit.recent(subject=f"sim:{targets[0]}", action="sim.update", limit=5)
    assert audited
    assert audited[0].details["binding_mode"] == "exact-pair"


def test_import_reports_lines_and_imports(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.operator)
    iccid = "898823300000000000" + str(luhn_check_digit("898823300000000000"))
    bad = f"ICCID,IMSI,KI,OPC\n{iccid},001013000000000,zz,00\n"
    page = client.post("/ui/import", data={"csrf": csrf, "tenant_id": "acme", "text": bad})
    assert 422 == page.status_code
    assert re.search(r"<td>2</td><td>k</td><td>K must be 128-bit hex", page.text)
    assert iccid in page.text  # what was typed is kept
    missing = client.post("/ui/import", data={"csrf": csrf, "text": bad})
    assert 'id="tenant_id-error"' in missing.text
    good = (f"ICCID,IMSI,KI,OPC\n{iccid},001013000000000,"
            + "33" * 16 + "," + "44" * 16 + "\n")
    done = client.post("/ui/import", files={"file": ("sims.csv", good.encode(), "text/csv")},
                       data={"csrf": csrf, "tenant_id": "acme"})
    assert "Imported 1 SIMs" in done.text


def test_blocklist_form_validation_add_and_remove(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.acme_admin)
    bad = client.post("/ui/blocklist", data={"csrf": csrf, "type": "imei",
                                             "value": "356938035643801", "reason": "stolen"})
    assert 422 == bad.status_code
    assert 'id="value-error"' in bad.text
    assert 'value="356938035643801"' in bad.text
    assert 'value="stolen"' in bad.text
    client.post("/ui/blocklist", data={"csrf": csrf, "type": "tac", "value": "35693803",
                                       "reason": "recalled model"})
    entries = api(rt, fleet.acme_admin).get("/v1/blocklist").json()["entries"]
    entry = next(e for e in entries if e["reason"] == "recalled model")
    assert "acme" == entry["tenant_id"]
    outsider, ocsrf = sign_in(rt, fleet.globex_admin)
    assert "recalled model" not in outsider.get("/ui/blocklist").text
    assert 404 == outsider.post(f"/ui/blocklist/{entry['id']}/delete",
                                data={"csrf": ocsrf}).status_code
    client.post(f"/ui/blocklist/{entry['id']}/delete", data={"csrf": csrf})
    assert "recalled model" not in client.get("/ui/blocklist").text


def test_alert_evidence_sim_page_and_audit_proof(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    client, _csrf = sign_in(rt, fleet.acme_viewer)
    alert = client.get(f"/ui/alerts/{fleet.alert_id}").text
    assert "times_threshold" in alert
    assert "10.3" in alert
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in alert
    assert "<title>" in alert
    sim = client.get(f"/ui/sims/{fleet.acme_iccids[5]}").text
    assert f"/ui/alerts/{fleet.alert_id}" in sim
    bound = client.get(f"/ui/sims/{fleet.acme_iccids[3]}").text
    assert "Bytes per day from RADIUS accounting" in bound
    assert "35693803564380" in bound
    assert "exact" in bound
    anchor_pending(rt.audit, rt.ledger)
    proof = client.get(f"/ui/audit/{fleet.alert_id}/proof.json")
    assert 200 == proof.status_code
    assert "attachment" in proof.headers["content-disposition"]
    assert proof.json()["event"]["event_id"] == fleet.alert_id
    assert "Verify the whole chain" not in client.get("/ui/audit").text
    operator, ocsrf = sign_in(rt, fleet.operator)
    verified = operator.post("/ui/audit/verify", data={"csrf": ocsrf})
    assert "chain correctly" in verified.text
    assert fleet.alert_id in operator.get("/ui/alerts?kind=detect.alert.scan").text
    assert fleet.alert_id not in operator.get("/ui/alerts?kind=policy.alert.volume").text
    assert "Recent tangle" in operator.get("/ui/ledger").text


def test_logout_ends_the_session(env: tuple[Runtime, Fleet], tmp_path: Path) -> None:
    rt, fleet = env
    client, csrf = sign_in(rt, fleet.acme_admin)
    sid = client.cookies.get("simtrust_session")
    out = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert 303 == out.status_code
    again = TestClient(create_site(rt), cookies={"simtrust_session": str(sid)})
    assert 303 == again.get("/ui/sims", follow_redirects=False).status_code


def test_fleet_queries_on_both_stores(runtime: Runtime) -> None:
    """The read model's SQL (ranges, row-value IN, substr) runs alike on SQLite and PostgreSQL."""
    fleet = build(runtime, per_tenant=12)
    query = FleetQuery(runtime.db)

    def found(params: dict[str, str], tenant: str | None = None) -> list[str]:
        f, errors = parse_filter(params, tenant, tenant is None)
        assert {} == errors
        return [r.iccid for r in query.page(f, limit=100)[0]]

    assert [fleet.acme_iccids[3]] == found({"q": "pump house"})
    assert [fleet.acme_iccids[3]] == found({"q": "3569380356"})
    assert [fleet.acme_iccids[5]] == found({"alerts": "1"})
    assert sorted(fleet.globex_iccids) == found({"q": "0010120"})
    assert [] == found({"q": "0010120"}, "acme")
    rows, cursor = query.page(parse_filter({"sort": "imsi", "dir": "desc"}, None, True)[0],
                              limit=5)
    assert cursor == rows[-1].imsi
    assert 24 == query.count(parse_filter({"state": "active"}, None, True)[0])
    assert 12 == query.count(parse_filter({"q": "8988222"}, None, True)[0])
    # Trailing digits (the end of the number printed on a card), through the tail indexes.
    target = fleet.globex_iccids[7]
    assert [target] == found({"q": target[-9:]})
    assert [target] == found({"q": target[-9:]}, "globex")
    assert [] == found({"q": target[-9:]}, "acme")  # another tenant's SIM is not found
    imsi = runtime.subscriber.inventory.get_sim(Iccid(target)).imsi.value
    assert [target] == found({"q": imsi[-10:]})
    imei_end = "64380" + str(luhn_check_digit("35693803564380"))
    assert [fleet.acme_iccids[3]] == found({"q": imei_end}, "acme")  # end of the bound IMEI
    assert [fleet.acme_iccids[3]] == found({"q": MSISDN[-5:]}, "acme")
    four = sorted(i for i in fleet.acme_iccids + fleet.globex_iccids if i.endswith(target[-4:]))
    assert set(four) <= set(found({"q": target[-4:]}))
    assert target not in found({"q": target[-3:]})  # under four digits: only prefixes


def test_policy_actions_and_trust_pages_are_scoped(env: tuple[Runtime, Fleet]) -> None:
    rt, fleet = env
    acme, _ = sign_in(rt, fleet.acme_viewer)
    globex, _ = sign_in(rt, fleet.globex_admin)
    operator, _ = sign_in(rt, fleet.operator)
    assert "destination budget exceeded" in acme.get("/ui/policy").text
    assert "destination budget exceeded" not in globex.get("/ui/policy").text
    for client in (acme, globex, operator):
        page = client.get("/ui/trust")
        assert 200 == page.status_code
        assert ("Credentials issued" in page.text) == (client is operator)
        assert "ra-acme-globex" in page.text


def test_sessions_on_both_stores(runtime: Runtime) -> None:
    """Sessions are rows of the store: a second store object (another process) sees them."""
    runtime.tenants.create_tenant("acme", "Acme")
    key = runtime.tenants.create_key("tenant-admin", "rows", "acme")
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    first = SessionStore(runtime.db, runtime.tenants, lambda: now[0])
    other = SessionStore(runtime.db, runtime.tenants, lambda: now[0])
    session = first.sign_in(key.secret)
    seen = other.get(session.sid)
    assert (seen.key_id, seen.tenant_id, seen.csrf) == (key.key.id, "acme", session.csrf)
    stored = [str(r[0]) for r in runtime.db.query("SELECT sid_digest FROM web_sessions")]
    assert session.sid not in stored
    assert 1 == len(stored)
    other.end(session.sid)
    with pytest.raises(AuthenticationRequired):
        first.get(session.sid)


def test_every_form_shows_bad_input_next_to_the_field_and_keeps_it(
        env: tuple[Runtime, Fleet]) -> None:
    """Each form of the dashboard, given input the API refuses: 422, the problem in an
    element ``<field>-error`` that the field points to (aria-describedby), what was typed
    still in the form. (Blocklist, filters, import lines and settlement: tests above and
    tests/web/test_trust_pages.py.) The API key of the sign-in form is never echoed."""
    rt, fleet = env

    def described(text: str, field: str) -> None:
        assert f'id="{field}-error"' in text, field
        assert re.search(rf'aria-describedby="[^"]*{field}-error', text), field

    # Sign-in: an empty key.
    client = TestClient(create_site(rt))
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert token is not None
    empty = client.post("/ui/login", data={"api_key": "  ", "login_csrf": token.group(1)})
    assert 422 == empty.status_code
    described(empty.text, "api_key")

    admin, csrf = sign_in(rt, fleet.acme_admin)
    # Bulk action: the fleet page again, the problems beside the fields, the choices kept.
    ticked = fleet.acme_iccids[:2]
    bulk = admin.post("/ui/sims/bulk", data={
        "csrf": csrf, "action": "policy", "scope": "selection", "binding_mode": "glued",
        "roaming": "12x, 262", "iccid": ticked, "f_state": "active"})
    assert 422 == bulk.status_code
    assert "<h1>Fleet</h1>" in bulk.text
    for field in ("binding_mode", "roaming"):
        described(bulk.text, field)
    assert 'value="12x, 262"' in bulk.text
    assert '<option value="policy" selected>' in bulk.text
    assert '<option value="active" selected>' in bulk.text  # the filter is kept too
    for iccid in ticked:
        assert re.search(rf'value="{iccid}" aria-label="Select {iccid}" checked', bulk.text)
    nothing = admin.post("/ui/sims/bulk", data={"csrf": csrf, "action": "move",
                                                "scope": "selection", "group_id": "x"})
    assert 422 == nothing.status_code
    described(nothing.text, "group_id")
    assert 'id="iccid-error"' in nothing.text
    unknown = admin.post("/ui/sims/bulk", data={"csrf": csrf, "action": "explode",
                                                "scope": "filter"})
    described(unknown.text, "action")

    # A SIM's state change: a state that is not offered, a reason over the API's 200.
    iccid = fleet.acme_iccids[5]
    bogus = admin.post(f"/ui/sims/{iccid}/state", data={"csrf": csrf, "state": "melted",
                                                        "reason": "keep me"})
    assert 422 == bogus.status_code
    described(bogus.text, "state")
    assert 'value="keep me"' in bogus.text
    long = admin.post(f"/ui/sims/{iccid}/state", data={"csrf": csrf, "state": "suspended",
                                                       "reason": "r" * 201})
    assert 422 == long.status_code
    described(long.text, "reason")
    assert "r" * 201 in long.text
    assert '<option value="suspended" selected>' in long.text
    assert "active" == api(rt, fleet.acme_admin).get(f"/v1/sims/{iccid}").json()["state"]
    assert 'id="credentials"' in bogus.text  # the SIM's credentials: what is held, no secret
    assert "sealed at rest" in bogus.text

    # Import: nothing to import.
    empty_import = admin.post("/ui/import", data={"csrf": csrf, "text": "   "})
    assert 422 == empty_import.status_code
    described(empty_import.text, "file")
