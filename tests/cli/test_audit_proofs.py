"""`simtrust audit anchor|prove|check-proof`: an event's inclusion proof verifies offline,
and a proof altered anywhere does not."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_root import simtrust


def _home_with_events(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    simtrust("init", "--json", home=home, check=True)
    rows = json.loads(simtrust("audit", "query", "--json", home=home, check=True).stdout)
    return home, rows[0]["event_id"]


def test_prove_before_anchoring_is_not_found(tmp_path: Path) -> None:
    home, event_id = _home_with_events(tmp_path)
    done = simtrust("audit", "prove", event_id, home=home)
    assert 1 == done.returncode
    assert "not anchored" in done.stderr


def test_anchor_prove_and_check_offline(tmp_path: Path) -> None:
    home, event_id = _home_with_events(tmp_path)
    receipt = json.loads(simtrust("audit", "anchor", "--json", home=home, check=True).stdout)
    assert receipt["first"] == 1
    again = json.loads(simtrust("audit", "anchor", "--json", home=home, check=True).stdout)
    assert {"anchored": 0} == again
    proof = json.loads(simtrust("audit", "prove", event_id, home=home, check=True).stdout)
    assert event_id == proof["event"]["event_id"]
    assert receipt["message_id"] == proof["anchor"]["message_id"]
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    # The verifier needs no data directory: it checks signature, range and Merkle path.
    checked = json.loads(simtrust("audit", "check-proof", str(path), "--json",
                                  home=tmp_path / "elsewhere", check=True).stdout)
    assert checked["verified"] is True

    tampered = json.loads(json.dumps(proof))
    tampered["event"]["record_hash"] = "00" * 32
    path.write_text(json.dumps(tampered))
    bad = simtrust("audit", "check-proof", str(path), home=tmp_path / "elsewhere")
    assert 0 != bad.returncode
    assert 1 == len(bad.stderr.strip().splitlines())

    wrong_issuer = simtrust("audit", "check-proof", str(tmp_path / "missing.json"),
                            home=tmp_path / "elsewhere")
    assert 2 == wrong_issuer.returncode
