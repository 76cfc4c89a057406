"""Tables of the dashboard: its sign-in sessions (they outlive the server process), and
the indexes its fleet search by trailing digits needs (web/_fleet.py).

The trailing-digit indexes are expression indexes on the last ``TAIL`` characters
of ICCID, IMSI, IMEI and MSISDN (``substr(x, length(x) - 3)``, the same text in
SQLite and PostgreSQL, both deterministic), so "…4711" finds its SIMs through an
index lookup instead of a scan of a million rows.
"""

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
    Migration(
        "web",
        2,
        "trailing-digit search indexes",
        """
        CREATE INDEX web_sims_iccid_tail ON sub_sims (substr(iccid, length(iccid) - 3));
        CREATE INDEX web_sims_imsi_tail ON sub_sims (substr(imsi, length(imsi) - 3));
        CREATE INDEX web_bindings_imei_tail ON sub_bindings (substr(imei, length(imei) - 3));
        CREATE INDEX web_aaa_msisdn_tail ON aaa_sessions (substr(msisdn, length(msisdn) - 3))
        """,
    ),
]
