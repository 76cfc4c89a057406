"""Helpers for tests that walk the served OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation of the document."""
    for path, item in sorted(doc["paths"].items()):
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local ``$ref`` (``#/...``) names; KeyError if it names nothing."""
    if not ref.startswith("#/"):
        raise KeyError(ref)
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)
