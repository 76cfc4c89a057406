"""Versioned, forward-only schema migrations.

Each component (``tenancy``, ``audit``, ``subscriber``, ``ledger``, ...) owns
an ordered list of :class:`Migration`; :func:`apply_migrations` records what
ran in ``schema_migrations`` and runs only what is new, each migration in its
own transaction. A migration is never edited once released: a change is a new
version. A recorded version the code does not know (a newer release ran on
this store) stops the start rather than guessing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simtrust.errors import StoreError
from simtrust.store._db import Database

__all__ = ["Migration", "applied_versions", "apply_migrations"]

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (component, version)
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``sql`` may hold several statements and dialect tokens."""

    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column holding ``Keyring.seal`` blobs, keyed by ``key_column``.

    Packages list theirs in ``_schema.SEALED_COLUMNS`` so that master-key
    rotation can re-wrap every sealed value.
    """

    table: str
    key_column: str
    column: str


def applied_versions(db: Database) -> dict[tuple[str, int], str]:
    db.script(_BOOKKEEPING)
    rows = db.query("SELECT component, version, checksum FROM schema_migrations")
    return {(str(c), int(v)): str(s) for c, v, s in rows}


def apply_migrations(db: Database, migrations: Iterable[Migration]) -> list[Migration]:
    """Apply what has not run yet; return the migrations applied now."""
    by_component: dict[str, list[Migration]] = {}
    for migration in migrations:
        by_component.setdefault(migration.component, []).append(migration)
    done = applied_versions(db)
    ran: list[Migration] = []
    for component, steps in sorted(by_component.items()):
        ran.extend(_apply_component(db, component, steps, done))
    return ran


def _apply_component(
    db: Database,
    component: str,
    steps: Sequence[Migration],
    done: dict[tuple[str, int], str],
) -> list[Migration]:
    ordered = sorted(steps, key=lambda m: m.version)
    versions = [m.version for m in ordered]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations of {component} must be numbered 1..n, got {versions}")
    known = {m.version for m in ordered}
    unknown = sorted(v for (c, v) in done if c == component and v not in known)
    if unknown:
        raise StoreError(
            f"store has {component} migrations {unknown} that this release does not know"
        )
    ran = []
    for migration in ordered:
        key = (component, migration.version)
        if key in done:
            if done[key] != migration.checksum:
                raise StoreError(
                    f"migration {component} v{migration.version} changed after it ran"
                )
            continue
        with db.transaction():
            db.script(migration.sql)
            db.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum)"
                " VALUES (?, ?, ?, ?)",
                (component, migration.version, migration.name, migration.checksum),
            )
        ran.append(migration)
    return ran
