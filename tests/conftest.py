"""Fixtures shared by every test package.

- ``shared_dir``: the ``shared/`` folder of vectors, specs and captures
  (``SIMTRUST_SHARED``, default ``../shared`` beside the repository).
- ``require_service(name)``: skip when a real service is unreachable, unless
  ``SIMTRUST_REQUIRE_SERVICES`` is set (CI), where it fails instead.
- ``db``: a fresh :class:`~simtrust.store.Database`, once on SQLite and once on
  PostgreSQL (its own schema, dropped afterwards).
- ``runtime``: a :class:`~simtrust.runtime.Runtime` on each of those stores.
- ``sqlite_runtime``, ``api`` / ``operator_headers``: an SQLite runtime and a
  test client of the HTTP API with an operator-admin key.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from simtrust.api import create_app
from simtrust.runtime import Runtime
from simtrust.store import Database, PostgresDatabase, SqliteDatabase

REPO = Path(__file__).resolve().parents[1]

# Generated-data checks stay; the ones that time the generator or each example
# do not, since no test depends on how busy the machine is
# (docs/decisions/tests-hypothesis-timing.md).
settings.register_profile("simtrust", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("simtrust")
PG_URL = os.environ.get("SIMTRUST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SERVICES = {
    "postgres": ("127.0.0.1", 5432),
    "mqtt": ("127.0.0.1", 1883),
    "nats": ("127.0.0.1", 4222),
    "redis": ("127.0.0.1", 6379),
}


def services_required() -> bool:
    return os.environ.get("SIMTRUST_REQUIRE_SERVICES", "") not in ("", "0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (or, under SIMTRUST_REQUIRE_SERVICES, fail) when ``name`` is not reachable."""
    host, port = SERVICES[name]
    if _reachable(host, port):
        return
    message = f"{name} at {host}:{port} is not reachable"
    if services_required():
        pytest.fail(message + " and SIMTRUST_REQUIRE_SERVICES is set")
    pytest.skip(message + " (set SIMTRUST_REQUIRE_SERVICES=1 to make this a failure)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under SIMTRUST_REQUIRE_SERVICES (CI), a ``skipif`` whose condition holds (a missing
    peer binary, an unbuilt extension) fails the test instead of skipping it."""
    if not services_required():
        return
    for marker in item.iter_markers("skipif"):
        conditions = marker.args or (marker.kwargs.get("condition"),)
        if any(c is True for c in conditions):
            reason = marker.kwargs.get("reason", "a skipif condition holds")
            pytest.fail(f"{reason}, and SIMTRUST_REQUIRE_SERVICES is set", pytrace=False)


def shared_path() -> Path:
    return Path(os.environ.get("SIMTRUST_SHARED", str(REPO.parent / "shared")))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared folder {path} is missing on CI")
        pytest.skip(f"shared folder {path} is absent (set SIMTRUST_SHARED)")
    return path


@pytest.fixture(name="require_service")
def require_service_fixture() -> Callable[[str], None]:
    return require_service


def _pg_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_service("postgres")
    return kind


@pytest.fixture
def db(store_kind: str, tmp_path: Path) -> Iterator[Database]:
    """A fresh empty database on SQLite and on PostgreSQL."""
    if store_kind == "sqlite":
        database: Database = SqliteDatabase(tmp_path / "test.db")
        yield database
        database.close()
    else:
        pg = PostgresDatabase(PG_URL, schema=_pg_schema())
        try:
            yield pg
        finally:
            pg.drop_schema()
            pg.close()


# Migrating a fresh PostgreSQL schema costs a second or more of DDL (and dropping it
# most of another), for each of a few hundred tests. A schema a test is done with is
# emptied instead and handed to the next test: only if its shape (tables, columns,
# indexes, views, routines, sequences and applied migrations) is exactly that of a
# freshly migrated one; otherwise it is dropped as before. Emptying truncates the
# tables that hold rows and restarts the sequences that were used, so the next test
# sees what a fresh schema would show.
_FREE_SCHEMAS: list[str] = []
_FRESH_SHAPE: list[str] = []  # the shape of the first freshly migrated schema seen

_SHAPE_SQL = """
SELECT 't:' || table_name || ':' || column_name || ':' || data_type || ':'
       || replace(coalesce(column_default, ''), %(s)s || '.', '') || ':' || is_nullable
  FROM information_schema.columns WHERE table_schema = %(s)s
UNION ALL SELECT 'i:' || indexname || ':' || replace(indexdef, %(s)s || '.', '')
  FROM pg_indexes WHERE schemaname = %(s)s
UNION ALL SELECT 'v:' || viewname FROM pg_views WHERE schemaname = %(s)s
UNION ALL SELECT 'q:' || sequencename FROM pg_sequences WHERE schemaname = %(s)s
UNION ALL SELECT 'r:' || routine_name FROM information_schema.routines
  WHERE routine_schema = %(s)s
UNION ALL SELECT 'g:' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND NOT t.tgisinternal
UNION ALL SELECT 'm:' || component || ':' || version || ':' || checksum
  FROM {schema}.schema_migrations
"""


def _shape(conn: Any, schema: str) -> str:
    rows = conn.execute(_SHAPE_SQL.format(schema=schema), {"s": schema}).fetchall()
    return "\n".join(sorted(str(r[0]) for r in rows))


def _empty_schema(schema: str) -> bool:
    """Empty ``schema`` for reuse; False when it is not shaped like a fresh one."""
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")
            shape = _shape(conn, schema)
            if not _FRESH_SHAPE or shape != _FRESH_SHAPE[0]:
                return False
            tables = [str(r[0]) for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
            probe = " UNION ALL ".join(
                f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {schema}.{t})"
                for t in tables if t != "schema_migrations")
            full = [str(r[0]) for r in conn.execute(probe)] if probe else []
            if full:
                conn.execute("TRUNCATE " + ", ".join(f"{schema}.{t}" for t in full)
                             + " RESTART IDENTITY CASCADE")
            for (seq,) in conn.execute(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = %s"
                    " AND last_value IS NOT NULL", (schema,)).fetchall():
                conn.execute(f"ALTER SEQUENCE {schema}.{seq} RESTART")
            return True
    except psycopg.Error:
        return False


def make_runtime(kind: str, home: Path, **kwargs: Any) -> Runtime:
    if kind == "sqlite":
        return Runtime.ephemeral(home, **kwargs)
    if _FREE_SCHEMAS:
        return Runtime.ephemeral(home, store_url=PG_URL, schema=_FREE_SCHEMAS.pop(), **kwargs)
    rt = Runtime.ephemeral(home, store_url=PG_URL, schema=_pg_schema(), **kwargs)
    if not _FRESH_SHAPE and not kwargs:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            _FRESH_SHAPE.append(_shape(conn, str(rt.db.schema)))  # type: ignore[attr-defined]
    return rt


def close_runtime(rt: Runtime) -> None:
    """Close ``rt``; on PostgreSQL empty its schema for the next test, or drop it."""
    db = rt.db
    rt.close()
    if isinstance(db, PostgresDatabase):
        assert db.schema is not None
        if _empty_schema(db.schema):
            _FREE_SCHEMAS.append(db.schema)
            return
        _drop_schema(db.schema)


def _drop_schema(schema: str) -> None:
    cleaner = PostgresDatabase(PG_URL)
    cleaner.schema = schema
    cleaner.drop_schema()
    cleaner.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _FREE_SCHEMAS:
        _drop_schema(_FREE_SCHEMAS.pop())


@pytest.fixture
def runtime(store_kind: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime (migrations applied, fresh keyring) on SQLite and on PostgreSQL."""
    rt = make_runtime(store_kind, tmp_path / "home")
    try:
        yield rt
    finally:
        close_runtime(rt)


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.ephemeral(tmp_path / "home")
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def operator_headers(sqlite_runtime: Runtime) -> dict[str, str]:
    key = sqlite_runtime.tenants.create_key("operator-admin", "test operator")
    return {"Authorization": f"Bearer {key.secret}"}


@pytest.fixture
def api(sqlite_runtime: Runtime) -> Any:


    with TestClient(create_app(sqlite_runtime)) as client:
        yield client
