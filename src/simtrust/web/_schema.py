"""Tables of the dashboard: its sign-in sessions (they outlive the server process)."""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS = [
    Migration(
        "web",
        1,
        "dashboard sessions",
        """
        CREATE TABLE web_sessions (
            sid_digest TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX web_sessions_seen ON web_sessions (last_seen);
        CREATE INDEX web_sessions_key ON web_sessions (key_id)
        """,
    ),
]
