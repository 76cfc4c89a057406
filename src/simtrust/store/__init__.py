"""Persistence: the database seam, migrations, and the base aggregate stores."""

from simtrust.store._db import Database, PostgresDatabase, Row, SqliteDatabase, open_database
from simtrust.store._migrations import Migration, applied_versions, apply_migrations

__all__ = [
    "Database",
    "Migration",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "applied_versions",
    "apply_migrations",
    "open_database",
]
