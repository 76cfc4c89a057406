"""``simtrust pki`` and ``simtrust bootstrap device`` against a running listener."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from simtrust.cli import app, main

from .conftest import K1, OPC1, TENANT, Env, iccid, imsi


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"SIMTRUST_HOME": str(home),
                                                      "SIMTRUST_MQTT_URL": "mqtt://127.0.0.1:1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(env: Env) -> Path:
    return env.rt.settings.home


def test_pki_and_bootstrap_device(env: Env, home: Path, tmp_path: Path) -> None:
    code, out, _ = run(home, "pki", "ca-create", "meters", "--tenant", TENANT, "--cn",
                       "Acme Meters CA", "--lifetime", "3600", "--json")
    assert 0 == code, out
    assert "hosted" == json.loads(out)["mode"]
    code, out, _ = run(home, "pki", "profile", "meters", "--tenant", TENANT, "--key-types", "p256", "--lifetime",
                       "7200", "--json")
    assert (["p256"], 7200) == (json.loads(out)["profile"]["key_types"],
                                json.loads(out)["profile"]["lifetime_s"])
    code, out, _ = run(home, "pki", "cacert", "operator-tier1")
    trust = tmp_path / "trust.pem"
    trust.write_text(out)
    code, out, err = run(home, "bootstrap", "device", "--url", env.listener.base_url,
                         "--trust", str(trust), "--iccid", iccid(3).value, "--imsi",
                         imsi(3).value, "--k", K1.hex(), "--opc", OPC1.hex(), "--label",
                         f"{TENANT}.meters", "--out-dir", str(tmp_path / "dev"), "--naf-fqdn",
                         env.boot.server.naf_id.fqdn, "--json")
    assert 0 == code, out + err
    result = json.loads(out)
    cert = x509.load_pem_x509_certificate((tmp_path / "dev" / "device.pem").read_bytes())
    assert format(cert.serial_number, "x") == result["serial"]
    assert 0o600 == (tmp_path / "dev" / "device.key").stat().st_mode & 0o777
    code, out, _ = run(home, "pki", "certs", "--iccid", iccid(3).value, "--json")
    assert [result["serial"]] == [c["serial"] for c in json.loads(out)]
    code, out, _ = run(home, "pki", "revoke-sim", iccid(3).value, "--reason", "keyCompromise",
                       "--json")
    assert [result["serial"]] == json.loads(out)["revoked"]
    code, _, _ = run(home, "pki", "crl", f"{TENANT}.meters", "--out", str(tmp_path / "m.crl"))
    crl = x509.load_der_x509_crl((tmp_path / "m.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_cli_bad_input_is_one_line(home: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMTRUST_HOME", str(home))
    cases = ((1, ("pki", "revoke", "abcdef")),
             (2, ("pki", "ca-create", "x y", "--tenant", TENANT)),
             (2, ("pki", "revoke-sim", iccid(1).value, "--reason", "bored")),
             (2, ("bootstrap", "device", "--url", "https://127.0.0.1:1", "--trust",
                  str(tmp_path / "missing.pem"), "--iccid", iccid(1).value, "--imsi",
                  imsi(1).value, "--k", "00", "--opc", "00", "--label", "x", "--out-dir",
                  str(tmp_path))))
    for expected, args in cases:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        err = capsys.readouterr().err
        assert expected == done.value.code, (args, err)
        assert 1 == len(err.strip().splitlines()), err
        assert err.startswith("simtrust: error: ")
