"""Fixtures of the ledger node tests: a settable clock and node factories on SQLite/PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simtrust.ledger import Ed25519Signer, LedgerConfig, LedgerNode
from simtrust.store import Database, SqliteDatabase

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    @property
    def ms(self) -> int:
        return int(self.now.timestamp() * 1000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def operator() -> Ed25519Signer:
    return Ed25519Signer(bytes(range(32)))


NodeFactory = Callable[..., LedgerNode]


@pytest.fixture
def make_node(
    tmp_path: Path, clock: ManualClock, operator: Ed25519Signer
) -> Iterator[NodeFactory]:
    """Build nodes on one SQLite file (``fresh=True`` for a new file); all closed after."""
    nodes: list[LedgerNode] = []
    counter = [0]

    def factory(db: Database | None = None, fresh: bool = False, **config: object) -> LedgerNode:
        if db is None:
            if fresh:
                counter[0] += 1
            db = SqliteDatabase(tmp_path / f"ledger{counter[0]}.db")
        cfg = LedgerConfig(**config)  # type: ignore[arg-type]
        node = LedgerNode(db, operator, config=cfg, clock=clock)
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        node.close()
        node.db.close()


@pytest.fixture
def node(make_node: NodeFactory) -> LedgerNode:
    return make_node()


@pytest.fixture
def any_db_node(db: Database, clock: ManualClock, operator: Ed25519Signer) -> Iterator[LedgerNode]:
    """A node on SQLite and on PostgreSQL (the shared ``db`` fixture)."""
    node = LedgerNode(db, operator, clock=clock)
    yield node
    node.close()
