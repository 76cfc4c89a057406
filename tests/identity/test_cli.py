"""``simtrust vc`` and ``simtrust did``: the verify contract (exit codes, JSON) and DID life cycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from simtrust.cli import app
from simtrust.identity import Ed25519Signer, issue_credential

from .conftest import NOW, credential_for


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def simtrust(*args: str, home: Path) -> Done:
    """Run the CLI in-process (fast); the subprocess test below covers the real entry point."""
    result = CliRunner().invoke(
        app, list(args), env={"SIMTRUST_HOME": str(home)}, catch_exceptions=False
    )
    return Done(result.exit_code, result.stdout, result.stderr)


def test_entry_point_verify_contract(home: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    env = {**os.environ, "SIMTRUST_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "simtrust", "vc", "verify", str(tmp_path / "bad.json"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (2, "") == (done.returncode, done.stdout)
    assert 1 == len(done.stderr.strip().splitlines())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "home"
    done = simtrust("init", home=path)
    assert 0 == done.returncode, done.stderr
    return path


def test_vc_verify_contract(home: Path, tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    signed = tmp_path / "vc.json"
    signed.write_text(
        json.dumps(issue_credential(credential_for(signer.controller), signer, now=NOW))
    )
    done = simtrust("vc", "verify", str(signed), "--json", home=home)
    assert (0, {"verified": True, "errors": []}) == (done.returncode, json.loads(done.stdout))
    tampered = json.loads(signed.read_text())
    tampered["credentialSubject"]["imeiTac"] = "00000000"
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    done = simtrust("vc", "verify", str(tmp_path / "t.json"), "--json", home=home)
    report = json.loads(done.stdout)
    assert (1, False, "invalid-signature") == (
        done.returncode,
        report["verified"],
        report["errors"][0]["reason"],
    )
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "bad.json", tmp_path / "missing.json"):
        done = simtrust("vc", "verify", str(path), "--json", home=home)
        assert 2 == done.returncode
        assert "" == done.stdout
        assert 1 == len(done.stderr.strip().splitlines())


def test_w3c_vector_proof_is_valid_but_issuer_is_not_bound(home: Path, shared_dir: Path) -> None:
    """The W3C vector names an https issuer, signed by a did:key: the issuer binding check refuses it."""
    signed = shared_dir / "vectors" / "w3c-vc-di-eddsa" / "eddsa-jcs-2022" / "signedJCS.json"
    done = simtrust("vc", "verify", str(signed), "--json", home=home)
    assert (1, "key-not-authorized") == (
        done.returncode,
        json.loads(done.stdout)["errors"][0]["reason"],
    )


def test_vc_verify_of_json_that_is_no_credential_is_not_verified(
    home: Path, tmp_path: Path
) -> None:
    (tmp_path / "x.json").write_text("[1, 2]")
    done = simtrust("vc", "verify", str(tmp_path / "x.json"), "--json", home=home)
    assert (1, "malformed") == (done.returncode, json.loads(done.stdout)["errors"][0]["reason"])


def test_vc_issue_then_verify(home: Path, tmp_path: Path) -> None:
    credential = credential_for("did:example:placeholder")
    del credential["issuer"]
    (tmp_path / "c.json").write_text(json.dumps(credential))
    done = simtrust("vc", "issue", str(tmp_path / "c.json"), "--status", "revocation", home=home)
    assert 0 == done.returncode, done.stderr
    issued: dict[str, Any] = json.loads(done.stdout)
    assert issued["issuer"].startswith("did:simtrust:")
    (tmp_path / "vc.json").write_text(done.stdout)
    done = simtrust("vc", "verify", str(tmp_path / "vc.json"), "--json", home=home)
    assert (0, True) == (done.returncode, json.loads(done.stdout)["verified"])


def test_did_life_cycle(home: Path) -> None:
    done = simtrust("did", "create", "--json", home=home)
    assert 0 == done.returncode, done.stderr
    created = json.loads(done.stdout)
    did, element = created["did"], created["element"]
    done = simtrust(
        "did",
        "update",
        did,
        "--element",
        element,
        "--add-service",
        "ota=OtaEndpoint=https://ota.example",
        "--json",
        home=home,
    )
    assert ("2", 0) == (json.loads(done.stdout)["versionId"], done.returncode), done.stderr
    done = simtrust("did", "update", did, "--element", element, "--rotate", "--json", home=home)
    assert "3" == json.loads(done.stdout)["versionId"], done.stderr
    done = simtrust("did", "resolve", did, "--json", home=home)
    resolved = json.loads(done.stdout)
    assert ["https://ota.example"] == [
        s["serviceEndpoint"] for s in resolved["didDocument"]["service"]
    ]
    # The rotated-out first key no longer invokes capabilities (ids are compared whole:
    # a new key's id may start with "key-1" by chance).
    invokers = [
        ref if isinstance(ref, str) else ref["id"]
        for ref in resolved["didDocument"]["capabilityInvocation"]
    ]
    assert f"{did}#key-1" not in invokers
    assert 1 == len(invokers)
    done = simtrust("did", "deactivate", did, "--element", "someone-else", home=home)
    assert 2 == done.returncode
    done = simtrust("did", "deactivate", did, "--element", element, "--json", home=home)
    assert 0 == done.returncode, done.stderr
    done = simtrust("did", "resolve", did, "--version-id", "2", "--json", home=home)
    assert {"versionId": "2", "nextVersionId": "3"}.items() <= json.loads(done.stdout)[
        "didDocumentMetadata"
    ].items()
    assert json.loads(simtrust("did", "resolve", did, "--json", home=home).stdout)[
        "didDocumentMetadata"
    ]["deactivated"]
