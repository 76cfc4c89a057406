"""TM Forum query behaviour and JSON merge patch.

TMF630 REST API Design Guidelines 4.x, part 1: attribute selection with
``fields`` (section 4.1; ``id`` and ``href`` always returned), filtering by
attribute equality with ``attr=value`` and ``attr.sub=value`` (section 4.2;
a comma in the value means *any of*), and pagination with ``offset`` and
``limit`` answered by ``X-Total-Count`` and ``X-Result-Count`` (section 4.3).
Partial update uses JSON Merge Patch (RFC 7386), the media type
``application/merge-patch+json`` that TMF630 section 5 requires servers to
support. These are a few lines each and no library implements TMF630's
filter dialect, so they are written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simtrust.errors import InvalidInput

__all__ = ["RESERVED_PARAMS", "matches", "merge_patch", "select_fields"]

#: Query parameters that are not attribute filters.
RESERVED_PARAMS = frozenset({"fields", "offset", "limit", "sort"})
#: Attributes every representation keeps whatever ``fields`` selects.
_ALWAYS = ("id", "href", "@type")


def select_fields(document: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """The document restricted to the comma-separated top-level ``fields``."""
    if fields is None:
        return document
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    if not wanted:
        raise InvalidInput("fields names no attribute", parameter="fields")
    return {k: v for k, v in document.items() if k in wanted or k in _ALWAYS}


def _values(node: Any, path: list[str]) -> Iterable[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
    elif isinstance(node, dict) and path[0] in node:
        yield from _values(node[path[0]], path[1:])


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def matches(document: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
    """Whether every ``attr[.sub]=v1,v2`` filter holds (equality, any listed value)."""
    for name, wanted in filters.items():
        options = set(wanted.split(","))
        found = {_text(v) for v in _values(document, name.split("."))}
        if not found & options:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2: apply ``patch`` to ``target`` (null removes a member)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
