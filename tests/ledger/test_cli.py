"""``simtrust ledger submit|get|balance|transfer|status`` against an initialised data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.ledger import Ed25519Signer
from simtrust.runtime import Runtime

BOB = Ed25519Signer(b"\x42" * 32)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SIMTRUST_HOME", str(path))
    Runtime.initialise(load_settings(env={}, home=path)).close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    with pytest.raises(SystemExit) as info:
        main(["ledger", *args, "--json"])
    assert 0 == info.value.code, capsys.readouterr().err
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_submit_get_status(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = run(capsys, "submit", "--tag", "note", "--data", "hello ledger")
    assert "accepted" == sub["status"]
    mid = str(sub["message_id"])
    got = run(capsys, "get", mid)
    assert "hello ledger" == got["body"]["text"]  # type: ignore[index]
    assert "finalized" == got["state"]
    assert "finalized" == run(capsys, "status", mid)["state"]
    assert 1 == run(capsys, "status")["messages"]


def test_transfer_and_balances(home: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    sent = run(capsys, "transfer", "--to", BOB.public_key.hex(), "--amount", "1234")
    assert "finalized" == sent["state"]
    assert 1234 == run(capsys, "balance", BOB.public_key.hex())["amount"]
    key_file = tmp_path / "bob.key"
    key_file.write_text((b"\x42" * 32).hex())
    me = run(capsys, "balance")["owner"]
    back = run(capsys, "transfer", "--to", str(me), "--amount", "34", "--key-file", str(key_file))
    assert "finalized" == back["state"]
    assert 1200 == run(capsys, "balance", "--key-file", str(key_file))["amount"]


def test_submit_signed_message_and_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ledger", "submit", "--message", "00ff"])
    assert info.value.code in (1, 2)
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["ledger", "transfer", "--to", "abcd", "--amount", "1"])
    assert 2 == info.value.code
