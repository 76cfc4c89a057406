"""The composition root: one :class:`Runtime` wires settings, store, keyring and audit.

The API server, the CLI, the demo and the tests each open a Runtime; packages
obtain their long-lived services through :meth:`Runtime.extension`, which
builds each service once per runtime. Schema migrations of every package
(``simtrust.<pkg>._schema.MIGRATIONS``) are applied when the runtime opens,
and columns a package lists in ``SEALED_COLUMNS`` are re-wrapped by
:meth:`Runtime.rotate_master_key`.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from simtrust.aaa import AaaServices, EapAkaServer, build_aaa
from simtrust.audit import AuditLog
from simtrust.config import Settings, load_settings
from simtrust.crypto import Keyring
from simtrust.errors import ConfigError
from simtrust.store import (
    Database,
    Migration,
    SealedColumn,
    TenantStore,
    apply_migrations,
    open_database,
)

if TYPE_CHECKING:
    from simtrust.bootstrap import BootstrapServices

__all__ = ["SCHEMA_PACKAGES", "Runtime", "SealedColumn", "all_migrations", "utc_now"]

#: Packages whose ``_schema`` module the runtime looks for, lowest layer first.
SCHEMA_PACKAGES = (
    "store",
    "audit",
    "ledger",
    "identity",
    "subscriber",
    "bootstrap",
    "policy",
    "detect",
    "aaa",
    "settlement",
    "streams",
    "market",
)

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _schema_modules() -> Iterable[Any]:
    for package in SCHEMA_PACKAGES:
        name = f"simtrust.{package}._schema"
        if importlib.util.find_spec(f"simtrust.{package}") is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        yield importlib.import_module(name)


def all_migrations() -> list[Migration]:
    found: list[Migration] = []
    for module in _schema_modules():
        found.extend(getattr(module, "MIGRATIONS", []))
    return found


def sealed_columns() -> list[SealedColumn]:
    found: list[SealedColumn] = []
    for module in _schema_modules():
        found.extend(getattr(module, "SEALED_COLUMNS", []))
    return found


class Runtime:
    """Everything one simtrust process shares: settings, store, keyring, audit, clock."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        keyring: Keyring,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self.clock = clock
        apply_migrations(db, all_migrations())
        self.audit = AuditLog(db, clock)
        self.tenants = TenantStore(db)
        self._extensions: dict[str, Any] = {}
        self._ext_lock = threading.RLock()
        self._bootstrap: BootstrapServices | None = None

    def __repr__(self) -> str:
        return f"Runtime(home={str(self.settings.home)!r}, db={self.db!r})"

    @property
    def bootstrap(self) -> BootstrapServices:
        """The bootstrap package's services (BSF, AAnF, CAs, certificate server), built once."""
        with self._ext_lock:
            if self._bootstrap is None:
                from simtrust.bootstrap import build_bootstrap
                from simtrust.subscriber import subscriber_services

                settings = self.settings
                public = None
                if settings.bootstrap_bind:
                    port = settings.bootstrap_bind.rsplit(":", 1)[1]
                    public = f"https://{settings.bootstrap_naf_fqdn}:{port}"
                self._bootstrap = build_bootstrap(
                    db=self.db, keyring=self.keyring, audit=self.audit, clock=self.clock,
                    subscriber=subscriber_services(self), naf_fqdn=settings.bootstrap_naf_fqdn,
                    bsf_domain=settings.bootstrap_bsf_domain, public_base_url=public,
                )
            return self._bootstrap

    @classmethod
    def open(cls, settings: Settings | None = None) -> Runtime:
        """Open the data directory ``settings`` names (it must have been initialised)."""
        settings = settings or load_settings()
        if not settings.master_key_file.is_file():
            raise ConfigError(
                f"no master key at {settings.master_key_file}; run `simtrust init` first"
            )
        keyring = Keyring.load(settings.master_key_file)
        return cls(settings, open_database(settings.store_url), keyring)

    @classmethod
    def initialise(cls, settings: Settings) -> Runtime:
        """Create the data directory and master key if missing, then open."""
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.home.chmod(0o700)
        if not settings.master_key_file.exists():
            Keyring.generate(settings.master_key_file)
        return cls.open(settings)

    @classmethod
    def ephemeral(
        cls,
        home: Path,
        store_url: str | None = None,
        schema: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Runtime:
        """A runtime in a throwaway directory (tests, demo, benchmarks)."""
        settings = load_settings(env={}, home=home)
        if store_url is not None:
            settings = replace(settings, store_url=store_url)
        home.mkdir(parents=True, exist_ok=True)
        keyring = Keyring.generate(settings.master_key_file)
        return cls(settings, open_database(settings.store_url, schema=schema), keyring, clock)

    def extension(self, key: str, factory: Callable[[], T]) -> T:
        """The service registered under ``key``, built by ``factory`` on first use."""
        with self._ext_lock:
            if key not in self._extensions:
                self._extensions[key] = factory()
            value: T = self._extensions[key]
            return value

    @property
    def aaa(self) -> AaaServices:
        """The AAA services (RADIUS server, accounting, dynamic authorization), built once."""
        from simtrust.policy import policy_service
        from simtrust.subscriber import subscriber_services

        def build() -> AaaServices:
            subscriber = subscriber_services(self)
            return build_aaa(self.db, self.keyring, self.audit, self.clock,
                             subscriber.inventory, subscriber.attach,
                             usage=policy_service(self).engine,
                             eap=EapAkaServer(subscriber.auth, self.audit))

        return self.extension("aaa", build)

    def rotate_master_key(self, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Add a master key, re-wrap every sealed column under it; (new id, blobs re-wrapped)."""
        new_kid = self.keyring.add_key()
        count = 0
        for column in sealed_columns():
            rows = self.db.query(
                f"SELECT {column.key_column}, {column.column} FROM {column.table}"
                f" WHERE {column.column} IS NOT NULL"
            )
            with self.db.transaction():
                for key, blob in rows:
                    self.db.execute(
                        f"UPDATE {column.table} SET {column.column} = ?"
                        f" WHERE {column.key_column} = ?",
                        (self.keyring.rewrap(bytes(blob)), key),
                    )
                    count += 1
                    if progress is not None:
                        progress(count)
        return new_kid, count

    def close(self) -> None:
        for value in self._extensions.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        self.db.close()
