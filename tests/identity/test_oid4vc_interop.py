"""OpenID4VCI and OpenID4VP against an independent wallet (Animo's oid4vc-ts, @sd-jwt on npm).

The wallet (tests/identity/wallet/wallet.mjs, packages pinned by its
package-lock.json, installed with ``npm ci`` on first use) talks to a real
simtrust server over HTTP: it resolves a credential offer by reference, reads
the issuer and authorization server metadata, redeems the pre-authorized code
with a transaction code, takes a nonce, proves its Ed25519 key and receives a
``dc+sd-jwt`` KYC credential. It then resolves a verifier's request by
reference (a request object signed by simtrust's did:web, which the wallet
resolves itself), presents only the claims the DCQL query asks for with a key
binding JWT, and posts the response (``direct_post``). simtrust's verifier
checks it and leaves a receipt naming the relying party and the issuer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from simtrust.api import create_app
from simtrust.identity import KYC_VCT
from simtrust.runtime import Runtime

WALLET = Path(__file__).resolve().parent / "wallet"


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    reason = None
    if node is None or npm is None:
        reason = "node/npm not installed (nodejs)"
    elif not (WALLET / "node_modules" / "@openid4vc" / "openid4vp").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=WALLET, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            reason = f"npm ci failed: {done.stderr.strip()[-200:]}"
    if reason is not None:
        if os.environ.get("SIMTRUST_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


class Server:
    def __init__(self, rt: Runtime, port: int) -> None:
        self.rt = rt
        self.local = f"http://127.0.0.1:{port}"
        self.public = f"https://localhost:{port}"
        key = rt.tenants.create_key("operator-admin", "oid4vc test operator")
        self.headers = {"Authorization": f"Bearer {key.secret}"}
        self.http = httpx.Client(base_url=self.local, timeout=30)

    def wallet(self, node: str, request: dict[str, Any]) -> dict[str, Any]:
        request = {"publicBase": self.public, "localBase": self.local, **request}
        done = subprocess.run(
            [node, "wallet.mjs"], cwd=WALLET, input=json.dumps(request), capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(done.stdout or "{}")
        assert 0 == done.returncode, (result, done.stderr[-2000:])
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    rt = Runtime.ephemeral(tmp_path / "home")
    rt.settings = replace(rt.settings, public_base_url=f"https://localhost:{port}")
    config = uvicorn.Config(create_app(rt), log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not instance.started:
            if not thread.is_alive():
                raise RuntimeError("server did not start")
            threading.Event().wait(0.01)
        yield Server(rt, port)
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        sock.close()
        rt.close()


KYC_CLAIMS = {
    "kyc_level": "substantial",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1815-12-10",
    "nationality": "GB",
    "age_over_18": True,
}


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_wallet_receives_kyc_over_oid4vci_and_presents_it_over_oid4vp(
    server: Server, alg: str
) -> None:
    """Ed25519 wallet keys, and P-256 keys as HAIP wallets hold them."""
    node = _node()
    offer = server.http.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "SimtrustKyc", "claims": KYC_CLAIMS, "tx_code": True},
        headers=server.headers,
    )
    assert 201 == offer.status_code, offer.text
    made = offer.json()
    received = server.wallet(
        node,
        {"action": "receive", "offerUrl": made["offerUrl"], "txCode": made["txCode"], "alg": alg},
    )
    assert server.public == received["issuerMetadata"]["credential_issuer"]
    assert ("openid4vci-proof+jwt", alg) == (
        received["proofHeader"]["typ"], received["proofHeader"]["alg"]
    )  # fmt: skip
    token = received["credential"]
    assert isinstance(token, str)
    assert token.endswith("~")
    # The offer is single use: the code cannot be redeemed again.
    again = server.http.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": made["credentialOffer"]["grants"][
                "urn:ietf:params:oauth:grant-type:pre-authorized_code"
            ]["pre-authorized_code"],
            "tx_code": made["txCode"],
        },
    )
    assert (400, "invalid_grant") == (again.status_code, again.json()["error"])

    query = {
        "credentials": [
            {
                "id": "kyc",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [KYC_VCT]},
                "claims": [{"path": ["given_name"]}, {"path": ["age_over_18"], "values": [True]}],
            }
        ]
    }
    asked = server.http.post(
        "/oid4vp/requests",
        json={"dcql_query": query, "relyingParty": "did:web:partner.example"},
        headers=server.headers,
    )
    assert 201 == asked.status_code, asked.text
    request = asked.json()
    presented = server.wallet(
        node,
        {
            "action": "present",
            "requestUrl": request["authorizationRequest"],
            "credential": token,
            "privateJwk": received["privateJwk"],
            "alg": alg,
        },
    )
    assert (200, "did", "direct_post", 100) == (
        presented["status"], presented["jarSigner"], presented["responseMode"],
        presented["version"],
    )  # fmt: skip
    outcome = server.http.get(f"/oid4vp/requests/{request['id']}", headers=server.headers).json()
    assert "verified" == outcome["status"], outcome
    claims = outcome["credentials"]["kyc"][0]["claims"]
    assert ("Ada", True) == (claims["given_name"], claims["age_over_18"])
    assert "family_name" not in claims  # only what the query asked for was disclosed
    issuer = outcome["credentials"]["kyc"][0]["issuer"]
    receipts = server.rt.identity.receipts.for_issuer(issuer)
    assert [("did:web:partner.example", KYC_VCT)] == [
        (r.relying_party, r.credential_type) for r in receipts
    ]


def test_wallet_waits_for_a_deferred_credential(server: Server) -> None:
    """Deferred issuance (§9): 202 + transaction_id until the operator approves."""
    node = _node()
    made = server.http.post(
        "/oid4vci/offers",
        json={"credential_configuration_id": "DeviceCredential", "deferred": True,
              "claims": {"imei": "490154203237518", "model": "meter-x1"}},
        headers=server.headers,
    ).json()  # fmt: skip
    waiting = server.wallet(node, {"action": "receive", "offerUrl": made["offerUrl"]})
    assert waiting["transactionId"]
    assert 5 == waiting["interval"]
    ask = {"action": "deferred", "issuer": waiting["issuer"],
           "accessToken": waiting["accessToken"], "transactionId": waiting["transactionId"]}
    assert server.wallet(node, ask).get("credential") is None  # still pending
    approved = server.http.post(f"/oid4vci/offers/{made['offerId']}/approve",
                                headers=server.headers)  # fmt: skip
    assert 204 == approved.status_code
    credential = server.wallet(node, ask)["credential"]
    assert ["VerifiableCredential", "DeviceCredential"] == credential["type"]
    assert credential["credentialSubject"]["id"].startswith("did:key:z6Mk")
    verified = server.http.post("/credentials/verify", json={"verifiableCredential": credential},
                                headers=server.headers)  # fmt: skip
    assert verified.json()["verified"] is True
