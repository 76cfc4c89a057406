"""The CLI sets what the API can: a SIM's binding mode, APN and static address
(``sim set``), the tenant's attach policy (``attach policy``) and identifier
ranges (``sim allocate``); a static address is never given to two SIMs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simtrust.cli import main
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import build_services
from tests.subscriber.conftest import iccid, spec


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    rt = Runtime.initialise(load_settings(env={}, home=path))
    try:
        rt.tenants.create_tenant("acme", "Acme")
        services = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        services.inventory.create_apn("acme", "iot", actor="test")
        for n in (1, 2):
            services.inventory.add_sim("acme", spec(n), actor="test")
    finally:
        rt.close()
    monkeypatch.setenv("SIMTRUST_HOME", str(path))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr()
    code = int(done.value.code or 0)
    parsed = json.loads(out.out) if code == 0 and "--json" in argv else None
    return code, parsed, out.err


def test_sim_set_policy_and_allocate(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, sim, _ = _run(["sim", "set", iccid(1).value, "--binding-mode", "exact-pair",
                         "--apn", "iot", "--static-ip", "10.1.1.1", "--json"], capsys)
    assert 0 == code
    assert ("exact-pair", "iot", "10.1.1.1") == (sim["binding_mode"], sim["apn"],
                                                  sim["static_ip"])
    code, sim, _ = _run(["sim", "set", iccid(1).value, "--clear", "static_ip", "--json"], capsys)
    assert (0, None) == (code, sim["static_ip"])
    code, policy, _ = _run(["attach", "policy", "acme", "--binding-mode", "imei-primary",
                            "--roaming", "208", "--json"], capsys)
    assert (0, "imei-primary") == (code, policy["binding_mode"])
    code, ranges, _ = _run(["sim", "allocate", "acme", "--iccid-prefix", "89882",
                            "--imsi-prefix", "00101", "--json"], capsys)
    assert (0, ["89882"]) == (code, ranges["iccid_prefixes"])


def test_a_static_address_is_refused_for_a_second_sim(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == _run(["sim", "set", iccid(1).value, "--static-ip", "10.1.1.1"], capsys)[0]
    code, _, err = _run(["sim", "set", iccid(2).value, "--static-ip", "10.1.1.1"], capsys)
    assert 1 == code
    assert ["simtrust: error: address 10.1.1.1 is assigned to another SIM"] == \
        err.strip().splitlines()
    code, _, err = _run(["sim", "set", iccid(2).value, "--clear", "nonsense"], capsys)
    assert 2 == code


def test_sim_allocate_addresses(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's networks per tenant have a CLI as well as an API."""
    code, got, _ = _run(["sim", "allocate-addresses", "acme", "--network", "10.1.0.0/16",
                         "--network", "2001:db8:1::/48", "--json"], capsys)
    assert (0, ["10.1.0.0/16", "2001:db8:1::/48"]) == (code, got["networks"])
    code, got, _ = _run(["sim", "allocate-addresses", "acme", "--show", "--json"], capsys)
    assert (0, ["10.1.0.0/16", "2001:db8:1::/48"]) == (code, got["networks"])
    code, _, err = _run(["sim", "allocate-addresses", "acme", "--network", "10.1.0.1/16"],
                        capsys)
    assert (2, 1) == (code, len(err.strip().splitlines()))
