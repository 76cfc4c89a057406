"""Tables of the streams service: channels, frames, data, annotations, meters, alerts,
and the local energy market's orders and intervals.

A channel's frames are kept byte for byte (``stream_frames.frame``) in arrival
order (``pos``), so a restart rebuilds each channel's reader from them and a
subscriber reads exactly what the author signed. Data and their signed
annotations form the provenance graph; meters keep their device credential
and the watch state that catches clones. The annotating key is sealed under
the master key (``SEALED_COLUMNS``).
"""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "streams",
        1,
        "channels, frames, anchored batches, data and annotations, meters and alerts",
        """
        CREATE TABLE stream_keys (
            id TEXT PRIMARY KEY,
            public {blob} NOT NULL,
            key_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE stream_channels (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            label TEXT NOT NULL,
            author {blob} NOT NULL,
            private INTEGER NOT NULL,
            announce {blob} NOT NULL,
            next_pos {bigint} NOT NULL,
            anchored_pos {bigint} NOT NULL,
            iccid TEXT,
            imsi TEXT,
            imei TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX stream_channels_tenant ON stream_channels (tenant_id, created_at);
        CREATE INDEX stream_channels_imsi ON stream_channels (imsi);
        CREATE TABLE stream_frames (
            message_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            pos {bigint} NOT NULL,
            kind INTEGER NOT NULL,
            branch INTEGER NOT NULL,
            seq {bigint} NOT NULL,
            verdict TEXT NOT NULL,
            frame {blob} NOT NULL,
            received_at TEXT NOT NULL,
            UNIQUE (channel, pos)
        );
        CREATE TABLE stream_rejects (
            channel TEXT NOT NULL,
            verdict TEXT NOT NULL,
            count {bigint} NOT NULL,
            PRIMARY KEY (channel, verdict)
        );
        CREATE TABLE stream_batches (
            anchor_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            first_pos {bigint} NOT NULL,
            root TEXT NOT NULL,
            ids TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE stream_data (
            datum_id TEXT PRIMARY KEY,
            tenant_id TEXT,
            channel TEXT,
            label TEXT NOT NULL,
            inputs TEXT NOT NULL,
            proof TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX stream_data_channel ON stream_data (channel, created_at);
        CREATE TABLE stream_annotations (
            id {serial},
            datum_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            satisfied INTEGER NOT NULL,
            annotator {blob} NOT NULL,
            evidence TEXT NOT NULL,
            signature {blob} NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX stream_annotations_datum ON stream_annotations (datum_id, id);
        CREATE TABLE stream_policies (
            tenant_id TEXT PRIMARY KEY,
            weights TEXT NOT NULL
        );
        CREATE TABLE stream_meters (
            meter TEXT PRIMARY KEY,
            tenant_id TEXT,
            channel TEXT NOT NULL,
            sim_did TEXT NOT NULL,
            iccid TEXT NOT NULL,
            imsi TEXT NOT NULL,
            imei TEXT NOT NULL,
            credential TEXT NOT NULL,
            issuer TEXT NOT NULL,
            status TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            register_wh {bigint},
            at {bigint},
            sims TEXT NOT NULL,
            devices TEXT NOT NULL
        );
        CREATE INDEX stream_meters_channel ON stream_meters (channel);
        CREATE TABLE stream_alerts (
            id {serial},
            tenant_id TEXT,
            imsi TEXT,
            meter TEXT,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            explanation TEXT NOT NULL,
            evidence TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            closed_at TEXT
        );
        CREATE INDEX stream_alerts_imsi ON stream_alerts (imsi, closed_at);
        CREATE INDEX stream_alerts_meter ON stream_alerts (meter, closed_at);
        CREATE TABLE stream_sims (
            imsi TEXT PRIMARY KEY,
            imei TEXT,
            allowed INTEGER NOT NULL,
            reason TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "streams",
        2,
        "when each meter's device certificate was last verified",
        "ALTER TABLE stream_meters ADD COLUMN verified_at TEXT",
    ),
    Migration(
        "streams",
        3,
        "the local energy market: orders per interval, clearings and settlements",
        """
        CREATE TABLE energy_orders (
            id {serial},
            tenant_id TEXT NOT NULL,
            interval_start {bigint} NOT NULL,
            meter TEXT NOT NULL,
            side TEXT NOT NULL,
            wh {bigint} NOT NULL,
            price {bigint} NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX energy_orders_interval ON energy_orders (tenant_id, interval_start, id);
        CREATE TABLE energy_intervals (
            tenant_id TEXT NOT NULL,
            interval_start {bigint} NOT NULL,
            status TEXT NOT NULL,
            price {bigint},
            trades TEXT NOT NULL,
            payments TEXT,
            cleared_at TEXT NOT NULL,
            settled_at TEXT,
            PRIMARY KEY (tenant_id, interval_start)
        )
        """,
    ),
    Migration(
        "streams",
        4,
        "energy market escrow: buyers' deposits, one row per token of a registered transfer",
        """
        CREATE TABLE energy_deposits (
            message_id TEXT NOT NULL,
            token TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            meter TEXT NOT NULL,
            amount {bigint} NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (message_id, token)
        );
        CREATE INDEX energy_deposits_meter ON energy_deposits (tenant_id, meter)
        """,
    ),
    Migration(
        "streams",
        5,
        "the client certificate each datum received over mutually-authenticated TLS came under",
        """
        CREATE TABLE stream_tls (
            datum_id TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            iccid TEXT,
            listener TEXT NOT NULL,
            certificate {blob} NOT NULL,
            received_at TEXT NOT NULL
        );
        CREATE INDEX stream_tls_iccid ON stream_tls (iccid, received_at)
        """,
    ),
    Migration(
        "streams",
        6,
        "energy escrow: the token a bid is paid in, withdrawals; meter readings indexed by time",
        """
        ALTER TABLE energy_orders ADD COLUMN token TEXT;
        CREATE TABLE energy_withdrawals (
            id {serial},
            tenant_id TEXT NOT NULL,
            meter TEXT NOT NULL,
            token TEXT NOT NULL,
            amount {bigint} NOT NULL,
            status TEXT NOT NULL,
            raw TEXT NOT NULL,
            message_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE INDEX energy_withdrawals_meter ON energy_withdrawals (tenant_id, meter, status);
        CREATE TABLE stream_readings (
            datum_id TEXT PRIMARY KEY,
            meter TEXT NOT NULL,
            at {bigint} NOT NULL,
            register_wh {bigint} NOT NULL
        );
        CREATE INDEX stream_readings_meter ON stream_readings (meter, at);
        CREATE TABLE stream_backfills (
            name TEXT PRIMARY KEY,
            done_at TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "streams",
        7,
        "tls receipts: the arrival tls annotation and its inclusion proof once anchored",
        """
        ALTER TABLE stream_tls ADD COLUMN annotation TEXT;
        ALTER TABLE stream_tls ADD COLUMN proof TEXT
        """,
    ),
    Migration(
        "streams",
        8,
        "energy settlement claims: who pays an interval, until when; a per-tenant plan guard",
        """
        ALTER TABLE energy_intervals ADD COLUMN payer TEXT;
        ALTER TABLE energy_intervals ADD COLUMN lease_until {bigint};
        CREATE INDEX energy_intervals_status ON energy_intervals (status, interval_start);
        CREATE TABLE energy_settle_guard (
            tenant_id TEXT PRIMARY KEY,
            plans {bigint} NOT NULL
        )
        """,
    ),
    Migration(
        "streams",
        9,
        "tls: the CA's signed OCSP response checked at arrival, with the CA certificate",
        """
        ALTER TABLE stream_tls ADD COLUMN ocsp {blob};
        ALTER TABLE stream_tls ADD COLUMN issuer {blob}
        """,
    ),
    Migration(
        "streams",
        10,
        "anchored batches: when the ledger finalized the anchor (earlier ones counted as final)",
        """
        ALTER TABLE stream_batches ADD COLUMN final_at TEXT;
        UPDATE stream_batches SET final_at = created_at;
        CREATE INDEX stream_batches_unfinal ON stream_batches (final_at)
        """,
    ),
]

SEALED_COLUMNS = [SealedColumn("stream_keys", "id", "key_sealed")]
