"""Hypothesis strategies generated from the official TMF OpenAPI schemas.

A small generator over the JSON Schema subset the TM Forum files use (swagger 2.0
``definitions`` as draft 4 and OpenAPI 3.0 ``components.schemas``): ``$ref``,
``allOf``, ``oneOf``/``anyOf``, ``type`` (object, array, string, number, integer,
boolean), ``properties``/``required``, ``items``/``minItems``/``maxItems``,
``enum`` and the formats ``date-time``, ``uri`` and ``base64``. Two strategies per
schema:

- :func:`instances` draws documents that are valid against the schema (each one
  is checked in the tests with jsonschema, so a generator bug cannot hide),
  with optional *hints*: a property name mapped to a strategy for its value
  (ids of offerings that exist, states the server knows), mixed with the
  schema's own values so the decoders see both;
- :func:`mutants` draws a valid document and breaks it at one place: a member
  of the wrong type, a required member removed, an enum value outside the enum,
  an unknown member — the shapes a decoder of untrusted bytes must refuse with a
  problem, never an exception.

hypothesis-jsonschema is not in the environment; this covers what the files need.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from hypothesis import strategies as st

__all__ = ["SchemaStrategies"]

_MAX_DEPTH = 4
#: Optional members drawn per object.
_MAX_OPTIONAL = 4
_STRINGS = st.text(alphabet=st.characters(exclude_categories=("Cs",)),
                   max_size=10)
_DATES = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z"))
_URIS = st.sampled_from(["https://example.com/x", "urn:x:1", "http://127.0.0.1/y",
                         "https://a.example/b?c=d"])
_BASE64 = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
_ANY = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | \
    st.floats(allow_nan=False, allow_infinity=False) | _STRINGS


def _wrong(schema_type: str | None) -> st.SearchStrategy[Any]:
    """A value of another JSON type than ``schema_type``."""
    pool: dict[str, st.SearchStrategy[Any]] = {
        "string": _STRINGS, "integer": st.integers(-(2**70), 2**70),
        "number": st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(), "null": st.none(),
        "array": st.lists(_ANY, max_size=2),
        "object": st.dictionaries(_STRINGS, _ANY, max_size=2)}
    others = [s for name, s in pool.items() if name != schema_type
              and not (schema_type == "number" and name == "integer")]
    return st.one_of(others)


class SchemaStrategies:
    """Strategies for the schemas of one document (its definitions resolve ``$ref``)."""

    def __init__(self, document: Mapping[str, Any],
                 hints: Mapping[str, st.SearchStrategy[Any]] | None = None) -> None:
        self._doc = document
        self._hints = dict(hints or {})
        self._cache: dict[tuple[int | str, int], st.SearchStrategy[Any]] = {}

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = str(schema["$ref"])
            assert ref.startswith("#/"), ref
            node: Any = self._doc
            for part in ref[2:].split("/"):
                node = node[part]
            schema = node
            seen += 1
            assert seen < 32, ref
        return schema

    def _merged(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """``schema`` with its ``allOf`` parts folded in (properties and required joined)."""
        schema = self._resolve(schema)
        out = {k: v for k, v in schema.items() if k not in ("allOf", "discriminator")}
        props = dict(out.get("properties", {}))
        required = list(out.get("required", []))
        for part in schema.get("allOf", []):
            merged = self._merged(part)
            props.update(merged.get("properties", {}))
            required += [r for r in merged.get("required", []) if r not in required]
            for key in ("type", "enum", "format", "items", "oneOf", "anyOf"):
                if key in merged and key not in out:
                    out[key] = merged[key]
        if props:
            out["properties"] = props
            out.setdefault("type", "object")
        if required:
            out["required"] = required
        return out

    def for_schema(self, schema: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
        """Documents valid against ``schema`` (strategies cached per schema and depth)."""
        # a bare reference is keyed by its text (callers build such dicts on the fly,
        # and a freed dict's id is reused); the documents' own schemas live as long as us
        key = (str(schema["$ref"]) if len(schema) == 1 and "$ref" in schema
               else id(schema), depth)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._build(schema, depth)
        return found

    def _build(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        resolved = self._resolve(schema)
        mapping = resolved.get("discriminator", {}).get("mapping")
        if mapping and resolved.get("oneOf"):
            # OpenAPI discriminator: the chosen branch names itself in its property.
            name = resolved["discriminator"]["propertyName"]
            return st.one_of([self.for_schema({"$ref": ref}, depth).map(
                lambda d, v=value: {**d, name: v} if isinstance(d, dict) else d)
                for value, ref in sorted(mapping.items())])
        merged = self._merged(schema)
        choices = merged.get("oneOf") or merged.get("anyOf")
        if choices and not merged.get("properties"):
            return st.one_of([self.for_schema(c, depth) for c in choices])
        if "enum" in merged:
            return st.sampled_from(list(merged["enum"]))
        kind = merged.get("type")
        if kind == "object" or (kind is None and "properties" in merged):
            return self._object(merged, depth)
        if kind == "array":
            items = merged.get("items", {})
            low = int(merged.get("minItems", 0))
            high = max(low, min(int(merged.get("maxItems", 2)), 2))
            if depth >= _MAX_DEPTH and low == 0:
                return st.just([])
            return st.lists(self.for_schema(items, depth + 1), min_size=low, max_size=high)
        if kind == "string":
            fmt = merged.get("format")
            return {"date-time": _DATES, "uri": _URIS, "base64": _BASE64}.get(fmt, _STRINGS)
        if kind == "integer":
            return st.integers(-(2**31), 2**31)
        if kind == "number":
            return st.floats(allow_nan=False, allow_infinity=False, width=32)
        if kind == "boolean":
            return st.booleans()
        return _ANY

    def _object(self, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        props: dict[str, Any] = dict(schema.get("properties", {}))
        required = [r for r in schema.get("required", []) if r in props]
        optional = sorted(p for p in props if p not in required)
        if depth >= _MAX_DEPTH:
            optional = [p for p in optional if p in self._hints]

        def value(name: str) -> st.SearchStrategy[Any]:
            own = st.deferred(lambda: self.for_schema(props[name], depth + 1))
            hint = self._hints.get(name)
            return own if hint is None else st.one_of(hint, own)

        values = {p: value(p) for p in props}
        fixed = st.fixed_dictionaries({r: values[r] for r in required})
        if not optional:
            return fixed

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            # a few optional members per object, so documents stay small at every depth
            doc: dict[str, Any] = draw(fixed)
            for name in draw(st.lists(st.sampled_from(optional), max_size=_MAX_OPTIONAL,
                                      unique=True)):
                doc[name] = draw(values[name])
            return doc

        return build()

    def instances(self, definition: str) -> st.SearchStrategy[Any]:
        """Valid documents of the named definition."""
        return self.for_schema(self._definition(definition))

    def _definition(self, name: str) -> Mapping[str, Any]:
        if "definitions" in self._doc:
            return {"$ref": f"#/definitions/{name}"}
        return {"$ref": f"#/components/schemas/{name}"}

    def mutants(self, definition: str) -> st.SearchStrategy[Any]:
        """Documents of the named definition broken at one place."""
        schema = self._merged(self._definition(definition))

        @st.composite
        def broken(draw: st.DrawFn) -> Any:
            doc = draw(self.instances(definition))
            path, node_schema = draw(self._pick(doc, schema))
            how = draw(st.sampled_from(["type", "drop", "enum", "extra"]))
            parent: Any = doc
            for step in path[:-1]:
                parent = parent[step]
            if not path:
                return draw(_wrong("object"))
            last = path[-1]
            required = set(self._merged(node_schema[1]).get("required", [])) \
                if node_schema[1] is not None else set()
            if how == "drop" and isinstance(parent, dict) and last in required:
                del parent[last]
            elif how == "enum" and "enum" in self._merged(node_schema[0]):
                parent[last] = draw(_STRINGS.filter(
                    lambda s: s not in self._merged(node_schema[0])["enum"]))
            elif how == "extra" and isinstance(parent, dict):
                parent[draw(_STRINGS)] = draw(_ANY)
            else:
                parent[last] = draw(_wrong(self._merged(node_schema[0]).get("type")))
            return doc

        return broken()

    def _pick(self, doc: Any, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        """(path, (schema of the node, schema of its parent)) of some node in ``doc``."""
        spots: list[tuple[list[Any], tuple[Mapping[str, Any], Mapping[str, Any] | None]]] = []

        def walk(node: Any, node_schema: Mapping[str, Any], path: list[Any],
                 parent: Mapping[str, Any] | None) -> None:
            merged = self._merged(node_schema)
            if path:
                spots.append((path, (merged, parent)))
            if isinstance(node, dict):
                props = merged.get("properties", {})
                for key, child in node.items():
                    if key in props:
                        walk(child, props[key], [*path, key], merged)
            elif isinstance(node, list):
                for i, child in enumerate(node):
                    walk(child, merged.get("items", {}), [*path, i], merged)

        walk(doc, schema, [], None)
        if not spots:
            return st.just(([], (schema, None)))
        return st.sampled_from(spots)
