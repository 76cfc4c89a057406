"""The served OpenAPI document describes the TM Forum routes with the official schemas.

The official TMF files (TMF620 v4.1.0, TMF622 v4.0.0 and v5.0.0, TMF633, TMF637,
TMF638 v4.0.0, TMF641 v4.1.0; TM Forum, Apache-2.0) are swagger 2.0 or OpenAPI
3.0 documents. ``tmf_official.json`` (package data, written by
``tools/tmf_schemas.py`` from those files, checked against them by
``tests/market/test_tmf_openapi.py``) holds each official operation's request and
response schemas and every schema they reach, renamed ``<API>v<major>_<name>``
so that the APIs' homonyms (``Error``, ``ProductOfferingRef``…) do not collide.

:func:`embed_official` puts them into the served document (OpenAPI 3.1 §4.8.8,
Components Object): each operation under a TMF base path takes, for its request
body and for each status it answers, the schema its official counterpart (same
path relative to the base path, same method) declares; statuses the official
operation does not list (413, 422, 503) and ``default`` answers take the API's
``Error``. Each such operation carries ``x-tmf-official`` naming the file and
operation it follows. Nothing is fetched over the network.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from typing import Any

__all__ = ["OFFICIAL_MARK", "embed_official", "official"]

#: Extension member naming the official file and operation a served operation follows.
OFFICIAL_MARK = "x-tmf-official"
_METHODS = ("get", "post", "patch", "delete", "put")
_SCHEMAS = "#/components/schemas/"


@functools.cache
def official() -> dict[str, Any]:
    """The packaged extract of the official files (``apis`` and ``schemas``)."""
    text = importlib.resources.files("simtrust.api").joinpath("tmf_official.json").read_text(
        encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _api_for(path: str, apis: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for name, api in apis.items():
        base = api["base"]
        if path == base or path.startswith(base + "/"):
            return name, api
    return None


def _error_schema(operations: dict[str, Any]) -> Any:
    for item in operations.values():
        for op in item.values():
            for status in ("400", "default", "404", "500"):
                schema = op["responses"].get(status)
                if schema is not None:
                    return schema
    return None


def _names(value: Any, found: set[str]) -> None:
    if isinstance(value, list):
        for v in value:
            _names(v, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith(_SCHEMAS):
                found.add(item[len(_SCHEMAS):])
            elif key == "mapping" and isinstance(item, dict):
                found.update(v[len(_SCHEMAS):] for v in item.values())
            else:
                _names(item, found)


def embed_official(doc: dict[str, Any]) -> dict[str, Any]:
    """Describe every TMF operation of ``doc`` with the official schemas (in place)."""
    data = official()
    apis: dict[str, Any] = data["apis"]
    used: set[str] = set()
    for path, item in doc.get("paths", {}).items():
        found = _api_for(path, apis)
        if found is None:
            continue
        name, api = found
        relative = path[len(api["base"]):] or "/"
        counterparts = api["operations"].get(relative, {})
        error = _error_schema(api["operations"])
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            counterpart = counterparts.get(method)
            if counterpart is None:
                continue
            operation[OFFICIAL_MARK] = {"api": name, "file": api["file"],
                                        "version": api["version"], "path": relative,
                                        "method": method}
            body = operation.get("requestBody")
            if body is not None and counterpart["request"] is not None:
                for media in body.setdefault("content", {}).values():
                    media["schema"] = copy.deepcopy(counterpart["request"])
            for status, answer in operation.get("responses", {}).items():
                schema = counterpart["responses"].get(status)
                if schema is None and status[0] in "45":
                    schema = error
                if schema is None:
                    if status == "204":
                        answer.pop("content", None)
                    continue
                answer["content"] = {"application/json": {"schema": copy.deepcopy(schema)}}
            _names(operation, used)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    todo = sorted(used)
    while todo:
        schema_name = todo.pop()
        if schema_name in schemas or schema_name not in data["schemas"]:
            continue
        schemas[schema_name] = copy.deepcopy(data["schemas"][schema_name])
        more: set[str] = set()
        _names(schemas[schema_name], more)
        todo.extend(sorted(more - set(schemas)))
    return doc
