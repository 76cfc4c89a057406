"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no browser download).

One server and one browser for the module; each test has its own browser
context (its own cookies). Screenshots of the main pages are written to
``test-artefacts/screenshots/`` and, with ``SIMTRUST_DOC_SCREENSHOTS=1``, to
``docs/img/`` for docs/dashboard.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from simtrust.audit.anchoring import anchor_pending
from simtrust.ledger import Ed25519Signer, encode_tagged_data
from simtrust.ledger.net import ConsensusParams, Testnet
from simtrust.runtime import Runtime
from simtrust.settlement import StatementStore
from simtrust.streams import Author
from simtrust.web import create_site
from tests.conftest import services_required
from tests.ledger.net.conftest import make_messages, wait_sync
from tests.web.fleet import Fleet, add_contract, build

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTEFACTS = REPO / "test-artefacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Runtime, Fleet]]:
    rt = Runtime.ephemeral(tmp_path_factory.mktemp("browser") / "home")
    fleet = build(rt, per_tenant=60)
    for n in range(12):  # some tangle for the ledger page, and an audit anchor
        rt.ledger.issue(0, encode_tagged_data(b"meter", f"reading {n}".encode()))
    anchor_pending(rt.audit, rt.ledger)
    add_contract(rt)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_site(rt), log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", rt, fleet
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        rt.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (Debian package chromium)"
        if services_required():
            pytest.fail(message + " and SIMTRUST_REQUIRE_SERVICES is set")
        pytest.skip(message)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        yield tab
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTEFACTS / f"dashboard-{name}.png"
    page.screenshot(path=str(target), full_page=False)
    if os.environ.get("SIMTRUST_DOC_SCREENSHOTS"):
        shutil.copyfile(target, REPO / "docs" / "img" / target.name)


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()


def api(rt: Runtime, key: str) -> TestClient:
    return TestClient(create_site(rt), headers={"Authorization": f"Bearer {key}"})


def test_sign_in_search_and_sim_page(site: tuple[str, Runtime, Fleet], page: Page) -> None:
    base, _rt, fleet = site
    page.goto(f"{base}/ui/login")
    page.get_by_label("API key").fill("stk_0000000000000000_" + "A" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#api_key-error")).to_contain_text("not valid")
    shot(page, "sign-in-error")
    sign_in(page, base, fleet.operator)
    shot(page, "fleet")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')].filter(
        e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)""")
    assert [] == unlabelled
    page.keyboard.press("Tab")  # the first stop is the skip link, then the navigation
    assert "Skip to content" == page.evaluate("document.activeElement.textContent")
    page.get_by_label("Search").fill("pump house")
    page.get_by_label("Search").press("Enter")
    rows = page.locator("table.sims tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name=fleet.acme_iccids[3]).click()
    expect(page.get_by_role("heading", name=f"SIM {fleet.acme_iccids[3]}")).to_be_visible()
    expect(page.locator("section", has_text="Bound device")).to_contain_text("35693803564380")
    expect(page.locator("#usage ~ figure svg[role=img]")).to_be_visible()
    shot(page, "sim")
    page.goto(f"{base}/ui/ledger")
    expect(page.locator("figure.tangle svg")).to_be_visible()
    shot(page, "ledger")
    page.get_by_role("link", name="Trust", exact=True).click()
    expect(page.locator("#contracts ~ table")).to_contain_text("ra-acme-globex")
    shot(page, "trust")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.goto(f"{base}/ui/sims")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    shot(page, "fleet-phone")


def test_bulk_suspend_confirmed_through_the_api(site: tuple[str, Runtime, Fleet],
                                               page: Page) -> None:
    base, rt, fleet = site
    sign_in(page, base, fleet.acme_admin)
    chosen = fleet.acme_iccids[40:43]
    for iccid in chosen:
        page.get_by_label(f"Select {iccid}").check()
    page.get_by_label("Action").select_option("suspend")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".confirm-count")).to_contain_text("3 SIMs you selected")
    shot(page, "bulk-confirm")
    page.get_by_role("button", name="Yes, suspend 3 SIMs").click()
    expect(page.locator("#job-status")).to_have_text("done", timeout=20_000)
    expect(page.locator("#job-changed")).to_have_text("3")
    shot(page, "bulk-progress")
    suspended = api(rt, fleet.acme_admin).get("/v1/sims?state=suspended&limit=1000").json()
    assert set(chosen) <= {s["iccid"] for s in suspended["sims"]}


def test_alert_evidence(site: tuple[str, Runtime, Fleet], page: Page) -> None:
    base, _rt, fleet = site
    sign_in(page, base, fleet.acme_viewer)
    page.get_by_role("link", name="Alerts", exact=True).click()
    expect(page.locator("figure svg[role=img]")).to_be_visible()
    shot(page, "alerts")
    page.get_by_role("link", name="detect.alert.scan", exact=True).click()
    evidence = page.locator("table.evidence")
    expect(evidence.get_by_role("row", name="times_threshold")).to_contain_text("10.3")
    expect(page.locator("figure svg title").first).to_contain_text("observed against")
    shot(page, "alert-evidence")
    page.get_by_role("link", name="Policy", exact=True).click()
    expect(page.locator("table")).to_contain_text("policy.remove")
    shot(page, "policy")


def test_tenant_isolation(site: tuple[str, Runtime, Fleet], page: Page) -> None:
    base, _rt, fleet = site
    sign_in(page, base, fleet.globex_admin)
    listed: Any = page.locator("table.sims tbody a").all_inner_texts()
    assert listed
    assert not set(listed) & set(fleet.acme_iccids)
    page.get_by_label("Search").fill(fleet.acme_iccids[3])
    page.get_by_label("Search").press("Enter")
    expect(page.locator("table.sims tbody")).to_contain_text("No SIM matches")
    answer = page.goto(f"{base}/ui/sims/{fleet.acme_iccids[3]}")
    assert answer is not None
    assert 404 == answer.status
    answer = page.goto(f"{base}/ui/alerts/{fleet.alert_id}")
    assert answer is not None
    assert 404 == answer.status


def test_csrf_refusal_then_logout(site: tuple[str, Runtime, Fleet], page: Page) -> None:
    base, rt, fleet = site
    sign_in(page, base, fleet.acme_admin)
    target = fleet.acme_iccids[45]
    page.get_by_label(f"Select {target}").check()
    page.evaluate("document.querySelector('#bulk input[name=csrf]').value = 'forged'")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("p.error")).to_contain_text("CSRF")
    assert "active" == api(rt, fleet.operator).get(f"/v1/sims/{target}").json()["state"]
    page.goto(f"{base}/ui/sims")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{base}/ui/sims")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_trailing_digits_settlement_market_and_provenance(site: tuple[str, Runtime, Fleet],
                                                          page: Page) -> None:
    base, rt, fleet = site
    author = Author(Ed25519Signer.generate(), lambda: 1)
    channel = rt.streams.open_channel("acme", author.announce.to_bytes(), label="meter 12",
                                      actor="test")["id"]
    inputs = [rt.streams.publish(channel, author.publish(f"reading {n}".encode()).to_bytes(),
                                 actor="test")["message_id"] for n in range(3)]
    derived = rt.streams.derive("acme", inputs, label="daily total", actor="test")["datum"]
    offering = rt.market.create_item("productOffering", None,
                                     {"name": "IoT 1 GB", "lifecycleStatus": "Launched"}, "t")
    rt.market.create_order("acme", {"productOrderItem": [
        {"id": "a", "action": "add", "productOffering": {"id": offering.document["id"]}}]}, "t")

    sign_in(page, base, fleet.acme_admin)
    wanted = fleet.acme_iccids[17]
    page.get_by_label("Search").fill(wanted[-7:])  # the digits printed last on the card
    page.get_by_label("Search").press("Enter")
    expect(page.locator("table.sims tbody tr")).to_have_count(1)
    expect(page.locator("table.sims tbody")).to_contain_text(wanted)

    page.get_by_role("link", name="Settlement", exact=True).click()
    box = page.get_by_label("Statements (JSON)")
    box.fill('[{"payer": "A", "payee": "B", "currency": "EUR"}]')
    page.get_by_role("button", name="Net the statements").click()
    expect(page.locator("#statements-error")).to_be_visible()
    expect(box).to_have_value('[{"payer": "A", "payee": "B", "currency": "EUR"}]')
    box.fill(json.dumps([
        {"payer": "Acme", "payee": "Globex", "currency": "EUR", "total_minor_units": 90_000},
        {"payer": "Globex", "payee": "Initech", "currency": "EUR", "total_minor_units": 50_000},
        {"payer": "Initech", "payee": "Acme", "currency": "EUR", "total_minor_units": 20_000},
        {"payer": "Initech", "payee": "Globex", "currency": "EUR", "total_minor_units": 35_000},
    ]))
    page.get_by_role("button", name="Net the statements").click()
    expect(page.locator("figure svg[role=img]")).to_be_visible()
    expect(page.locator("table.transfers tbody tr")).to_have_count(2)
    shot(page, "settlement")

    page.get_by_role("link", name="Marketplace", exact=True).click()
    expect(page.locator("table.orders tbody")).to_contain_text("IoT 1 GB")
    shot(page, "market")

    page.get_by_role("link", name="Streams", exact=True).click()
    expect(page.locator("table.channels")).to_contain_text("meter 12")
    page.locator(f'a[href="/ui/provenance/{derived}"]').click()
    expect(page.locator("figure.provenance svg")).to_be_visible()
    expect(page.locator("table.nodes tbody tr")).to_have_count(4)
    shot(page, "provenance")

    page.goto(f"{base}/ui/ledger")
    expect(page.locator("#rounds ~ figure svg[role=img]")).to_be_visible()
    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids))  # every chart labels itself, no shared ids


A11Y = (Path(__file__).parent / "a11y.js").read_text(encoding="utf-8")


def accessibility_problems(page: Page) -> list[str]:
    """tests/web/a11y.js on the page, then the keyboard: the first Tab stop is the skip link,
    and every one of the first Tab stops shows where the focus is (an outline)."""
    problems: list[str] = page.evaluate(A11Y)
    autofocus = page.evaluate("!!document.querySelector('[autofocus]')")
    if autofocus:  # the sign-in field takes the focus; the skip link is one Shift+Tab back
        page.focus("[autofocus]")
        page.keyboard.press("Shift+Tab")
    else:
        page.keyboard.press("Tab")
    if "Skip to content" != page.evaluate("document.activeElement.textContent"):
        problems.append("the keyboard does not reach the skip link first")
    for _ in range(4):
        focus = page.evaluate("""() => { const e = document.activeElement;
            const s = getComputedStyle(e);
            return [e.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        if focus[0] != "BODY" and (focus[1] == "none" or focus[2] <= 0):
            problems.append(f"no visible focus on {focus[0]}")
        page.keyboard.press("Tab")
    if page.evaluate("document.documentElement.scrollWidth") > page.viewport_size["width"] + 1:  # type: ignore[index]
        problems.append("the page scrolls sideways")
    return problems


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_every_page_passes_the_accessibility_checks(site: tuple[str, Runtime, Fleet],
                                                    browser: Browser,
                                                    viewport: dict[str, int]) -> None:
    """Labels, text alternatives, names, skip link, focus and contrast on every /ui page,
    at 1280×800 and at phone width (390×844)."""
    base, rt, fleet = site
    author = Author(Ed25519Signer.generate(), lambda: 1)
    channel = rt.streams.open_channel("acme", author.announce.to_bytes(), label="a11y meter",
                                      actor="test")["id"]
    inputs = [rt.streams.publish(channel, author.publish(f"r {n}".encode()).to_bytes(),
                                 actor="test")["message_id"] for n in range(2)]
    derived = rt.streams.derive("acme", inputs, label="a11y total", actor="test")["datum"]
    StatementStore(rt.db).put(
        [{"payer": "Acme", "payee": "Globex", "currency": "EUR", "total_minor_units": 900},
         {"payer": "Globex", "payee": "Acme", "currency": "EUR", "total_minor_units": 300}],
        period="2026-08", tenant_id=None, require_signatures=False, now=rt.clock())
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    found: dict[str, list[str]] = {}
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{base}/ui/login")
        found["login"] = accessibility_problems(page)
        page.get_by_label("API key").fill("not a key")
        page.get_by_role("button", name="Sign in").click()
        # the checks read the next page only once it is there, never a document mid-navigation
        expect(page.locator("#api_key-error")).to_contain_text("not valid")
        found["login (error)"] = accessibility_problems(page)
        sign_in(page, base, fleet.operator)
        paths = ["/ui/sims", "/ui/sims?state=bogus", f"/ui/sims/{fleet.acme_iccids[3]}",
                 "/ui/import", "/ui/alerts", f"/ui/alerts/{fleet.alert_id}", "/ui/blocklist",
                 "/ui/policy", "/ui/audit", "/ui/trust", "/ui/credentials", "/ui/ledger",
                 "/ui/settlement", "/ui/settlement?period=2026-08", "/ui/market",
                 "/ui/streams", f"/ui/provenance/{derived}", "/ui/sims/8988200000000000000"]
        for path in paths:
            page.goto(base + path)
            found[path] = accessibility_problems(page)
        page.goto(f"{base}/ui/sims?state=active")
        page.locator("table.sims tbody input[type=checkbox]").first.check()
        page.get_by_label("Action").select_option("resume")
        page.get_by_role("button", name="Apply to selected").click()
        expect(page.get_by_role("button", name="Yes, resume 1 SIM")).to_be_visible()
        found["bulk confirmation"] = accessibility_problems(page)
        page.get_by_role("button", name="Yes, resume 1 SIM").click()
        expect(page.locator("#job-status")).to_have_text("done", timeout=20_000)
        found["bulk job"] = accessibility_problems(page)
    finally:
        context.close()
    failing = {where: p for where, p in found.items() if p}
    assert {} == failing, "\n".join(f"{w}: {p}" for w, ps in failing.items() for p in ps)


def test_bad_bulk_and_state_input_shown_beside_the_field(site: tuple[str, Runtime, Fleet],
                                                        page: Page) -> None:
    """In the browser: a refused bulk policy comes back on the fleet page with the problem
    under the roaming field and the ticked SIMs still ticked; a SIM's over-long reason is
    refused beside the reason field with the text kept."""
    base, _rt, fleet = site
    sign_in(page, base, fleet.acme_admin)
    chosen = fleet.acme_iccids[30]
    page.get_by_label(f"Select {chosen}").check()
    page.get_by_label("Action").select_option("policy")
    page.get_by_label("Roaming").fill("12x")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("#roaming-error")).to_be_visible()
    expect(page.get_by_label("Roaming")).to_have_value("12x")
    expect(page.get_by_label("Roaming")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(f"Select {chosen}")).to_be_checked()
    expect(page.get_by_label("Action")).to_have_value("policy")
    shot(page, "bulk-error")
    page.goto(f"{base}/ui/sims/{chosen}")
    page.get_by_label("Reason").fill("x" * 201)
    page.get_by_role("button", name="Change state").click()
    expect(page.locator("#reason-error")).to_contain_text("at most 200")
    expect(page.get_by_label("Reason")).to_have_value("x" * 201)


def test_credentials_tenant_isolation(site: tuple[str, Runtime, Fleet], browser: Browser) -> None:
    """A credential issued for acme is on acme's credentials page and not on globex's."""
    base, rt, fleet = site
    issued = api(rt, fleet.operator).post("/credentials/issue", json={
        "tenantId": "acme", "credential": {
            "@context": ["https://www.w3.org/ns/credentials/v2",
                         "https://www.w3.org/ns/credentials/examples/v2"],
            "id": "urn:uuid:0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01",
            "type": ["VerifiableCredential", "DeviceCertificate"],
            "credentialSubject": {"id": "did:example:meter-77"}}})
    assert 201 == issued.status_code, issued.text
    for key, sees in ((fleet.acme_viewer, True), (fleet.globex_admin, False)):
        context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        try:
            tab = context.new_page()
            tab.set_default_timeout(10_000)
            sign_in(tab, base, key)
            tab.get_by_role("link", name="Credentials", exact=True).click()
            expect(tab.get_by_role("heading", name="Credentials issued")).to_be_visible()
            table = tab.locator("table.credentials tbody")
            if sees:
                expect(table).to_contain_text("0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01")
                expect(table).to_contain_text("acme")
                shot(tab, "credentials")
            else:
                expect(table).not_to_contain_text("0d9e8f7a")
        finally:
            context.close()


def test_consortium_validators_on_the_ledger_page(site: tuple[str, Runtime, Fleet], page: Page,
                                                  tmp_path: Path) -> None:
    """simtrust serve with ledger_validators: a real validator process's health and its
    finality chart on the ledger page, read in the browser."""
    base, rt, fleet = site
    net = Testnet.create(tmp_path / "testnet", 1,
                         consensus=ConsensusParams(min_round_interval_ms=0))
    saved = rt.settings
    try:
        net.up(timeout=300)
        node = net.client(0)
        try:
            def sampled() -> bool:  # the probe follows one message id in 8
                if isinstance(node.status()["latency"].get("admit_to_apply"), dict):
                    return True
                node.submit(make_messages(net.network, Ed25519Signer.generate(),
                                          node.parents(), 8))
                return False

            wait_sync(sampled, "a sampled message's finality")
        finally:
            node.close()
        info = net.nodes[0]
        rt.settings = replace(saved, ledger_validators=f"{info.api}={info.api_key_file}")
        sign_in(page, base, fleet.operator)
        page.goto(f"{base}/ui/ledger")
        row = page.locator("table.consortium tbody tr").first
        expect(row).to_contain_text("in step")
        expect(page.locator("#validators ~ figure svg[role=img] title").first).to_contain_text(
            "Finality latency per validator")
        page.locator("#validators").scroll_into_view_if_needed()
        shot(page, "validators")
    finally:
        rt.settings = saved
        net.down()
