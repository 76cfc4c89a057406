"""Schema of the bootstrap package (component ``bootstrap``).

GBA bootstrapping contexts (Ks sealed, keyed by B-TID; TS 33.220
§4.5.2), AKMA anchor contexts (K_AKMA sealed, keyed by A-KID; TS 33.535 §6.1),
tenant CAs (hosted key sealed by the master key, a PKCS#11 token key with its PIN
sealed, or a delegated EST or CMP endpoint, a CMP MAC secret or client key
sealed) with their certificate profile, every
issued certificate with its status, and the revocations owed to the enterprise
CA of a CMP-delegated CA (migration 6) and its enrolments answered ``waiting``
(migration 7), and the used Ub nonces that replaced the stored GBA
challenges (migration 8: a challenge is sealed into its nonce). A CA's
``name`` is the label its tenant gave it (unique per tenant); ``label`` is its
EST label, unique in the store: ``<tenant>.<name>`` since migration 3, the bare
name for CAs registered before (docs/decisions/bootstrap-ca-labels.md).
"""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "bootstrap",
        1,
        "GBA and AKMA contexts, tenant CAs and profiles, issued certificates",
        """
        CREATE TABLE boot_gba_challenges (
            nonce TEXT PRIMARY KEY,
            impi TEXT NOT NULL,
            imsi TEXT NOT NULL,
            secret_sealed {blob} NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE boot_gba_contexts (
            b_tid TEXT PRIMARY KEY,
            impi TEXT NOT NULL,
            imsi TEXT NOT NULL,
            ks_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX boot_gba_contexts_impi ON boot_gba_contexts (impi);
        CREATE TABLE boot_akma_contexts (
            a_kid TEXT PRIMARY KEY,
            supi TEXT NOT NULL,
            gpsi TEXT,
            k_akma_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX boot_akma_contexts_supi ON boot_akma_contexts (supi);
        CREATE TABLE boot_cas (
            ca_id TEXT PRIMARY KEY,
            tenant_id TEXT,
            label TEXT NOT NULL UNIQUE,
            mode TEXT NOT NULL,
            cert_pem TEXT NOT NULL,
            key_sealed {blob},
            delegate_url TEXT,
            profile TEXT NOT NULL,
            crl_number {bigint} NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE boot_certs (
            serial TEXT PRIMARY KEY,
            ca_id TEXT NOT NULL REFERENCES boot_cas (ca_id),
            tenant_id TEXT NOT NULL,
            iccid TEXT NOT NULL,
            subject TEXT NOT NULL,
            spki_sha256 TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            der {blob} NOT NULL,
            status TEXT NOT NULL,
            revoked_at TEXT,
            revocation_reason TEXT
        );
        CREATE INDEX boot_certs_iccid ON boot_certs (iccid, issued_at);
        CREATE INDEX boot_certs_ca ON boot_certs (ca_id, status);
        """,
    ),
    Migration(
        "bootstrap",
        2,
        "tenant CA keys in a PKCS#11 token (module, token and key label; PIN sealed)",
        """
        ALTER TABLE boot_cas ADD COLUMN token TEXT;
        ALTER TABLE boot_cas ADD COLUMN pin_sealed {blob};
        """,
    ),
    Migration(
        "bootstrap",
        3,
        "CA labels per tenant: name unique per (tenant, name); label keeps the EST label",
        """
        ALTER TABLE boot_cas ADD COLUMN name TEXT;
        UPDATE boot_cas SET name = label;
        CREATE UNIQUE INDEX boot_cas_tenant_name ON boot_cas (tenant_id, name)
        """,
    ),
    Migration(
        "bootstrap",
        4,
        "NAF Digest state shared by every process: replay cache and the sealed nonce key",
        """
        CREATE TABLE boot_digest_seen (
            nonce TEXT NOT NULL,
            nc TEXT NOT NULL,
            cnonce TEXT NOT NULL,
            seen_at {bigint} NOT NULL,
            PRIMARY KEY (nonce, nc, cnonce)
        );
        CREATE INDEX boot_digest_seen_at ON boot_digest_seen (seen_at);
        CREATE TABLE boot_secrets (
            name TEXT PRIMARY KEY,
            secret_sealed {blob} NOT NULL
        )
        """,
    ),
    Migration(
        "bootstrap",
        5,
        "delegated CAs over EST or CMP: the kind, its settings and its sealed secret",
        """
        ALTER TABLE boot_cas ADD COLUMN delegate_kind TEXT;
        ALTER TABLE boot_cas ADD COLUMN delegate_config TEXT;
        ALTER TABLE boot_cas ADD COLUMN delegate_secret_sealed {blob};
        UPDATE boot_cas SET delegate_kind = 'est' WHERE mode = 'delegated'
        """,
    ),
    Migration(
        "bootstrap",
        6,
        "revocations queued for the enterprise CA of a CMP-delegated CA (rr outbox)",
        """
        CREATE TABLE boot_delegate_revocations (
            serial TEXT PRIMARY KEY REFERENCES boot_certs (serial),
            ca_id TEXT NOT NULL REFERENCES boot_cas (ca_id),
            reason TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT,
            queued_at TEXT NOT NULL,
            next_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE INDEX boot_delegate_revocations_due ON boot_delegate_revocations (state, next_at)
        """,
    ),
    Migration(
        "bootstrap",
        7,
        "enrolments a CMP-delegated CA answered waiting: the transaction, polled on",
        """
        CREATE TABLE boot_cmp_waiting (
            request_id TEXT PRIMARY KEY,
            ca_id TEXT NOT NULL REFERENCES boot_cas (ca_id),
            tenant_id TEXT NOT NULL,
            iccid TEXT NOT NULL,
            imsi TEXT NOT NULL,
            imei TEXT,
            did TEXT,
            actor TEXT NOT NULL,
            key_type TEXT NOT NULL,
            csr {blob} NOT NULL,
            renewing {blob},
            tid {blob} NOT NULL,
            server_nonce {blob} NOT NULL,
            cert_req_id INTEGER NOT NULL,
            rep TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            error TEXT,
            serial TEXT,
            next_at TEXT NOT NULL,
            deadline TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX boot_cmp_waiting_due ON boot_cmp_waiting (state, next_at)
        """,
    ),
    Migration(
        "bootstrap",
        8,
        "stateless Ub challenges: the used nonces instead of the stored challenges",
        """
        DROP TABLE boot_gba_challenges;
        CREATE TABLE boot_gba_used_nonces (
            nonce_hash TEXT PRIMARY KEY,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX boot_gba_used_nonces_expiry ON boot_gba_used_nonces (expires_at)
        """,
    ),
]

#: Sealed columns the runtime re-wraps when the master key rotates.
SEALED_COLUMNS = [
    SealedColumn("boot_gba_contexts", "b_tid", "ks_sealed"),
    SealedColumn("boot_akma_contexts", "a_kid", "k_akma_sealed"),
    SealedColumn("boot_cas", "ca_id", "key_sealed"),
    SealedColumn("boot_cas", "ca_id", "pin_sealed"),
    SealedColumn("boot_cas", "ca_id", "delegate_secret_sealed"),
    SealedColumn("boot_secrets", "name", "secret_sealed"),
]
