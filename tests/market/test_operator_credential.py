"""Partner operators are admitted by a consortium OperatorCredential beside their DID signature.

Operator A (seller, here also the consortium's credential issuer) serves its
TMF APIs on loopback; B holds an OperatorCredential (vc+jwt, revocable through
A's Bitstring Status List); C is a did:simtrust on the same ledger without one.
Every refusal is checked against the official TMF622 ``Error``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.config import load_settings
from simtrust.crypto import Keyring
from simtrust.errors import ConfigError
from simtrust.market import (
    CREDENTIAL_HEADER,
    OperatorAdmission,
    StatusListFetch,
    credential_verifier,
    operator_credential,
    sign_request,
)
from simtrust.runtime import Runtime
from simtrust.store import open_database

from .conftest import CATALOG, ORDERING, TmfCheck, char, order_body, publish
from .conftest import service_spec as spec
from .test_partner_listener import serve

SELLER_URL = "http://seller.example"
_REVOCABLE = {"securingMechanism": "vc+jwt", "credentialStatus": {
    "type": "BitstringStatusListEntry", "statusPurpose": "revocation"}}


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime, Runtime]]:
    seller = Runtime.ephemeral(tmp_path / "a")
    buyer = Runtime.ephemeral(tmp_path / "b")
    stranger = Runtime.ephemeral(tmp_path / "c")
    buyer.ledger = stranger.ledger = seller.ledger  # the consortium ledger
    try:
        yield seller, buyer, stranger
    finally:
        stranger.close()
        buyer.close()
        seller.close()


def _admission(seller: Runtime, issuers: list[str]) -> OperatorAdmission:
    """What the runtime builds from ``market_operator_issuers``, with these issuers."""
    fetch = StatusListFetch(seller.identity.status.published)
    return OperatorAdmission(issuers, verify=credential_verifier(seller.identity, fetch,
                                                                 seller.clock))


class ToLoopback(httpx.BaseTransport):
    """Real HTTP to a loopback server for the authority's https name (its public URL)."""

    def __init__(self, url: str) -> None:
        self._port = httpx.URL(url).port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return self._inner.handle_request(request)


def _token(envelope: dict[str, Any]) -> str:
    return str(envelope["id"]).split(",", 1)[1]


def _call(api: TestClient, rt: Runtime, url: str, credential: str | None) -> httpx.Response:
    request = api.build_request("GET", url)
    if credential is not None:
        request.headers[CREDENTIAL_HEADER] = credential
    sign_request(request, rt.identity.issuer())
    answer: httpx.Response = api.send(request)
    return answer


def test_only_admitted_operators_trade(consortium: tuple[Runtime, Runtime, Runtime],
                                       tmf_check: TmfCheck) -> None:
    seller, buyer, stranger = consortium
    authority = seller.identity.issuer().controller
    seller.federation.admission = _admission(seller, [authority])
    b_did, c_did = buyer.federation.did, stranger.federation.did
    issued = seller.identity.issue(operator_credential(b_did, "Operator B", authority),
                                   _REVOCABLE)
    buyer.federation.credential = _token(issued)
    admin = seller.tenants.create_key("operator-admin", "seller admin")
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        offering = publish(api, {"Authorization": f"Bearer {admin.secret}"}, "Consulting",
                           [spec("SimBatch", "SIMs", char("stockTenant", default="stock",
                                                          configurable=False))])
        seller.federation.publish(SELLER_URL, [offering])
        publication = buyer.federation.discover()[0]

        # B: signed by its DID, with its credential: trades.
        assert [offering["id"]] == [o["id"] for o in
                                    buyer.federation.fetch_catalog(api, publication)]
        listing = _call(api, buyer, f"{SELLER_URL}{ORDERING}/productOrder",
                        buyer.federation.credential)
        assert 200 == listing.status_code, listing.text

        # C: a valid DID signature but no credential, B's credential, or its own.
        refusals = [
            _call(api, stranger, f"{SELLER_URL}{CATALOG}/productOffering", None),
            _call(api, stranger, f"{SELLER_URL}{CATALOG}/productOffering",
                  buyer.federation.credential),
            _call(api, stranger, f"{SELLER_URL}{CATALOG}/productOffering", _token(
                stranger.identity.issue(operator_credential(c_did, "C", c_did),
                                        {"securingMechanism": "vc+jwt"}))),
            _call(api, stranger, f"{SELLER_URL}{CATALOG}/productOffering", "not.a.jwt"),
        ]
        for answer in refusals:
            assert 401 == answer.status_code, answer.text
            tmf_check("622", "Error", answer.json())
            assert "operator-unknown" == answer.json()["code"]
        assert "names another operator" in refusals[1].json()["message"]
        assert "consortium issuer" in refusals[2].json()["message"]
        # nothing was created for the refused operator
        assert c_did not in {str(r[0]) for r in seller.db.query(
            "SELECT did FROM market_partners")}

        # A revokes B's credential: B's next request is refused, 403 operator-revoked.
        entry = seller.identity.verify_credential(
            buyer.federation.credential).credential["credentialStatus"]
        seller.identity.set_status(entry, True)
        revoked = _call(api, buyer, f"{SELLER_URL}{ORDERING}/productOrder",
                        buyer.federation.credential)
        assert 403 == revoked.status_code, revoked.text
        tmf_check("622", "Error", revoked.json())
        assert "operator-revoked" == revoked.json()["code"]
        order = api.build_request("POST", f"{SELLER_URL}{ORDERING}/productOrder",
                                  json=order_body(offering["id"]))
        order.headers[CREDENTIAL_HEADER] = buyer.federation.credential
        sign_request(order, buyer.identity.issuer())
        assert 403 == api.send(order).status_code
        assert [] == seller.market.list_orders(None, True)  # nothing ordered


def test_open_consortium_without_issuers(consortium: tuple[Runtime, Runtime, Runtime]) -> None:
    """No issuers configured: any did:simtrust on the ledger may call (the default)."""
    seller, _, stranger = consortium
    assert seller.federation.admission is not None
    assert not seller.federation.admission.required
    with TestClient(create_app(seller), base_url=SELLER_URL) as api:
        answer = _call(api, stranger, f"{SELLER_URL}{CATALOG}/productOffering", None)
        assert 200 == answer.status_code, answer.text


def test_issuers_setting(tmp_path: Path) -> None:
    env = {"SIMTRUST_MARKET_OPERATOR_ISSUERS": " did:simtrust:a , did:simtrust:b "}
    assert ("did:simtrust:a", "did:simtrust:b") == load_settings(
        env=env, home=tmp_path).operator_issuers
    with pytest.raises(ConfigError):
        load_settings(env={"SIMTRUST_MARKET_OPERATOR_ISSUERS": "https://x"}, home=tmp_path)


def test_a_remote_issuers_revocation_reaches_the_seller(
        consortium: tuple[Runtime, Runtime, Runtime], tmp_path: Path,
        tmf_check: TmfCheck) -> None:
    """The issuer is a third node: the seller reads its status list over HTTP."""
    seller, buyer, _ = consortium
    settings = load_settings(env={"SIMTRUST_PUBLIC_BASE_URL": "https://authority.example"},
                             home=tmp_path / "x")
    (tmp_path / "x").mkdir()
    authority = Runtime(settings, open_database(settings.store_url),
                        Keyring.generate(settings.master_key_file))
    authority.ledger = seller.ledger
    try:
        issuer = authority.identity.issuer().controller
        buyer.federation.credential = _token(authority.identity.issue(
            operator_credential(buyer.federation.did, "Operator B", issuer), _REVOCABLE))
        with serve(create_app(authority)) as url, \
                TestClient(create_app(seller), base_url=SELLER_URL) as api:
            # A generous timeout: a busy machine must not turn a slow answer into a refusal.
            fetch = StatusListFetch(seller.identity.status.published,
                                    transport=ToLoopback(url), timeout=120.0)
            seller.federation.admission = OperatorAdmission(
                [issuer], verify=credential_verifier(seller.identity, fetch, seller.clock))
            listing = _call(api, buyer, f"{SELLER_URL}{ORDERING}/productOrder",
                            buyer.federation.credential)
            assert 200 == listing.status_code, listing.text
            assert 1 == fetch.fetched  # the list came from the authority's server
            entry = authority.identity.verify_credential(
                buyer.federation.credential).credential["credentialStatus"]
            assert entry["statusListCredential"].startswith("https://authority.example/")
            authority.identity.set_status(entry, True)
            revoked = _call(api, buyer, f"{SELLER_URL}{ORDERING}/productOrder",
                            buyer.federation.credential)
            assert 403 == revoked.status_code, revoked.text
            tmf_check("622", "Error", revoked.json())
            assert "operator-revoked" == revoked.json()["code"]
    finally:
        authority.close()
