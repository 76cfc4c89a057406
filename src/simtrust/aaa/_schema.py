"""Tables of the AAA component: RADIUS gateway clients, APN access settings and
second-level credentials, accounting sessions (the usage records), and the
EAP-AKA pseudonyms and fast re-authentication identities handed to peers.

Gateway shared secrets, APN passwords and re-authentication keys are sealed by
the keyring (AAD bound to the row's identity) and listed in ``SEALED_COLUMNS`` so
a master-key rotation re-wraps them.
"""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "aaa",
        1,
        "RADIUS clients, APN access settings and users, accounting sessions",
        """
        CREATE TABLE aaa_clients (
            id {serial},
            cidr TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            secret_sealed {blob} NOT NULL,
            coa_port INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE aaa_apn_access (
            tenant_id TEXT NOT NULL,
            apn TEXT NOT NULL,
            auth TEXT NOT NULL,
            session_timeout INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, apn)
        );
        CREATE TABLE aaa_apn_users (
            id {serial},
            tenant_id TEXT NOT NULL,
            apn TEXT NOT NULL,
            username TEXT NOT NULL,
            password_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, apn, username)
        );
        CREATE TABLE aaa_sessions (
            session_key TEXT PRIMARY KEY,
            acct_session_id TEXT NOT NULL,
            client_id {bigint} NOT NULL,
            imsi TEXT,
            iccid TEXT,
            tenant_id TEXT,
            apn TEXT,
            msisdn TEXT,
            imeisv TEXT,
            framed_ip TEXT,
            nas_ip TEXT,
            serving_plmn TEXT,
            visited_plmn TEXT,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            stopped_at TEXT,
            in_octets {bigint} NOT NULL DEFAULT 0,
            out_octets {bigint} NOT NULL DEFAULT 0,
            in_packets {bigint} NOT NULL DEFAULT 0,
            out_packets {bigint} NOT NULL DEFAULT 0,
            session_time {bigint} NOT NULL DEFAULT 0,
            terminate_cause INTEGER,
            updates INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX aaa_sessions_iccid ON aaa_sessions (iccid, started_at);
        CREATE INDEX aaa_sessions_imsi ON aaa_sessions (imsi, status)
        """,
    ),
    Migration(
        "aaa",
        2,
        "find a SIM by the MSISDN its sessions reported (the dashboard's search)",
        "CREATE INDEX aaa_sessions_msisdn ON aaa_sessions (msisdn)",
    ),
    Migration(
        "aaa",
        3,
        "EAP-AKA pseudonyms and fast re-authentication identities kept across restarts",
        """
        CREATE TABLE aaa_eap_identities (
            identity TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            imsi TEXT NOT NULL,
            method INTEGER NOT NULL,
            counter INTEGER NOT NULL DEFAULT 0,
            keys_sealed {blob},
            created_at TEXT NOT NULL
        );
        CREATE INDEX aaa_eap_identities_created ON aaa_eap_identities (created_at)
        """,
    ),
]

#: Sealed columns the runtime re-wraps when the master key rotates.
SEALED_COLUMNS = [
    SealedColumn("aaa_clients", "id", "secret_sealed"),
    SealedColumn("aaa_apn_users", "id", "password_sealed"),
    SealedColumn("aaa_eap_identities", "identity", "keys_sealed"),
]
