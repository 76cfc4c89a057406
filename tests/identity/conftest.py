"""Fixtures of the identity tests: a migrated store, fixed clocks and keys, finalized messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simtrust.identity import Ed25519Signer
from simtrust.identity._schema import MIGRATIONS
from simtrust.store import Database, apply_migrations

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Finalized:
    """What the ledger hands a handler for one finalized message (the contract in the issue)."""

    message_id: bytes
    issuer: bytes
    issued_at: datetime | int | float
    payload_type: str
    payload: bytes
    order: int


class FakeLedger:
    """Finalizes submitted payloads one after the other, like a sole validator."""

    def __init__(self, start: datetime = NOW) -> None:
        self.order = 0
        self.time = start.timestamp()
        self.messages: list[Finalized] = []

    def finalize(self, payload_type: str, payload: bytes) -> Finalized:
        self.order += 1
        self.time += 10
        message = Finalized(
            message_id=hashlib.blake2b(
                payload + self.order.to_bytes(8, "big"), digest_size=32
            ).digest(),
            issuer=b"\x01" * 32,
            issued_at=self.time,
            payload_type=payload_type,
            payload=payload,
            order=self.order,
        )
        self.messages.append(message)
        return message


@pytest.fixture
def identity_db(db: Database) -> Database:
    apply_migrations(db, MIGRATIONS)
    return db


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def issuer_signer() -> Ed25519Signer:
    return Ed25519Signer.from_seed(bytes(range(32)))


@pytest.fixture
def holder_signer() -> Ed25519Signer:
    return Ed25519Signer.from_seed(bytes(range(1, 33)))


@pytest.fixture
def vectors(shared_dir: Path) -> Callable[[str], Any]:
    base = shared_dir / "vectors" / "w3c-vc-di-eddsa"

    def load(name: str) -> Any:
        path = base / name
        text = path.read_text("utf-8")
        return json.loads(text) if path.suffix == ".json" else text.strip()

    return load


def credential_for(issuer: str, subject: str | None = None, **extra: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://www.w3.org/ns/credentials/examples/v2",
        ],
        "id": "urn:uuid:0b4fbd4e-7a43-4b8b-9e49-1f1d0c0a2b3c",
        "type": ["VerifiableCredential", "DeviceCertificate"],
        "issuer": issuer,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": subject or "did:example:device", "imeiTac": "35209900"},
    }
    credential.update(extra)
    return credential
