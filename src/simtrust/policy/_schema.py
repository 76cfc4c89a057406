"""Tables of the policy component: every version of every policy, never overwritten."""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

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
]
