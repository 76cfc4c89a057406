"""Tables of the policy component: every version of every policy, never overwritten."""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "NATS_MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "policy",
        1,
        "policy versions",
        """
        CREATE TABLE policy_versions (
            tenant_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            version INTEGER NOT NULL,
            active INTEGER NOT NULL,
            body TEXT NOT NULL,
            actor TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, scope, version)
        );
        CREATE INDEX policy_versions_tenant ON policy_versions (tenant_id, scope, version)
        """,
    ),
    Migration(
        "policy",
        2,
        "alert targets",
        """
        CREATE TABLE policy_alert_targets (
            tenant_id TEXT PRIMARY KEY,
            webhook_url TEXT,
            updated_at TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "policy",
        3,
        "enterprise tunnels, one per APN",
        """
        CREATE TABLE policy_tunnels (
            name TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            apn TEXT NOT NULL,
            local_address TEXT NOT NULL,
            remote_address TEXT NOT NULL,
            local_id TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            apn_pool TEXT NOT NULL,
            enterprise_prefixes TEXT NOT NULL,
            auth TEXT NOT NULL,
            psk_sealed {blob},
            local_cert TEXT NOT NULL,
            remote_ca TEXT NOT NULL,
            ike_proposals TEXT NOT NULL,
            esp_proposals TEXT NOT NULL,
            dpd_delay_s INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (tenant_id, apn)
        )
        """,
    ),
]

#: Partitioned NATS ingestion: applied stream sequences and restored byte counters.
NATS_MIGRATIONS = [
    Migration(
        "policy_nats",
        1,
        "partition offsets and device byte counters",
        """
        CREATE TABLE policy_nats_offsets (
            stream TEXT NOT NULL,
            part INTEGER NOT NULL,
            last_seq {bigint} NOT NULL,
            floor_seq {bigint} NOT NULL,
            batches {bigint} NOT NULL,
            records {bigint} NOT NULL,
            octets {bigint} NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (stream, part)
        );
        CREATE TABLE policy_nats_usage (
            imsi TEXT NOT NULL,
            period TEXT NOT NULL,
            bucket {bigint} NOT NULL,
            octets {bigint} NOT NULL,
            stream TEXT NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (imsi, period)
        );
        CREATE INDEX policy_nats_usage_part ON policy_nats_usage (stream, part);
        CREATE TABLE policy_nats_applied (
            stream TEXT NOT NULL,
            part INTEGER NOT NULL,
            seq {bigint} NOT NULL,
            PRIMARY KEY (stream, part, seq)
        )
        """,
    ),
]

MIGRATIONS += NATS_MIGRATIONS

#: Sealed columns the runtime re-wraps when the master key rotates.
SEALED_COLUMNS = [SealedColumn("policy_tunnels", "name", "psk_sealed")]
