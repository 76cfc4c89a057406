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

import pytest
from fastapi.testclient import TestClient

from simtrust.api import create_app
from simtrust.runtime import Runtime
from simtrust.store import Database, PostgresDatabase, SqliteDatabase

REPO = Path(__file__).resolve().parents[1]
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


def make_runtime(kind: str, home: Path, **kwargs: Any) -> Runtime:
    if kind == "sqlite":
        return Runtime.ephemeral(home, **kwargs)
    return Runtime.ephemeral(home, store_url=PG_URL, schema=_pg_schema(), **kwargs)


def close_runtime(rt: Runtime) -> None:
    """Close ``rt``; on PostgreSQL also drop the schema it lived in."""
    db = rt.db
    rt.close()
    if isinstance(db, PostgresDatabase):
        cleaner = PostgresDatabase(PG_URL)
        cleaner.schema = db.schema
        cleaner.drop_schema()
        cleaner.close()


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
