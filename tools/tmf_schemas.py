"""Extract the official TM Forum schemas that simtrust's served OpenAPI document embeds.

Reads the official files in ``$SIMTRUST_SHARED/specs/tmf`` (TM Forum, Apache-2.0;
``specs/tmf/SOURCES.md`` names their repositories and commits) and writes
``src/simtrust/api/tmf_official.json``: for each API its base path, each official
operation's request and response schemas, and every schema those reach, renamed
``<API>v<major>_<name>`` (the official ``#/definitions/X`` and
``#/components/schemas/X`` references rewritten to ``#/components/schemas/<prefix>X``).
The schemas themselves are copied unchanged otherwise. ``tests/market/
test_tmf_openapi.py`` regenerates the file and compares, so it cannot drift.

    python tools/tmf_schemas.py [SHARED_DIR]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

#: Official file → (prefix, base path served by simtrust).
FILES = {
    "TMF620-ProductCatalog-v4.1.0.swagger.json":
        ("TMF620v4_", "/tmf-api/productCatalogManagement/v4"),
    "TMF622-ProductOrdering-v4.0.0.swagger.json":
        ("TMF622v4_", "/tmf-api/productOrderingManagement/v4"),
    "TMF622-ProductOrdering-v5.0.0.oas.yaml":
        ("TMF622v5_", "/tmf-api/productOrderingManagement/v5"),
    "TMF633-ServiceCatalog-v4.0.0.swagger.json":
        ("TMF633v4_", "/tmf-api/serviceCatalogManagement/v4"),
    "TMF637-ProductInventory-v4.0.0.swagger.json":
        ("TMF637v4_", "/tmf-api/productInventory/v4"),
    "TMF638-ServiceInventory-v4.0.0.swagger.json":
        ("TMF638v4_", "/tmf-api/serviceInventory/v4"),
    "TMF641-ServiceOrdering-v4.1.0.swagger.json":
        ("TMF641v4_", "/tmf-api/serviceOrdering/v4"),
}
OUTPUT = Path(__file__).resolve().parents[1] / "src" / "simtrust" / "api" / "tmf_official.json"
_LOCAL = ("#/definitions/", "#/components/schemas/")


def _rename(value: Any, prefix: str) -> Any:
    if isinstance(value, list):
        return [_rename(v, prefix) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "$ref" and isinstance(item, str):
            out[key] = _target(item, prefix)
        elif key == "mapping" and isinstance(item, dict):
            out[key] = {k: _target(v, prefix) for k, v in item.items()}
        else:
            out[key] = _rename(item, prefix)
    return out


def _target(ref: str, prefix: str) -> str:
    for local in _LOCAL:
        if ref.startswith(local):
            return f"#/components/schemas/{prefix}{ref[len(local):]}"
    raise ValueError(f"unexpected reference {ref!r}")


def _deref(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node and not node["$ref"].startswith(_LOCAL):
        parts = node["$ref"].lstrip("#/").split("/")
        node = doc
        for part in parts:
            node = node[part]
    return node


def _json_schema(doc: dict[str, Any], holder: Any) -> Any:
    """The application/json (or first) schema of an OAS 3 request body or response."""
    holder = _deref(doc, holder)
    content = holder.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return None if media is None else media.get("schema")


def _operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops: dict[str, dict[str, Any]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "patch", "delete", "put"):
                continue
            request = None
            responses: dict[str, Any] = {}
            if "swagger" in doc:
                for param in op.get("parameters", []):
                    if param.get("in") == "body":
                        request = param["schema"]
                for status, answer in op["responses"].items():
                    responses[status] = answer.get("schema")
            else:
                if "requestBody" in op:
                    request = _json_schema(doc, op["requestBody"])
                for status, answer in op["responses"].items():
                    responses[status] = _json_schema(doc, answer)
            ops.setdefault(path, {})[method] = {"request": request, "responses": responses}
    return ops


def _refs(value: Any, found: set[str]) -> None:
    if isinstance(value, list):
        for v in value:
            _refs(v, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                found.add(item.rsplit("/", 1)[-1])
            elif key == "mapping" and isinstance(item, dict):
                found.update(v.rsplit("/", 1)[-1] for v in item.values())
            else:
                _refs(item, found)


def extract(folder: Path) -> dict[str, Any]:
    apis: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, (prefix, base) in FILES.items():
        text = (folder / name).read_text(encoding="utf-8")
        doc = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
        source = doc["definitions"] if "swagger" in doc else doc["components"]["schemas"]
        ops = _operations(doc)
        # Every schema the operations reach (through references and discriminator mappings).
        wanted: set[str] = set()
        _refs(ops, wanted)
        todo = sorted(wanted)
        while todo:
            schema_name = todo.pop()
            more: set[str] = set()
            _refs(source[schema_name], more)
            for extra in sorted(more - wanted):
                wanted.add(extra)
                todo.append(extra)
        for schema_name in sorted(wanted):
            schemas[prefix + schema_name] = _rename(source[schema_name], prefix)
        apis[prefix.rstrip("_")] = {
            "file": name, "title": doc["info"]["title"], "version": doc["info"]["version"],
            "base": base, "operations": _rename(ops, prefix)}
    return {"apis": apis, "schemas": schemas}


def render(folder: Path) -> str:
    return json.dumps(extract(folder), indent=None, sort_keys=True, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["SIMTRUST_SHARED"])
    OUTPUT.write_text(render(shared / "specs" / "tmf"), encoding="utf-8")
    print(OUTPUT, OUTPUT.stat().st_size)
