"""The database seam behaves the same on SQLite and PostgreSQL (contract suite)."""

from __future__ import annotations

import pytest

from simtrust.errors import Conflict, StoreError
from simtrust.store import Database, Migration, applied_versions, apply_migrations

SCHEMA = [
    Migration("demo", 1, "things", "CREATE TABLE things (id {serial}, name TEXT UNIQUE, data {blob})"),
    Migration("demo", 2, "things size", "ALTER TABLE things ADD COLUMN size {bigint}"),
]


def test_migrations_apply_once_in_order(db: Database) -> None:
    first = apply_migrations(db, SCHEMA)
    second = apply_migrations(db, SCHEMA)
    assert [1, 2] == [m.version for m in first]
    assert [] == second
    assert {("demo", 1), ("demo", 2)} == set(applied_versions(db))


def test_new_migration_runs_alone(db: Database) -> None:
    apply_migrations(db, SCHEMA[:1])
    ran = apply_migrations(db, SCHEMA)
    assert [2] == [m.version for m in ran]
    db.execute("INSERT INTO things (name, data, size) VALUES (?, ?, ?)", ("a", b"\x00\xff", 2**40))
    assert [("a", b"\x00\xff", 2**40)] == [
        (r[0], bytes(r[1]), r[2]) for r in db.query("SELECT name, data, size FROM things")
    ]


def test_edited_migration_is_refused(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    edited = [SCHEMA[0], Migration("demo", 2, "things size", "ALTER TABLE things ADD COLUMN x TEXT")]
    with pytest.raises(StoreError, match="changed after it ran"):
        apply_migrations(db, edited)


def test_unknown_newer_version_is_refused(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    with pytest.raises(StoreError, match="does not know"):
        apply_migrations(db, SCHEMA[:1])


def test_gapped_versions_are_refused(db: Database) -> None:
    with pytest.raises(StoreError, match="numbered"):
        apply_migrations(db, [SCHEMA[1]])


def test_failed_migration_leaves_nothing(db: Database) -> None:
    broken = [*SCHEMA, Migration("demo", 3, "bad", "CREATE TABLE t3 (a TEXT); CREATE TABLE")]
    with pytest.raises(StoreError):
        apply_migrations(db, broken)
    assert ("demo", 3) not in applied_versions(db)
    assert ("demo", 2) in applied_versions(db)


def test_transaction_rolls_back_whole(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO things (name) VALUES (?)", ("kept?",))
        raise RuntimeError("boom")
    assert [] == db.query("SELECT name FROM things")


def test_nested_transactions_join_outer(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    with pytest.raises(Conflict), db.transaction():
        db.execute("INSERT INTO things (name) VALUES (?)", ("x",))
        with db.transaction():
            db.execute("INSERT INTO things (name) VALUES (?)", ("y",))
        db.execute("INSERT INTO things (name) VALUES (?)", ("x",))
    assert [] == db.query("SELECT name FROM things")


def test_unique_violation_is_conflict(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    db.execute("INSERT INTO things (name) VALUES (?)", ("dup",))
    with pytest.raises(Conflict):
        db.execute("INSERT INTO things (name) VALUES (?)", ("dup",))


def test_insert_returning_id_and_executemany(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    first = db.insert_returning_id("INSERT INTO things (name) VALUES (?)", ("one",))
    second = db.insert_returning_id("INSERT INTO things (name) VALUES (?)", ("two",))
    assert second == first + 1
    db.executemany("INSERT INTO things (name, size) VALUES (?, ?)", [("n3", 3), ("n4", 4)])
    assert 4 == db.query_one("SELECT COUNT(*) FROM things")[0]  # type: ignore[index]
    assert db.query_one("SELECT name FROM things WHERE name = ?", ("nope",)) is None


def test_percent_signs_survive_placeholder_translation(db: Database) -> None:
    apply_migrations(db, SCHEMA)
    db.execute("INSERT INTO things (name) VALUES (?)", ("100% ok?",))
    rows = db.query("SELECT name FROM things WHERE name LIKE '100%'")
    assert [("100% ok?",)] == [tuple(r) for r in rows]


def test_bad_sql_is_store_error(db: Database) -> None:
    with pytest.raises(StoreError):
        db.query("SELECT * FROM no_such_table")
