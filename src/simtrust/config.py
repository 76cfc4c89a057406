"""Settings: environment variables over an optional TOML file over defaults.

Precedence (highest first): ``SIMTRUST_*`` environment variables, the TOML
file (``SIMTRUST_CONFIG``, else ``$SIMTRUST_HOME/simtrust.toml`` if present),
built-in defaults. The data directory defaults to ``~/.simtrust``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from simtrust.errors import ConfigError

__all__ = ["Settings", "load_settings"]

_DEFAULT_BIND = "127.0.0.1:8470"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings of one simtrust process.

    ``store_url`` is ``sqlite:///ABSOLUTE/PATH`` or ``postgresql://...``.
    """

    home: Path
    store_url: str
    api_bind: str = _DEFAULT_BIND
    master_key_file: Path = field(default=Path())
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    nats_url: str = "nats://127.0.0.1:4222"
    network_id: str = "simtrust-local"
    max_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    anchor_interval_s: float = 60.0

    @property
    def api_host(self) -> str:
        return self.api_bind.rsplit(":", 1)[0]

    @property
    def api_port(self) -> int:
        return int(self.api_bind.rsplit(":", 1)[1])

    def with_home(self, home: Path) -> Settings:
        """Settings re-rooted at another data directory (default paths follow)."""
        return _defaults_for(home, {})


_ENV = {
    "store_url": "SIMTRUST_STORE_URL",
    "api_bind": "SIMTRUST_API_BIND",
    "master_key_file": "SIMTRUST_MASTER_KEY_FILE",
    "mqtt_url": "SIMTRUST_MQTT_URL",
    "nats_url": "SIMTRUST_NATS_URL",
    "network_id": "SIMTRUST_NETWORK_ID",
    "max_body_bytes": "SIMTRUST_MAX_BODY_BYTES",
    "log_level": "SIMTRUST_LOG_LEVEL",
    "anchor_interval_s": "SIMTRUST_ANCHOR_INTERVAL_S",
}


def _defaults_for(home: Path, values: Mapping[str, Any]) -> Settings:
    home = home.expanduser().resolve()
    base = Settings(
        home=home,
        store_url=f"sqlite:///{home / 'simtrust.db'}",
        master_key_file=home / "master.keys",
    )
    known = {f.name for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in known or key == "home":
            raise ConfigError(f"unknown setting {key!r}", setting=key)
        changes[key] = _coerce(key, raw)
    return replace(base, **changes)


def _coerce(key: str, raw: Any) -> Any:
    if key == "master_key_file":
        return Path(str(raw)).expanduser().resolve()
    if key == "max_body_bytes":
        try:
            value = int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be an integer", setting=key) from exc
        if value <= 0:
            raise ConfigError(f"{key} must be positive", setting=key)
        return value
    if key == "anchor_interval_s":
        try:
            seconds = float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be a number of seconds", setting=key) from exc
        if seconds < 0:
            raise ConfigError(f"{key} must not be negative (0 disables)", setting=key)
        return seconds
    if key == "api_bind":
        text = str(raw)
        host, sep, port = text.rpartition(":")
        numeric = port.isascii() and port.isdigit()
        if not sep or not host or not numeric or not 0 < int(port) < 65536:
            raise ConfigError(f"api_bind must be HOST:PORT, got {text!r}", setting=key)
        return text
    if key == "store_url":
        text = str(raw)
        if not text.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError(
                "store_url must start with sqlite:/// or postgresql://", setting=key
            )
        return text
    return str(raw)


def load_settings(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> Settings:
    """Resolve settings from ``env`` (default ``os.environ``) and the TOML file."""
    env = os.environ if env is None else env
    home = home or Path(env.get("SIMTRUST_HOME", "~/.simtrust"))
    home = home.expanduser()
    config_file = env.get("SIMTRUST_CONFIG")
    path = Path(config_file).expanduser() if config_file else home / "simtrust.toml"
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    elif config_file:
        raise ConfigError(f"config file {path} does not exist")
    for key, var in _ENV.items():
        if var in env:
            values[key] = env[var]
    return _defaults_for(home, values)
