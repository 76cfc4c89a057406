"""Every command scripts read takes ``--json`` and prints exactly one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.runtime import Runtime


@pytest.mark.parametrize("command", [
    ["vc", "issue"], ["audit", "prove"], ["policy", "render"], ["detect", "pcap"],
    ["sim", "set"], ["sim", "allocate"], ["attach", "policy"],
])
def test_help_offers_json(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert 0 == (done.value.code or 0)
    assert "--json" in capsys.readouterr().out


def test_policy_render_json_is_one_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=home))
    rt.tenants.create_tenant("acme", "Acme")
    rt.close()
    monkeypatch.setenv("SIMTRUST_HOME", str(home))
    devices = tmp_path / "devices.csv"
    devices.write_text("imsi,address\n001010000000001,10.0.0.1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["policy", "render", "acme", "--devices", str(devices), "--json"])
    assert 0 == (done.value.code or 0)
    doc = json.loads(capsys.readouterr().out)
    assert ("acme", 1, False) == (doc["tenant"], doc["devices"], doc["applied"])
    assert "table inet simtrust_acme" in doc["ruleset"]
