"""Interop with an independent VC stack: Digital Bazaar's @digitalbazaar/vc (npm).

The peer (bench/js/sign_vp.mjs, packages pinned by bench/js/package-lock.json)
issues a credential and signs a presentation *without a holder*, with a
challenge and eddsa-rdfc-2022, exactly as the W3C VC 2.0 test suite builds
its presentations; simtrust's VC-API verifier must accept it (VCDM 2.0 §4.13)
and refuse it once altered. The other way round, the peer verifies
credentials simtrust issued (bench/js/verify.mjs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simtrust.identity import Ed25519Signer, issue_credential
from simtrust.identity._contexts import CREDENTIALS_V2, EXAMPLES_V2, bundled_context, context_bytes

PEERS = Path(__file__).resolve().parents[2] / "bench" / "js"


def _peer() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    reason = None
    if node is None or npm is None:
        reason = "node/npm not installed (Debian nodejs, npm)"
    elif not (PEERS / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=PEERS, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            reason = f"npm ci failed: {done.stderr.strip()[-200:]}"
    if reason is not None:
        if os.environ.get("SIMTRUST_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


def _run(node: str, script: str, request: dict[str, Any]) -> Any:
    done = subprocess.run(
        [node, script], cwd=PEERS, input=json.dumps(request), capture_output=True,
        text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


CONTEXTS = {url: bundled_context(url) for url in (CREDENTIALS_V2, EXAMPLES_V2)}


def test_peer_presentation_without_holder_verifies(
    api: Any, operator_headers: dict[str, str]
) -> None:
    node = _peer()
    credential = {
        "@context": [CREDENTIALS_V2, EXAMPLES_V2],
        "id": "urn:uuid:1b6e5c1e-5d3a-4f5e-9a55-7b1c6c6f0a11",
        "type": ["VerifiableCredential", "ExampleAlumniCredential"],
        "credentialSubject": {"id": "did:example:abc", "alumniOf": "The School"},
    }
    vp = _run(
        node, "sign_vp.mjs", {"contexts": CONTEXTS, "challenge": "u-1", "credential": credential}
    )
    assert "holder" not in vp
    body = {"verifiablePresentation": vp, "options": {"checks": ["proof"], "challenge": "u-1"}}
    ok = api.post("/presentations/verify", json=body, headers=operator_headers)
    assert (200, True) == (ok.status_code, ok.json()["verified"]), ok.text
    assert ok.json()["holder"] is None
    wrong = api.post(
        "/presentations/verify",
        json={**body, "options": {"challenge": "u-2"}},
        headers=operator_headers,
    )
    assert (400, "challenge") == (wrong.status_code, wrong.json()["errors"][0]["reason"])
    vp["verifiableCredential"][0]["credentialSubject"]["alumniOf"] = "Another School"
    altered = api.post("/presentations/verify", json=body, headers=operator_headers)
    assert 400 == altered.status_code


def test_peer_verifies_what_simtrust_issues() -> None:
    node = _peer()
    signer = Ed25519Signer.generate()
    credential = {
        "@context": [CREDENTIALS_V2, EXAMPLES_V2],
        "type": ["VerifiableCredential", "ExampleAlumniCredential"],
        "issuer": {"id": signer.controller, "name": {"@value": "Operator", "@language": "en"}},
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abc", "alumniOf": "The School"},
        "relatedResource": [{"id": CREDENTIALS_V2, "digestSRI": _sri(CREDENTIALS_V2)}],
    }
    now = datetime.now(UTC)
    issued = {
        suite: issue_credential(credential, signer, now=now, cryptosuite=suite)
        for suite in ("eddsa-rdfc-2022", "eddsa-jcs-2022")
    }
    result = _run(node, "verify.mjs", {"seconds": 0, "contexts": CONTEXTS, "credentials": issued})
    assert {"eddsa-rdfc-2022": True, "eddsa-jcs-2022": True} == result["verified"]


def _sri(url: str) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(context_bytes(url)).digest()).decode()
