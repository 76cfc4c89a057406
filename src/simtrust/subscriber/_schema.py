"""Schema of the subscriber inventory (component ``subscriber``).

SIMs with sealed K and OP/OPc (sealed by :meth:`simtrust.crypto.Keyring.seal`,
AAD bound to ICCID and field), devices, device groups, APNs with address pools,
per-tenant attach policy, the CEIR-like blocklist, IMEI–ICCID bindings, address
leases, SUCI home network keys, and a change feed that keeps in-memory caches
of other processes coherent with the store. In ``sub_bindings`` the
``sim_lock`` / ``dev_lock`` columns hold the ICCID / IMEI when the binding's mode
locks that side, so the store itself forbids two locks on one SIM or device.
"""

from __future__ import annotations

from simtrust.store import Migration, SealedColumn

__all__ = ["MIGRATIONS", "SEALED_COLUMNS"]

MIGRATIONS = [
    Migration(
        "subscriber",
        1,
        "inventory, attach state, address leases, home network keys",
        """
        CREATE TABLE sub_groups (
            id {serial},
            tenant_id TEXT NOT NULL,
            name TEXT NOT NULL,
            binding_mode TEXT,
            swap_action TEXT,
            roaming TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, name)
        );
        CREATE TABLE sub_apns (
            id {serial},
            tenant_id TEXT NOT NULL,
            name TEXT NOT NULL,
            pool TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (tenant_id, name)
        );
        CREATE TABLE sub_sims (
            iccid TEXT PRIMARY KEY,
            imsi TEXT NOT NULL UNIQUE,
            mnc_length INTEGER NOT NULL,
            tenant_id TEXT NOT NULL,
            state TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            algo_params TEXT NOT NULL,
            op_kind TEXT NOT NULL,
            k_sealed {blob} NOT NULL,
            op_sealed {blob} NOT NULL,
            amf TEXT NOT NULL,
            auth_method TEXT NOT NULL DEFAULT '5G_AKA',
            sqn_state TEXT NOT NULL,
            sqn_version {bigint} NOT NULL DEFAULT 0,
            group_id {bigint} REFERENCES sub_groups (id),
            apn TEXT,
            static_ip TEXT,
            binding_mode TEXT,
            roaming TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX sub_sims_tenant ON sub_sims (tenant_id, iccid);
        CREATE INDEX sub_sims_state ON sub_sims (tenant_id, state);
        CREATE TABLE sub_devices (
            imei TEXT PRIMARY KEY,
            imeisv TEXT,
            tac TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            group_id {bigint} REFERENCES sub_groups (id),
            label TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE INDEX sub_devices_tenant ON sub_devices (tenant_id, imei);
        CREATE TABLE sub_policies (
            tenant_id TEXT PRIMARY KEY,
            binding_mode TEXT NOT NULL,
            swap_action TEXT NOT NULL,
            unknown_device TEXT NOT NULL,
            roaming TEXT NOT NULL,
            webhook_url TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE sub_blocklist (
            id {serial},
            tenant_id TEXT,
            kind TEXT NOT NULL,
            first_value TEXT NOT NULL,
            last_value TEXT NOT NULL,
            reason TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX sub_blocklist_value ON sub_blocklist (kind, first_value);
        CREATE TABLE sub_bindings (
            iccid TEXT NOT NULL REFERENCES sub_sims (iccid),
            imei TEXT NOT NULL,
            mode TEXT NOT NULL,
            sim_lock TEXT UNIQUE,
            dev_lock TEXT UNIQUE,
            bound_at TEXT NOT NULL,
            PRIMARY KEY (iccid, imei)
        );
        CREATE INDEX sub_bindings_imei ON sub_bindings (imei);
        CREATE TABLE sub_leases (
            address TEXT PRIMARY KEY,
            imsi TEXT NOT NULL UNIQUE,
            tenant_id TEXT NOT NULL,
            apn TEXT,
            kind TEXT NOT NULL,
            leased_at TEXT NOT NULL
        );
        CREATE TABLE sub_hn_keys (
            key_id INTEGER PRIMARY KEY,
            profile TEXT NOT NULL,
            public_key {blob} NOT NULL,
            private_sealed {blob} NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sub_changes (
            seq {serial},
            kind TEXT NOT NULL,
            item TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "subscriber",
        2,
        "serving MME of each registered subscriber (S6a update location)",
        """
        CREATE TABLE sub_serving_nodes (
            imsi TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            realm TEXT NOT NULL,
            registered_at TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "subscriber",
        3,
        "authentication results the AUSF confirmed (Nudm_UEAU auth-events)",
        """
        CREATE TABLE sub_auth_events (
            id TEXT PRIMARY KEY,
            imsi TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX sub_auth_events_imsi ON sub_auth_events (imsi)
        """,
    ),
    Migration(
        "subscriber",
        4,
        "SIM identifier allocations (ICCID and IMSI ranges per tenant)",
        """
        CREATE TABLE sub_allocations (
            kind TEXT NOT NULL,
            prefix TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (kind, prefix)
        );
        CREATE INDEX sub_allocations_tenant ON sub_allocations (tenant_id)
        """,
    ),
    Migration(
        "subscriber",
        5,
        "devices per tenant: an IMEI may be in several tenants' inventories",
        """
        CREATE TABLE sub_devices_by_tenant (
            imei TEXT NOT NULL,
            imeisv TEXT,
            tac TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            group_id {bigint} REFERENCES sub_groups (id),
            label TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, imei)
        );
        INSERT INTO sub_devices_by_tenant
            (imei, imeisv, tac, tenant_id, group_id, label, created_at)
            SELECT imei, imeisv, tac, tenant_id, group_id, label, created_at FROM sub_devices;
        DROP TABLE sub_devices;
        ALTER TABLE sub_devices_by_tenant RENAME TO sub_devices;
        CREATE INDEX sub_devices_imei ON sub_devices (imei)
        """,
    ),
    Migration(
        "subscriber",
        6,
        "indexes for fleet lists: filters by state, group, APN, tenant in ICCID and IMSI order",
        """
        DROP INDEX sub_sims_state;
        CREATE INDEX sub_sims_state_iccid ON sub_sims (state, iccid);
        CREATE INDEX sub_sims_tenant_state ON sub_sims (tenant_id, state, iccid);
        CREATE INDEX sub_sims_tenant_imsi ON sub_sims (tenant_id, imsi);
        CREATE INDEX sub_sims_group ON sub_sims (group_id, iccid);
        CREATE INDEX sub_sims_apn ON sub_sims (apn, iccid)
        """,
    ),
    Migration(
        "subscriber",
        7,
        "IP address allocations (networks per tenant for static addresses and APN pools)",
        """
        CREATE TABLE sub_address_allocations (
            network TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX sub_address_allocations_tenant ON sub_address_allocations (tenant_id)
        """,
    ),
    Migration(
        "subscriber",
        8,
        "what a device reported (firmware, radio) on its inventory record",
        """
        ALTER TABLE sub_devices ADD COLUMN reported TEXT;
        ALTER TABLE sub_devices ADD COLUMN reported_at TEXT
        """,
    ),
]

#: Sealed columns the runtime re-wraps when the master key rotates.
SEALED_COLUMNS = [
    SealedColumn("sub_sims", "iccid", "k_sealed"),
    SealedColumn("sub_sims", "iccid", "op_sealed"),
    SealedColumn("sub_hn_keys", "key_id", "private_sealed"),
]
