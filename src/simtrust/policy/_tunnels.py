"""Enterprise IPsec tunnels per APN, rendered as strongSwan ``swanctl.conf`` (swanctl.conf(5)):
IKEv2 (RFC 7296) between the operator's gateway and the enterprise's endpoint, PSK or
certificates from the enterprise's PKI, traffic selectors from the APN's address pool and
the enterprise's prefixes (RFC 7296 §2.9); the matching nftables guard on the gateway
lets the APN's traffic leave only IPsec-protected (``rt ipsec missing`` drops the rest);
``swanctl --list-sas`` output parsed into tunnel states, and an alert when one is down.

Certificate authentication (RFC 7296 §2.15, AUTH with the end's private key; RFC 7296
§3.6/§3.7 CERT and CERTREQ): each end names its certificate and the CA it trusts for the
other end as absolute paths (swanctl.conf(5) ``certs``, ``cacerts``); the private key
must sit in the ``private/`` folder of the swanctl directory that ``swanctl --load-all``
reads (``SWANCTL_DIR``), which :func:`install_tunnel_credentials` lays out. The peer's
identity must be a subjectAltName of its certificate.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from simtrust.errors import InvalidInput

__all__ = [
    "TunnelAlert",
    "TunnelSpec",
    "install_tunnel_credentials",
    "parse_list_sas",
    "render_swanctl",
    "render_tunnel_guard",
    "tunnel_alerts",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_ID = re.compile(r"[A-Za-z0-9.@:=,_-]{1,128}")
#: Defaults that need only strongSwan's built-in plugins (aes, sha2, gmp): RFC 8247 §2.1
#: MUST/SHOULD algorithms.
IKE_PROPOSALS = ("aes256-sha256-modp3072", "aes128-sha256-modp2048")
ESP_PROPOSALS = ("aes256-sha256-modp3072", "aes128-sha256-modp2048")


def _networks(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value, strict=True)))
        except ValueError as exc:
            raise InvalidInput(f"{what}: {value!r} is not a network", field=what) from exc
    if not out:
        raise InvalidInput(f"{what}: at least one prefix", field=what)
    return tuple(out)


def _address(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InvalidInput(f"{what}: {value!r} is not an IP address", field=what) from exc


@dataclass(frozen=True, slots=True)
class TunnelSpec:
    """One enterprise tunnel for one APN, seen from the operator's gateway."""

    name: str
    tenant_id: str
    apn: str
    local_address: str
    remote_address: str
    local_id: str
    remote_id: str
    apn_pool: tuple[str, ...]
    enterprise_prefixes: tuple[str, ...]
    auth: Literal["psk", "pubkey"] = "psk"
    psk: bytes | None = field(default=None, repr=False)
    local_cert: str = ""
    remote_ca: str = ""
    ike_proposals: tuple[str, ...] = IKE_PROPOSALS
    esp_proposals: tuple[str, ...] = ESP_PROPOSALS
    dpd_delay_s: int = 30

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidInput("tunnel name is 1-31 of a-z, 0-9, -", field="name")
        object.__setattr__(self, "local_address", _address(self.local_address, "local_address"))
        object.__setattr__(self, "remote_address",
                           _address(self.remote_address, "remote_address"))
        for what in ("local_id", "remote_id"):
            if not _ID.fullmatch(getattr(self, what)):
                raise InvalidInput(f"{what}: an FQDN, e-mail or address identity", field=what)
        object.__setattr__(self, "apn_pool", _networks(self.apn_pool, "apn_pool"))
        object.__setattr__(self, "enterprise_prefixes",
                           _networks(self.enterprise_prefixes, "enterprise_prefixes"))
        if self.auth == "psk" and (self.psk is None or len(self.psk) < 16):
            raise InvalidInput("PSK tunnels need a key of 16 bytes or more", field="psk")
        if self.auth == "pubkey" and not (self.local_cert and self.remote_ca):
            raise InvalidInput("certificate tunnels name local_cert and remote_ca",
                               field="local_cert")
        for what in ("local_cert", "remote_ca"):
            path = getattr(self, what)
            if path and not re.fullmatch(r"/[A-Za-z0-9._/-]{1,250}", path):
                raise InvalidInput(f"{what}: an absolute file path of [A-Za-z0-9._/-]",
                                   field=what)
        for proposal in (*self.ike_proposals, *self.esp_proposals):
            if not re.fullmatch(r"[a-z0-9_-]{3,80}", proposal):
                raise InvalidInput(f"bad proposal {proposal!r}", field="proposals")

    def mirrored(self, *, local_cert: str | None = None,
                 remote_ca: str | None = None) -> TunnelSpec:
        """The same tunnel as the enterprise's endpoint configures it (with certificates,
        the enterprise end's own certificate and the CA it trusts for the gateway)."""
        return TunnelSpec(self.name, self.tenant_id, self.apn, self.remote_address,
                          self.local_address, self.remote_id, self.local_id,
                          self.enterprise_prefixes, self.apn_pool, self.auth, self.psk,
                          self.local_cert if local_cert is None else local_cert,
                          self.remote_ca if remote_ca is None else remote_ca,
                          ike_proposals=self.ike_proposals, esp_proposals=self.esp_proposals,
                          dpd_delay_s=self.dpd_delay_s)


def render_swanctl(specs: Sequence[TunnelSpec], *, start: bool = True) -> str:
    """``connections`` and ``secrets`` sections for ``swanctl --load-all --file``.
    ``start``: initiate at load (the gateway); otherwise trap (come up on traffic)."""
    lines = ["# simtrust enterprise tunnels (swanctl.conf(5)); generated, do not edit", "",
             "connections {"]
    for s in specs:
        auth_local = ["auth = psk"] if s.auth == "psk" else ["auth = pubkey",
                                                           f"certs = {s.local_cert}"]
        auth_remote = ["auth = psk"] if s.auth == "psk" else ["auth = pubkey",
                                                            f"cacerts = {s.remote_ca}"]
        lines += [
            f"  {s.name} {{",
            "    version = 2",
            f"    local_addrs = {s.local_address}",
            f"    remote_addrs = {s.remote_address}",
            f"    proposals = {','.join(s.ike_proposals)}",
            f"    dpd_delay = {s.dpd_delay_s}s",
            "    local {", *(f"      {a}" for a in auth_local), f"      id = {s.local_id}", "    }",
            "    remote {", *(f"      {a}" for a in auth_remote), f"      id = {s.remote_id}",
            "    }",
            "    children {",
            f"      {s.name} {{",
            f"        local_ts = {','.join(s.apn_pool)}",
            f"        remote_ts = {','.join(s.enterprise_prefixes)}",
            f"        esp_proposals = {','.join(s.esp_proposals)}",
            f"        start_action = {'start' if start else 'trap'}",
            "        dpd_action = restart",
            "        close_action = start" if start else "        close_action = trap",
            "      }",
            "    }",
            "  }",
        ]
    lines += ["}", "", "secrets {"]
    for s in specs:
        if s.auth == "psk" and s.psk is not None:
            lines += [f"  ike-{s.name} {{", f"    id-1 = {s.local_id}",
                      f"    id-2 = {s.remote_id}", f"    secret = 0x{s.psk.hex()}", "  }"]
    lines += ["}", ""]
    return "\n".join(lines)


def install_tunnel_credentials(directory: Path, name: str, *, cert_pem: bytes,
                               key_pem: bytes, ca_pem: bytes) -> tuple[str, str]:
    """Lay out one end's credentials in a swanctl directory (``x509/``, ``x509ca/`` and
    ``private/``, the key 0600 in a 0700 folder) for ``SWANCTL_DIR=<directory> swanctl
    --load-all``; returns (certificate path, CA path) for ``local_cert``/``remote_ca``.
    Keys are PEM (RSA with strongSwan's gmp plugin; ECDSA needs its openssl plugin)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput("tunnel name is 1-31 of a-z, 0-9, -", field="name")
    for what, pem in (("cert_pem", cert_pem), ("key_pem", key_pem), ("ca_pem", ca_pem)):
        if not pem.lstrip().startswith(b"-----BEGIN "):
            raise InvalidInput(f"{what} is not PEM", field=what)
    paths = {}
    for folder, pem, mode in (("x509", cert_pem, 0o644), ("x509ca", ca_pem, 0o644),
                              ("private", key_pem, 0o600)):
        sub = directory / folder
        sub.mkdir(mode=0o700 if folder == "private" else 0o755, parents=True, exist_ok=True)
        path = sub / f"{name}.pem"
        path.touch(mode=mode)
        path.write_bytes(pem)
        paths[folder] = str(path.resolve())
    return paths["x509"], paths["x509ca"]


def render_tunnel_guard(specs: Sequence[TunnelSpec], *, table: str = "simtrust_tunnels") -> str:
    """An nftables table for the gateway: traffic from an APN's pool to its enterprise's
    prefixes is forwarded only when an IPsec policy covers it (``rt ipsec exists``), so a
    tunnel that is down never lets the traffic out in clear."""
    lines = [f"table inet {table} {{", "  chain forward {",
             "    type filter hook forward priority filter; policy accept;"]
    for s in specs:
        pool = ", ".join(s.apn_pool)
        prefixes = ", ".join(s.enterprise_prefixes)
        lines.append(f"    ip saddr {{ {pool} }} ip daddr {{ {prefixes} }} rt ipsec missing "
                     f"counter drop comment \"{s.name}: only through the tunnel\"")
        lines.append(f"    ip saddr {{ {pool} }} ip daddr != {{ {prefixes} }} counter drop "
                     f"comment \"{s.name}: the APN reaches only its enterprise\"")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


_SA = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*): #\d+, (?P<state>[A-Z_]+), IKEv2")
_CHILD = re.compile(r"^\s+(?P<name>[a-z0-9][a-z0-9-]*): #\d+, reqid \d+, (?P<state>[A-Z_]+)")


def parse_list_sas(text: str) -> dict[str, dict[str, str]]:
    """``swanctl --list-sas`` output → ``{name: {"ike": state, "child": state}}``."""
    out: dict[str, dict[str, str]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _SA.match(line)
        if m:
            current = m["name"]
            out.setdefault(current, {})["ike"] = m["state"]
            continue
        c = _CHILD.match(line)
        if c and current is not None:
            out[current]["child"] = c["state"]
    return out


@dataclass(frozen=True, slots=True)
class TunnelAlert:
    """``tunnel-down``: an expected tunnel has no established IKE SA or no installed
    CHILD SA."""

    tunnel: str
    tenant_id: str
    apn: str
    state: Mapping[str, str]
    at: str
    kind: str = "tunnel-down"
    imsi: str = ""
    webhook_url: str | None = None

    @property
    def source(self) -> str:
        return "policy"

    @property
    def summary(self) -> str:
        if "removal" in self.state:
            return (f"tunnel {self.tunnel} for APN {self.apn} was not removed "
                    f"(it may still carry traffic): {self.state['apply']}")
        if "apply" in self.state and self.tunnel == "*":
            return f"the gateway's tunnel configuration was not applied: {self.state['apply']}"
        if "apply" in self.state:
            return f"tunnel {self.tunnel} for APN {self.apn} was not applied: {self.state['apply']}"
        return (f"tunnel {self.tunnel} for APN {self.apn} is down "
                f"(IKE {self.state.get('ike', 'none')}, CHILD {self.state.get('child', 'none')})")

    def document(self) -> dict[str, Any]:
        return {"type": "simtrust.policy.tunnel-down", "kind": self.kind,
                "tenant_id": self.tenant_id, "tunnel": self.tunnel, "apn": self.apn,
                "state": dict(self.state), "summary": self.summary, "at": self.at}


def tunnel_alerts(specs: Sequence[TunnelSpec], states: Mapping[str, Mapping[str, str]],
                  at: str, *, need_child: bool = True) -> list[TunnelAlert]:
    """One alert per tunnel that is not up in ``states`` (from :func:`parse_list_sas`)."""
    out = []
    for s in specs:
        state = states.get(s.name, {})
        up = state.get("ike") == "ESTABLISHED" and (
            not need_child or state.get("child") == "INSTALLED")
        if not up:
            out.append(TunnelAlert(s.name, s.tenant_id, s.apn, dict(state), at))
    return out
