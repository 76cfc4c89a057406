"""Schema of the devices package (component ``devices``): the PSKs the bootstrap server
hands to devices for the device-management server (sealed, keyed by PSK identity), the
per-device bootstrap PSKs of SIMs without GBA, and the last IMEI each SIM reported.
"""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "devices",
        1,
        "LwM2M credentials and reported IMEIs",
        """
        CREATE TABLE dev_credentials (
            identity TEXT PRIMARY KEY,
            purpose TEXT NOT NULL,
            imsi TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            key_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX dev_credentials_imsi ON dev_credentials (imsi, purpose);
        CREATE TABLE dev_reported (
            imsi TEXT PRIMARY KEY,
            endpoint TEXT NOT NULL,
            imei TEXT,
            updated_at TEXT NOT NULL
        );
        """,
    ),
]

SEALED_COLUMNS = [SealedColumn("dev_credentials", "identity", "key_sealed")]
