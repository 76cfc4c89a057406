"""Settings: defaults, TOML file, environment precedence, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.config import load_settings
from simtrust.errors import ConfigError


def test_defaults_live_in_home(tmp_path: Path) -> None:
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path)})
    assert tmp_path.resolve() == s.home
    assert f"sqlite:///{tmp_path.resolve() / 'simtrust.db'}" == s.store_url
    assert tmp_path.resolve() / "master.keys" == s.master_key_file
    assert ("127.0.0.1", 8470) == (s.api_host, s.api_port)


def test_env_overrides_toml(tmp_path: Path) -> None:
    (tmp_path / "simtrust.toml").write_text(
        'api_bind = "0.0.0.0:9000"\nnetwork_id = "from-file"\nmax_body_bytes = 2048\n'
    )
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_NETWORK_ID": "from-env"})
    assert ("0.0.0.0:9000", "from-env", 2048) == (s.api_bind, s.network_id, s.max_body_bytes)


def test_explicit_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('store_url = "postgresql://u@h/db"\n')
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_CONFIG": str(cfg)})
    assert "postgresql://u@h/db" == s.store_url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('bogus = 1\n', "unknown setting"),
        ('api_bind = "nohost"\n', "HOST:PORT"),
        ('max_body_bytes = -1\n', "positive"),
        ('store_url = "mysql://x"\n', "sqlite"),
        ("not toml =", "cannot read"),
    ],
)
def test_bad_settings_are_reported(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "simtrust.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(env={"SIMTRUST_HOME": str(tmp_path)})


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"SIMTRUST_CONFIG": str(tmp_path / "nope.toml")})


def test_anchor_interval(tmp_path: Path) -> None:
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_ANCHOR_INTERVAL_S": "2.5"})
    assert 2.5 == s.anchor_interval_s
    with pytest.raises(ConfigError, match="negative"):
        load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_ANCHOR_INTERVAL_S": "-1"})


def test_storm_limits_parse_per_scope_and_refuse_bad_text(tmp_path: Path) -> None:
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path),
                           "SIMTRUST_STORM_LIMITS": "tenant=500/2000, tac=100/500"})
    assert {"tenant": (500.0, 2000.0), "tac": (100.0, 500.0)} == s.storm_rates
    assert {} == load_settings(env={"SIMTRUST_HOME": str(tmp_path)}).storm_rates
    for bad in ("imsi=1/1", "tenant=0/10", "tenant=5/0.5", "tenant=5", "tac=nan/5",
                "tenant=1/2,tenant=3/4"):
        with pytest.raises(ConfigError, match="storm_limits"):
            load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_STORM_LIMITS": bad})


def test_ledger_validators_parse_and_refuse_bad_text(tmp_path: Path) -> None:
    s = load_settings(env={"SIMTRUST_HOME": str(tmp_path), "SIMTRUST_LEDGER_VALIDATORS":
                           "127.0.0.1:8700=/srv/v0/api-key, [::1]:8701=/srv/v1/api-key"})
    assert (("127.0.0.1:8700", Path("/srv/v0/api-key")),
            ("[::1]:8701", Path("/srv/v1/api-key"))) == s.validator_endpoints
    assert () == load_settings(env={"SIMTRUST_HOME": str(tmp_path)}).validator_endpoints
    for bad in ("127.0.0.1:8700", "127.0.0.1=/k", "host:0=/k", "host:99999=/k", ":80=/k",
                "host:80="):
        with pytest.raises(ConfigError, match="ledger_validators"):
            load_settings(env={"SIMTRUST_HOME": str(tmp_path),
                               "SIMTRUST_LEDGER_VALIDATORS": bad})
