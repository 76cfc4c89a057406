"""Persistence: the database seam, migrations, and the base aggregate stores."""

from simtrust.store._db import Database, PostgresDatabase, Row, SqliteDatabase, open_database
from simtrust.store._group import GroupCommit
from simtrust.store._migrations import (
    Migration,
    SealedColumn,
    applied_versions,
    apply_migrations,
)
from simtrust.store._tenants import (
    AUTH_CACHE_SECONDS,
    AUTH_REFRESH_SECONDS,
    ROLES,
    ApiKey,
    NewApiKey,
    Role,
    Tenant,
    TenantStore,
    missing_key,
)

__all__ = [
    "AUTH_CACHE_SECONDS",
    "AUTH_REFRESH_SECONDS",
    "ROLES",
    "ApiKey",
    "Database",
    "GroupCommit",
    "Migration",
    "NewApiKey",
    "PostgresDatabase",
    "Role",
    "Row",
    "SealedColumn",
    "SqliteDatabase",
    "Tenant",
    "TenantStore",
    "applied_versions",
    "apply_migrations",
    "missing_key",
    "open_database",
]
