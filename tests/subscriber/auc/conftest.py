"""Fixtures of the AuC tests: the 3GPP conformance sets and the transcribed vectors.

``milenage_set`` / ``tuak_set`` parametrise a test over every set of
``shared/vectors/3gpp`` (loaded at collection; when the folder is absent the one
placeholder case goes through ``shared_dir``, which skips with its reason, or
fails on CI). ``data_dir`` holds vectors transcribed from RFC 5448 and TS 33.501.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
DATA = Path(__file__).resolve().parent / "data"


def _shared() -> Path:
    return Path(os.environ.get("SIMTRUST_SHARED", str(REPO.parent / "shared")))


def _sets(name: str) -> list[dict[str, Any]] | None:
    path = _shared() / "vectors" / "3gpp" / name
    if not path.is_file():
        return None
    sets: list[dict[str, Any]] = json.loads(path.read_text())["sets"]
    return sets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, file in (
        ("milenage_set", "milenage_ts35208.json"),
        ("tuak_set", "tuak_ts35233.json"),
    ):
        if fixture in metafunc.fixturenames:
            sets = _sets(file)
            if sets is None:
                metafunc.parametrize(fixture, [None], indirect=True, ids=["absent"])
            else:
                ids = [f"set{s['set']}" for s in sets]
                metafunc.parametrize(fixture, sets, indirect=True, ids=ids)


@pytest.fixture
def milenage_set(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param is None:
        request.getfixturevalue("shared_dir")  # skips (or fails on CI) with the reason
    param: dict[str, Any] = request.param
    return param


@pytest.fixture
def tuak_set(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param is None:
        request.getfixturevalue("shared_dir")
    param: dict[str, Any] = request.param
    return param


@pytest.fixture
def kdf_vectors(shared_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir / "vectors" / "3gpp" / "kdf.json").read_text())
    return data


@pytest.fixture
def data_dir() -> Path:
    return DATA


def h(text: str) -> bytes:
    return bytes.fromhex(text)
