"""Settings: environment variables over an optional TOML file over defaults.

Precedence (highest first): ``SIMTRUST_*`` environment variables, the TOML
file (``SIMTRUST_CONFIG``, else ``$SIMTRUST_HOME/simtrust.toml`` if present),
built-in defaults. The data directory defaults to ``~/.simtrust``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from simtrust.errors import ConfigError

__all__ = ["Settings", "load_settings", "usable_cores"]

_DEFAULT_BIND = "127.0.0.1:8470"


def usable_cores() -> int:
    """The cores this process may run on (worker counts default to it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings of one simtrust process.

    ``store_url`` is ``sqlite:///ABSOLUTE/PATH`` or ``postgresql://...``.
    """

    home: Path
    store_url: str
    api_bind: str = _DEFAULT_BIND
    api_workers: int = 0
    api_tls_cert: str = ""
    api_tls_key: str = ""
    master_key_file: Path = field(default=Path())
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    nats_url: str = "nats://127.0.0.1:4222"
    network_id: str = "simtrust-local"
    max_body_bytes: int = 1_048_576
    firmware_max_bytes: int = 64 * 1_048_576
    log_level: str = "INFO"
    anchor_interval_s: float = 60.0
    energy_clear_interval_s: float = 60.0
    diameter_bind: str = ""
    diameter_origin_host: str = "hss.localdomain"
    diameter_origin_realm: str = "localdomain"
    diameter_peers: str = ""
    diameter_tls_cert: str = ""
    diameter_tls_key: str = ""
    diameter_tls_ca: str = ""
    sbi_bind: str = ""
    sbi_workers: int = 0
    radius_workers: int = 1
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    nrf_url: str = ""
    nrf_public_key: str = ""
    nrf_instance_id: str = ""
    udm_instance_id: str = ""
    bootstrap_bind: str = ""
    bootstrap_naf_fqdn: str = "localhost"
    bootstrap_workers: int = 0
    bootstrap_bsf_domain: str = "bsf.mnc001.mcc001.pub.3gppnetwork.org"
    radius_bind: str = ""
    radius_acct_bind: str = ""
    radius_tcp_bind: str = ""
    radius_tcp_acct_bind: str = ""
    radsec_bind: str = ""
    lwm2m_bind: str = ""
    lwm2m_bootstrap_bind: str = ""
    lwm2m_public_host: str = "localhost"
    tunnel_vici: str = ""
    tunnel_dir: str = ""
    tunnel_netns: str = ""
    public_base_url: str = ""
    vc_public_verify: bool = False
    vc_public_verify_per_minute: int = 60
    #: Requests per minute per address (and per client_id at PAR) to the
    #: unauthenticated OpenID4VCI endpoints (PAR, nonce).
    oid4vci_per_minute: int = 60
    #: A JSON file {"wallet provider iss": public JWK}; when set, wallets authenticate
    #: with a wallet attestation at PAR and the token endpoint.
    wallet_providers: str = ""
    #: With wallet providers: the attestation PoP must carry a challenge from this
    #: server (draft-ietf-oauth-attestation-based-client-auth §8).
    wallet_attestation_challenge: bool = False
    capability_datasets: str = ""
    market_callback_allow: str = ""
    #: DIDs whose OperatorCredentials admit partner operators (empty: open consortium).
    market_operator_issuers: str = ""
    #: File holding this operator's own OperatorCredential (a vc+jwt) for its partners.
    market_operator_credential: str = ""
    storm_limits: str = ""
    fraud_consortium: str = ""
    ledger_validators: str = ""

    @property
    def api_host(self) -> str:
        return self.api_bind.rsplit(":", 1)[0]

    @property
    def api_port(self) -> int:
        return int(self.api_bind.rsplit(":", 1)[1])

    @property
    def api_worker_count(self) -> int:
        """API worker processes: ``api_workers``, or one per usable core when 0."""
        return self.api_workers or usable_cores()

    @property
    def sbi_worker_count(self) -> int:
        """SBI worker processes: ``sbi_workers``, or one per usable core when 0 (1: the
        SBI is served by the ``serve`` process itself)."""
        return self.sbi_workers or usable_cores()

    @property
    def radius_worker_count(self) -> int:
        """RADIUS (UDP) worker processes: ``radius_workers`` (default 1: the UDP listeners
        run in the ``serve`` process itself), or one per usable core when 0. One is the
        default because it measured faster on 2 cores (docs/decisions/aaa-workers.md)."""
        return self.radius_workers or usable_cores()

    @property
    def bootstrap_worker_count(self) -> int:
        """Bootstrap listener processes: ``bootstrap_workers``, or one per usable core when
        0 (1: the listener runs in the ``serve`` process itself)."""
        return self.bootstrap_workers or usable_cores()

    @property
    def callback_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Non-public networks that TMF hub callbacks may still reach (empty: none)."""
        return tuple(ipaddress.ip_network(p, strict=False)
                     for p in self.market_callback_allow.split(",") if p)

    @property
    def operator_issuers(self) -> tuple[str, ...]:
        """DIDs whose OperatorCredentials admit partner operators (empty: open consortium)."""
        return tuple(p for p in self.market_operator_issuers.split(",") if p)

    @property
    def public_url(self) -> str:
        """Base URL under which relying parties reach this API (status lists, did:web).

        ``public_base_url`` when set; else ``https://localhost:PORT`` of the API bind.
        """
        return self.public_base_url or f"https://localhost:{self.api_port}"

    @property
    def diameter_peer_hosts(self) -> frozenset[str]:
        """The Origin-Host values allowed to connect to the Diameter listener."""
        return frozenset(p.strip() for p in self.diameter_peers.split(",") if p.strip())

    @property
    def storm_rates(self) -> dict[str, tuple[float, float]]:
        """Admission limits of the listeners: scope → (per second, burst); empty: off.

        ``storm_limits`` reads ``tenant=500/2000,tac=100/500,cell=20/100``; a scope
        left out is not limited.
        """
        return _storm_rates(self.storm_limits)

    @property
    def datasets(self) -> dict[str, str]:
        """External HTTP datasets the enforcement point proxies: name → upstream base URL."""
        out = {}
        for item in self.capability_datasets.split(","):
            name, _, url = item.strip().partition("=")
            if name:
                out[name.strip()] = url.strip().rstrip("/")
        return out

    @property
    def validator_endpoints(self) -> tuple[tuple[str, Path], ...]:
        """The consortium validators the dashboard asks for their health: (HOST:PORT, key file).

        ``ledger_validators`` reads ``HOST:PORT=KEY_FILE`` joined by ``,`` (each
        validator's API and a file holding an operator key of that validator).
        """
        return _validator_endpoints(self.ledger_validators)

    def with_home(self, home: Path) -> Settings:
        """Settings re-rooted at another data directory (default paths follow)."""
        return _defaults_for(home, {})


_ENV = {
    "store_url": "SIMTRUST_STORE_URL",
    "api_bind": "SIMTRUST_API_BIND",
    "api_workers": "SIMTRUST_API_WORKERS",
    "api_tls_cert": "SIMTRUST_API_TLS_CERT",
    "api_tls_key": "SIMTRUST_API_TLS_KEY",
    "master_key_file": "SIMTRUST_MASTER_KEY_FILE",
    "mqtt_url": "SIMTRUST_MQTT_URL",
    "nats_url": "SIMTRUST_NATS_URL",
    "network_id": "SIMTRUST_NETWORK_ID",
    "max_body_bytes": "SIMTRUST_MAX_BODY_BYTES",
    "firmware_max_bytes": "SIMTRUST_FIRMWARE_MAX_BYTES",
    "log_level": "SIMTRUST_LOG_LEVEL",
    "anchor_interval_s": "SIMTRUST_ANCHOR_INTERVAL_S",
    "energy_clear_interval_s": "SIMTRUST_ENERGY_CLEAR_INTERVAL_S",
    "diameter_bind": "SIMTRUST_DIAMETER_BIND",
    "diameter_origin_host": "SIMTRUST_DIAMETER_ORIGIN_HOST",
    "diameter_origin_realm": "SIMTRUST_DIAMETER_ORIGIN_REALM",
    "diameter_peers": "SIMTRUST_DIAMETER_PEERS",
    "diameter_tls_cert": "SIMTRUST_DIAMETER_TLS_CERT",
    "diameter_tls_key": "SIMTRUST_DIAMETER_TLS_KEY",
    "diameter_tls_ca": "SIMTRUST_DIAMETER_TLS_CA",
    "sbi_bind": "SIMTRUST_SBI_BIND",
    "sbi_workers": "SIMTRUST_SBI_WORKERS",
    "radius_workers": "SIMTRUST_RADIUS_WORKERS",
    "tls_cert": "SIMTRUST_TLS_CERT",
    "tls_key": "SIMTRUST_TLS_KEY",
    "tls_client_ca": "SIMTRUST_TLS_CLIENT_CA",
    "nrf_url": "SIMTRUST_NRF_URL",
    "nrf_public_key": "SIMTRUST_NRF_PUBLIC_KEY",
    "nrf_instance_id": "SIMTRUST_NRF_INSTANCE_ID",
    "udm_instance_id": "SIMTRUST_UDM_INSTANCE_ID",
    "bootstrap_bind": "SIMTRUST_BOOTSTRAP_BIND",
    "bootstrap_naf_fqdn": "SIMTRUST_BOOTSTRAP_NAF_FQDN",
    "bootstrap_workers": "SIMTRUST_BOOTSTRAP_WORKERS",
    "bootstrap_bsf_domain": "SIMTRUST_BOOTSTRAP_BSF_DOMAIN",
    "radius_bind": "SIMTRUST_RADIUS_BIND",
    "radius_acct_bind": "SIMTRUST_RADIUS_ACCT_BIND",
    "radius_tcp_bind": "SIMTRUST_RADIUS_TCP_BIND",
    "radius_tcp_acct_bind": "SIMTRUST_RADIUS_TCP_ACCT_BIND",
    "radsec_bind": "SIMTRUST_RADSEC_BIND",
    "lwm2m_bind": "SIMTRUST_LWM2M_BIND",
    "lwm2m_bootstrap_bind": "SIMTRUST_LWM2M_BOOTSTRAP_BIND",
    "lwm2m_public_host": "SIMTRUST_LWM2M_PUBLIC_HOST",
    "tunnel_vici": "SIMTRUST_TUNNEL_VICI",
    "tunnel_dir": "SIMTRUST_TUNNEL_DIR",
    "tunnel_netns": "SIMTRUST_TUNNEL_NETNS",
    "public_base_url": "SIMTRUST_PUBLIC_BASE_URL",
    "vc_public_verify": "SIMTRUST_VC_PUBLIC_VERIFY",
    "vc_public_verify_per_minute": "SIMTRUST_VC_PUBLIC_VERIFY_PER_MINUTE",
    "oid4vci_per_minute": "SIMTRUST_OID4VCI_PER_MINUTE",
    "wallet_providers": "SIMTRUST_WALLET_PROVIDERS",
    "wallet_attestation_challenge": "SIMTRUST_WALLET_ATTESTATION_CHALLENGE",
    "capability_datasets": "SIMTRUST_CAPABILITY_DATASETS",
    "market_callback_allow": "SIMTRUST_MARKET_CALLBACK_ALLOW",
    "market_operator_issuers": "SIMTRUST_MARKET_OPERATOR_ISSUERS",
    "market_operator_credential": "SIMTRUST_MARKET_OPERATOR_CREDENTIAL",
    "storm_limits": "SIMTRUST_STORM_LIMITS",
    "fraud_consortium": "SIMTRUST_FRAUD_CONSORTIUM",
    "ledger_validators": "SIMTRUST_LEDGER_VALIDATORS",
}

_STORM_SCOPES = ("tenant", "tac", "cell")


def _validator_endpoints(text: str) -> tuple[tuple[str, Path], ...]:
    out = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        address, _, key_file = item.partition("=")
        host, sep, port = address.strip().rpartition(":")
        if (not sep or not host or not (port.isascii() and port.isdigit())
                or not 0 < int(port) < 65536 or not key_file.strip()):
            raise ConfigError(
                "ledger_validators must read HOST:PORT=KEY_FILE joined by ',', got "
                f"{item!r}", setting="ledger_validators")
        out.append((address.strip(), Path(key_file.strip()).expanduser()))
    return tuple(out)


_JWK_MEMBERS = {"EC": ("P-256", ("x", "y")), "OKP": ("Ed25519", ("x",))}


def _wallet_providers(text: str) -> str:
    """Check the wallet providers file at start: ``{"iss": public JWK}``, P-256 or Ed25519
    (the attestation's algorithms), no private member; one line naming what is wrong."""
    key = "wallet_providers"
    path = Path(text).expanduser().resolve()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(f"{key}: no readable file at {path}", setting=key) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: {path} is not JSON ({str(exc).splitlines()[0]})",
                          setting=key) from None
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(f"{key}: {path} must map each provider's iss to its public JWK",
                          setting=key)
    for iss, jwk in doc.items():
        kind = _JWK_MEMBERS.get(str(jwk.get("kty"))) if isinstance(jwk, dict) else None
        if not iss or kind is None or jwk.get("crv") != kind[0] or not all(
                isinstance(jwk.get(m), str) and jwk[m] for m in kind[1]):
            raise ConfigError(f"{key}: provider {iss!r} needs a public JWK, EC P-256 (x, y) or"
                              " OKP Ed25519 (x)", setting=key)
        if "d" in jwk:
            raise ConfigError(f"{key}: provider {iss!r} has a private key member (d); give"
                              " only the public key", setting=key)
    return str(path)


def _storm_rates(text: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        scope, _, rate = item.partition("=")
        per_s, _, burst = rate.partition("/")
        scope = scope.strip()
        try:
            pair = (float(per_s), float(burst))
        except ValueError:
            pair = (0.0, 0.0)
        if (scope not in _STORM_SCOPES or scope in out or not math.isfinite(pair[0] + pair[1])
                or pair[0] <= 0 or pair[1] < 1):
            raise ConfigError(
                "storm_limits must read SCOPE=PER_S/BURST joined by ',' (scopes tenant, tac, "
                f"cell; rate > 0, burst >= 1), got {item!r}", setting="storm_limits")
        out[scope] = pair
    return out



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
    if key in ("max_body_bytes", "firmware_max_bytes"):
        try:
            value = int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be an integer", setting=key) from exc
        # a pushed package's Block1 NUM has 20 bits: 1 GiB at 1 KiB blocks (RFC 7959 §2.2)
        if value <= 0 or (key == "firmware_max_bytes" and value > 1 << 30):
            raise ConfigError(f"{key} must be positive (firmware: at most 1 GiB)",
                              setting=key)
        return value
    if key in ("anchor_interval_s", "energy_clear_interval_s"):
        try:
            seconds = float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be a number of seconds", setting=key) from exc
        if seconds < 0:
            raise ConfigError(f"{key} must not be negative (0 disables)", setting=key)
        return seconds
    if key == "api_bind" or (
        key in ("diameter_bind", "sbi_bind", "bootstrap_bind") and str(raw)
    ):
        text = str(raw)
        host, sep, port = text.rpartition(":")
        numeric = port.isascii() and port.isdigit()
        if not sep or not host or not numeric or not 0 <= int(port) < 65536 or (
            key == "api_bind" and int(port) == 0
        ):
            raise ConfigError(f"{key} must be HOST:PORT, got {text!r}", setting=key)
        return text
    if key in ("api_workers", "sbi_workers", "radius_workers", "bootstrap_workers"):
        try:
            count = int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be an integer", setting=key) from exc
        if not 0 <= count <= 256:
            raise ConfigError(f"{key} must be 0 (one per core) to 256", setting=key)
        return count
    if key in ("tls_cert", "tls_key", "tls_client_ca", "nrf_public_key", "api_tls_cert",
               "api_tls_key", "diameter_tls_cert", "diameter_tls_key",
               "diameter_tls_ca") and str(raw):
        path = Path(str(raw)).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{key}: no file at {path}", setting=key)
        return str(path)
    if key == "nrf_url" and str(raw):
        text = str(raw).rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ConfigError("nrf_url must be an http:// or https:// URL", setting=key)
        return text
    if key in ("nrf_instance_id", "udm_instance_id") and str(raw):
        try:
            return str(uuid.UUID(str(raw)))
        except ValueError as exc:
            raise ConfigError(f"{key} must be a UUID", setting=key) from exc
    if key in ("diameter_origin_host", "diameter_origin_realm"):
        text = str(raw).strip()
        if not text or any(c.isspace() for c in text) or not text.isascii():
            raise ConfigError(f"{key} must be a DiameterIdentity (FQDN)", setting=key)
        return text
    if key in ("radius_bind", "radius_acct_bind", "radius_tcp_bind", "radius_tcp_acct_bind",
               "radsec_bind", "lwm2m_bind", "lwm2m_bootstrap_bind"):
        text = str(raw).strip()
        host, sep, port = text.rpartition(":")
        numeric = port.isascii() and port.isdigit()
        if text and (not sep or not host or not numeric or not 0 <= int(port) < 65536):
            raise ConfigError(f"{key} must be HOST:PORT (empty: off), got {text!r}", setting=key)
        return text
    if key == "tunnel_vici":
        text = str(raw).strip().removeprefix("unix://")
        if text and not text.startswith("/"):
            raise ConfigError("tunnel_vici is the absolute path (or unix:// URI) of charon's"
                              " VICI socket (empty: off)", setting=key)
        return text
    if key == "tunnel_dir":
        text = str(raw).strip()
        if text and not text.startswith("/"):
            raise ConfigError("tunnel_dir is the absolute path of the gateway's swanctl"
                              " directory (empty: stored tunnels are not applied)", setting=key)
        return text
    if key == "tunnel_netns":
        text = str(raw).strip()
        if text and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
            raise ConfigError("tunnel_netns is a network namespace name", setting=key)
        return text
    if key == "storm_limits":
        text = str(raw).strip()
        _storm_rates(text)
        return text
    if key == "ledger_validators":
        text = str(raw).strip()
        _validator_endpoints(text)
        return text
    if key == "market_operator_issuers":
        parts = [p.strip() for p in str(raw).split(",") if p.strip()]
        for part in parts:
            if not part.startswith("did:") or any(c.isspace() for c in part):
                raise ConfigError(f"{key} must be DIDs joined by ',', got {part!r}",
                                  setting=key)
        return ",".join(parts)
    if key == "market_callback_allow":
        text = ",".join(p.strip() for p in str(raw).split(",") if p.strip())
        for part in text.split(",") if text else ():
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{key} must be IP networks joined by ',', got {part!r}",
                                  setting=key) from exc
        return text
    if key == "wallet_providers" and str(raw).strip():
        return _wallet_providers(str(raw).strip())
    if key in ("vc_public_verify", "wallet_attestation_challenge"):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{key} must be true or false, got {raw!r}", setting=key)
        return text in ("1", "true", "yes", "on")
    if key in ("vc_public_verify_per_minute", "oid4vci_per_minute"):
        try:
            rate = int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be an integer", setting=key) from exc
        if rate <= 0:
            raise ConfigError(f"{key} must be positive", setting=key)
        return rate
    if key == "public_base_url":
        text = str(raw).strip().rstrip("/")
        if text and (
            not text.startswith("https://")
            or len(text) <= len("https://")
            or any(c.isspace() for c in text)
            or any(c in text for c in "?#")
        ):
            raise ConfigError(
                f"{key} must be an https:// URL without query or fragment, got {text!r}",
                setting=key,
            )
        return text
    if key == "capability_datasets":
        text = str(raw).strip()
        for item in filter(None, (i.strip() for i in text.split(","))):
            name, _, url = item.partition("=")
            if (
                not name.strip()
                or not all(c.isalnum() or c in "-_" for c in name.strip())
                or not url.strip().startswith(("http://", "https://"))
            ):
                raise ConfigError(
                    f"{key} is NAME=http(s)://URL[,NAME=URL...], got {item!r}", setting=key
                )
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
