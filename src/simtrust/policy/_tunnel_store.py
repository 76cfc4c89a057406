"""Enterprise tunnels stored per APN (issue 21: tunnels "set up and torn down by the
operator as the enterprise's APN changes"): at most one :class:`TunnelSpec` per (tenant,
APN), its connection name unique on the operator's gateways (swanctl.conf(5) connection
names are one namespace per charon). The PSK is sealed with the keyring (envelope
encryption, AAD bound to the tunnel name), never returned by :meth:`TunnelStore.describe`.
Every change is audited in its transaction; ``on_change`` listeners (the VICI event
collector of ``simtrust serve``) hear of it after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simtrust.alerts import AuditWriter
from simtrust.crypto import Keyring
from simtrust.errors import Conflict, NotFound
from simtrust.policy._tunnels import TunnelSpec
from simtrust.store import Database

__all__ = ["TunnelStore", "tunnel_psk_aad"]

_COLUMNS = ("name, tenant_id, apn, local_address, remote_address, local_id, remote_id,"
            " apn_pool, enterprise_prefixes, auth, psk_sealed, local_cert, remote_ca,"
            " ike_proposals, esp_proposals, dpd_delay_s, updated_at")


def tunnel_psk_aad(name: str) -> bytes:
    """AAD binding a sealed tunnel PSK to its connection name."""
    return f"simtrust/policy/tunnel/{name}/psk".encode()


class TunnelStore:
    """Tunnel specs per enterprise APN over one store."""

    def __init__(self, db: Database, keyring: Keyring, audit: AuditWriter,
                 clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keyring = keyring
        self._audit = audit
        self._clock = clock
        self.on_change: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return "TunnelStore()"

    def put(self, spec: TunnelSpec, *, actor: str) -> TunnelSpec:
        """Create or replace the tunnel of ``spec``'s (tenant, APN). Its name must not be
        another APN's tunnel (409)."""
        sealed = (None if spec.psk is None
                  else self._keyring.seal(spec.psk, tunnel_psk_aad(spec.name)))
        with self._db.transaction(durable=True):
            taken = self._db.query_one(
                "SELECT tenant_id, apn FROM policy_tunnels WHERE name = ?", (spec.name,))
            if taken is not None and (str(taken[0]), str(taken[1])) != (spec.tenant_id,
                                                                         spec.apn):
                raise Conflict("a tunnel of this name serves another APN", name=spec.name)
            self._db.execute("DELETE FROM policy_tunnels WHERE tenant_id = ? AND apn = ?",
                             (spec.tenant_id, spec.apn))
            self._db.execute(
                f"INSERT INTO policy_tunnels ({_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (spec.name, spec.tenant_id, spec.apn, spec.local_address, spec.remote_address,
                 spec.local_id, spec.remote_id, json.dumps(spec.apn_pool),
                 json.dumps(spec.enterprise_prefixes), spec.auth, sealed, spec.local_cert,
                 spec.remote_ca, json.dumps(spec.ike_proposals),
                 json.dumps(spec.esp_proposals), spec.dpd_delay_s,
                 self._clock().isoformat()))
            self._audit.append(actor=actor, action="tunnel.put",
                               subject=f"tunnel:{spec.name}", outcome="success",
                               tenant_id=spec.tenant_id)
        self._changed()
        return spec

    def delete(self, tenant_id: str, apn: str, *, actor: str) -> TunnelSpec:
        """Remove the APN's tunnel (the gateway tears it down at its next apply)."""
        with self._db.transaction(durable=True):
            spec = self.get(tenant_id, apn)
            self._db.execute("DELETE FROM policy_tunnels WHERE tenant_id = ? AND apn = ?",
                             (tenant_id, apn))
            self._audit.append(actor=actor, action="tunnel.delete",
                               subject=f"tunnel:{spec.name}", outcome="success",
                               tenant_id=tenant_id)
        self._changed()
        return spec

    def get(self, tenant_id: str, apn: str) -> TunnelSpec:
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM policy_tunnels"
            " WHERE tenant_id = ? AND apn = ?", (tenant_id, apn))
        if row is None:
            raise NotFound(f"no tunnel for APN {apn}", apn=apn)
        return self._spec(row)

    def find(self, name: str) -> TunnelSpec | None:
        """The tunnel of this connection name, if one is stored."""
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM policy_tunnels WHERE name = ?", (name,))
        return None if row is None else self._spec(row)

    def tunnels(self, tenant_id: str | None = None) -> list[TunnelSpec]:
        """Every tunnel (the gateway's set), or one tenant's, by name."""
        sql = f"SELECT {_COLUMNS} FROM policy_tunnels"
        params: tuple[str, ...] = ()
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params = (tenant_id,)
        return [self._spec(row) for row in self._db.query(sql + " ORDER BY name", params)]

    @staticmethod
    def describe(spec: TunnelSpec) -> dict[str, Any]:
        """A tunnel as the API shows it: everything but the PSK."""
        return {"name": spec.name, "tenant_id": spec.tenant_id, "apn": spec.apn,
                "local_address": spec.local_address, "remote_address": spec.remote_address,
                "local_id": spec.local_id, "remote_id": spec.remote_id,
                "apn_pool": list(spec.apn_pool),
                "enterprise_prefixes": list(spec.enterprise_prefixes), "auth": spec.auth,
                "psk_set": spec.psk is not None, "local_cert": spec.local_cert,
                "remote_ca": spec.remote_ca, "ike_proposals": list(spec.ike_proposals),
                "esp_proposals": list(spec.esp_proposals), "dpd_delay_s": spec.dpd_delay_s}

    def _spec(self, row: tuple[Any, ...]) -> TunnelSpec:
        name = str(row[0])
        psk = (None if row[10] is None
               else self._keyring.open(bytes(row[10]), tunnel_psk_aad(name)))
        return TunnelSpec(
            name, str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), str(row[6]),
            tuple(json.loads(str(row[7]))), tuple(json.loads(str(row[8]))),
            "psk" if str(row[9]) == "psk" else "pubkey", psk, str(row[11]), str(row[12]),
            ike_proposals=tuple(json.loads(str(row[13]))),
            esp_proposals=tuple(json.loads(str(row[14]))), dpd_delay_s=int(row[15]))

    def _changed(self) -> None:
        for listener in self.on_change:
            listener()
