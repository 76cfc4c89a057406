"""RADIUS clients (packet gateways): a source CIDR, a shared secret sealed at rest, a CoA port.

RFC 2865 §3: a server answers only clients it shares a secret with. A request
is attributed to the client whose CIDR holds its source address (the longest
prefix wins); the secret is unsealed once into memory and never leaves it
(reprs, logs, API answers show the CIDR and name only). RFC 5176 §3.1: the
gateway listens for Disconnect/CoA on ``coa_port`` (default 3799).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simtrust.audit import AuditLog
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, InvalidInput, NotFound
from simtrust.store import Database

__all__ = ["DEFAULT_COA_PORT", "GatewayClient", "GatewayClients"]

DEFAULT_COA_PORT = 3799
_RELOAD_S = 2.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class GatewayClient:
    """A configured RADIUS client; ``secret`` is never printed."""

    id: int
    network: Network
    name: str
    coa_port: int
    secret: bytes

    def __repr__(self) -> str:
        return f"GatewayClient(id={self.id}, cidr={str(self.network)!r}, name={self.name!r})"

    __str__ = __repr__

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "cidr": str(self.network), "name": self.name,
                "coa_port": self.coa_port}


def parse_cidr(text: str) -> Network:
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError as exc:
        raise InvalidInput(f"not a CIDR block: {text!r}", field="cidr") from exc


class GatewayClients:
    """The client table with an in-memory index by source address."""

    def __init__(self, db: Database, keyring: Keyring, audit: AuditLog,
                 clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: list[GatewayClient] = []
        self._by_address: dict[str, GatewayClient | None] = {}
        self._signature: tuple[Any, ...] | None = None
        self._next_check = 0.0

    def __repr__(self) -> str:
        return f"GatewayClients(loaded={len(self._clients)})"

    # -- writes ----------------------------------------------------------------

    def add(self, cidr: str, secret: str, *, actor: str, name: str = "",
            coa_port: int = DEFAULT_COA_PORT) -> GatewayClient:
        network = parse_cidr(cidr)
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not 1 <= len(raw) <= 128:
            raise InvalidInput("shared secret must be 1..128 octets", field="secret")
        if not 0 < int(coa_port) < 65536:
            raise InvalidInput("coa_port must be 1..65535", field="coa_port")
        label = (name or str(network)).strip()[:100]
        with self._db.transaction():
            if self._db.query_one("SELECT id FROM aaa_clients WHERE cidr = ?", (str(network),)):
                raise Conflict(f"a RADIUS client for {network} exists", cidr=str(network))
            sealed = self._keyring.seal(raw, b"aaa-client|" + str(network).encode())
            client_id = self._db.insert_returning_id(
                "INSERT INTO aaa_clients (cidr, name, secret_sealed, coa_port, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (str(network), label, sealed, int(coa_port), self._clock().isoformat()),
            )
            self._audit.append(
                actor=actor, action="radius-client.create", subject=f"radius-client:{network}",
                outcome="success", details={"id": client_id, "name": label,
                                            "coa_port": int(coa_port)},
            )
        self.reload()
        return self.get(client_id)

    def remove(self, ref: str, *, actor: str) -> GatewayClient:
        client = self.find_ref(ref)
        with self._db.transaction():
            self._db.execute("DELETE FROM aaa_clients WHERE id = ?", (client.id,))
            self._audit.append(
                actor=actor, action="radius-client.remove",
                subject=f"radius-client:{client.network}", outcome="success",
                details={"id": client.id},
            )
        self.reload()
        return client

    # -- reads -----------------------------------------------------------------

    def list(self) -> list[GatewayClient]:
        self._maybe_reload()
        return list(self._clients)

    def get(self, client_id: int) -> GatewayClient:
        self._maybe_reload()
        for client in self._clients:
            if client.id == client_id:
                return client
        self.reload()
        for client in self._clients:
            if client.id == client_id:
                return client
        raise NotFound(f"no RADIUS client {client_id}", id=client_id)

    def find_ref(self, ref: str) -> GatewayClient:
        """A client by id or by CIDR."""
        text = str(ref).strip()
        if (text.isascii() and text.isdigit()):
            return self.get(int(text))
        network = parse_cidr(text)
        self.reload()
        for client in self._clients:
            if client.network == network:
                return client
        raise NotFound(f"no RADIUS client for {network}", cidr=str(network))

    def match(self, address: str) -> GatewayClient | None:
        """The client a datagram from ``address`` belongs to (longest prefix), or None."""
        self._maybe_reload()
        hit = self._by_address.get(address, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        best: GatewayClient | None = None
        for client in self._clients:
            if ip.version == client.network.version and ip in client.network and (
                best is None or client.network.prefixlen > best.network.prefixlen
            ):
                best = client
        if len(self._by_address) > 65536:
            self._by_address.clear()
        self._by_address[address] = best
        return best

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + _RELOAD_S
        row = self._db.query_one("SELECT COUNT(*), MAX(id), MIN(id) FROM aaa_clients")
        if row is None or tuple(row) != self._signature:
            self.reload()

    def reload(self) -> None:
        rows = self._db.query(
            "SELECT id, cidr, name, secret_sealed, coa_port FROM aaa_clients ORDER BY id"
        )
        loaded = []
        for cid, cidr, name, sealed, coa_port in rows:
            secret = self._keyring.open(bytes(sealed), b"aaa-client|" + str(cidr).encode())
            loaded.append(GatewayClient(int(cid), ipaddress.ip_network(str(cidr)), str(name),
                                        int(coa_port), secret))
        signature = self._db.query_one("SELECT COUNT(*), MAX(id), MIN(id) FROM aaa_clients")
        with self._lock:
            self._clients = loaded
            self._by_address = {}
            self._signature = None if signature is None else tuple(signature)
            self._next_check = time.monotonic() + _RELOAD_S


_MISS: Any = object()
