"""Tables of the market: TMF620 catalog, TMF622 product orders, TMF637 products, jobs.

Each resource is kept as its TM Forum JSON document (``body``) next to the
columns the service queries and scopes on (owner tenant, life-cycle state).
"""

from __future__ import annotations

from simtrust.store import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS = [
    Migration(
        "market",
        1,
        "TMF620 catalog resources and TMF622 product orders",
        """
        CREATE TABLE market_catalog (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            tenant_id TEXT,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        );
        CREATE INDEX market_catalog_tenant ON market_catalog (kind, tenant_id, created_at);
        CREATE TABLE market_orders (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            state TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX market_orders_tenant ON market_orders (tenant_id, created_at)
        """,
    ),
    Migration(
        "market",
        2,
        "TMF637 product inventory",
        """
        CREATE TABLE market_products (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            order_id TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX market_products_tenant ON market_products (tenant_id, created_at)
        """,
    ),
    Migration(
        "market",
        3,
        "TMF622 cancelProductOrder tasks",
        """
        CREATE TABLE market_cancellations (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            order_id TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX market_cancellations_tenant ON market_cancellations (tenant_id, created_at)
        """,
    ),
    Migration(
        "market",
        4,
        "TMF641 service orders, TMF638 services, order plans, TMF hub listeners and events",
        """
        ALTER TABLE market_orders ADD COLUMN plan TEXT;
        CREATE TABLE market_service_orders (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            product_order_id TEXT NOT NULL,
            state TEXT NOT NULL,
            body TEXT NOT NULL,
            journal TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX market_service_orders_tenant ON market_service_orders (tenant_id, created_at);
        CREATE INDEX market_service_orders_po ON market_service_orders (product_order_id);
        CREATE TABLE market_services (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            service_order_id TEXT NOT NULL,
            state TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX market_services_tenant ON market_services (tenant_id, created_at);
        CREATE TABLE market_hubs (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            api TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE market_events (
            seq {serial},
            hub_id TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_at REAL NOT NULL,
            delivered INTEGER NOT NULL,
            last_error TEXT
        );
        CREATE INDEX market_events_due ON market_events (delivered, next_at)
        """,
    ),
    Migration(
        "market",
        5,
        "federation: partner operators (by DID) and purchases from other operators",
        """
        CREATE TABLE market_partners (
            did TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE market_purchases (
            id TEXT PRIMARY KEY,
            seller TEXT NOT NULL,
            api TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
    Migration(
        "market",
        6,
        "federation: nonces of RFC 9421 partner signatures seen within their validity",
        """
        CREATE TABLE market_nonces (
            keyid TEXT NOT NULL,
            nonce TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (keyid, nonce)
        );
        CREATE INDEX market_nonces_expiry ON market_nonces (expires_at)
        """,
    ),
    Migration(
        "market_jobs",
        1,
        "TMF620 / TMF633 import and export jobs",
        """
        CREATE TABLE market_jobs (
            id TEXT PRIMARY KEY,
            api TEXT NOT NULL,
            kind TEXT NOT NULL,
            tenant_id TEXT,
            everything INTEGER NOT NULL,
            base TEXT NOT NULL,
            status TEXT NOT NULL,
            lease_until {real} NOT NULL,
            owner TEXT,
            body TEXT NOT NULL,
            completion TEXT,
            error_log TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX market_jobs_list ON market_jobs (api, kind, tenant_id, created_at);
        CREATE INDEX market_jobs_due ON market_jobs (status, lease_until)
        """,
    ),
    Migration(
        "market",
        7,
        "federation: events received from partner sellers (deduplicated), purchased products",
        """
        CREATE TABLE market_inbox (
            sender TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (sender, event_id)
        );
        ALTER TABLE market_purchases ADD COLUMN event_time TEXT;
        CREATE TABLE market_purchased_products (
            seller TEXT NOT NULL,
            id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            body TEXT NOT NULL,
            event_time TEXT NOT NULL,
            PRIMARY KEY (seller, id)
        )
        """,
    ),
    Migration(
        "market",
        8,
        "TMF641 cancelServiceOrder tasks",
        """
        CREATE TABLE market_service_cancellations (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            order_id TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX market_service_cancellations_tenant
            ON market_service_cancellations (tenant_id, created_at)
        """,
    ),
]
