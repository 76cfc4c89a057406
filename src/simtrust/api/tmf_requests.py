"""TMF request bodies are checked against the official request schemas before any work.

Each served TMF operation follows an official one (``tmf_openapi``: same path
relative to the base path, same method), whose request schema
(``ProductOrder_Create``, ``ProductOffering_Update``, ``EventSubscriptionInput``,
v5 ``ProductOrder_FVO`` …) is in the packaged extract of the official files. A
body that does not validate is refused with 400 (TMF630 part 1, error
management: "Bad Request … invalid attribute") naming the first offending
member as a JSON pointer, before anything is read or written. A PATCH body is
a JSON Merge Patch (RFC 7386): its ``null`` members delete, so they are taken
out before the remaining members are checked against the ``_Update`` schema,
whose top-level ``required`` list does not apply to a patch (TMF622 v4's
``ProductOrder_Update`` requires ``productOrderItem``, which would make every
state change resend the items).

The swagger 2.0 files are JSON Schema draft 4 and the OpenAPI 3.0 file a
draft 7 dialect; JSON Schema alone has no ``discriminator`` (OpenAPI 3.0
§4.7.25), so a discriminated ``oneOf`` is read as the discriminator says: the
branch that ``@type`` names must validate. TMF622 v5 requires ``@type`` on
every ``_FVO``; the operation already says what the body is, so a missing
``@type`` is not refused (one that is present must name a type the schema
allows). Formats are not asserted (the
official files declare ``uri`` for members such as ``href`` that clients fill
with relative references); the services check the values they use.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import Request
from jsonschema import Draft7Validator

from simtrust.api.tmf_openapi import official
from simtrust.errors import InvalidInput

__all__ = ["check_body", "official_body"]

_SCHEMAS = "#/components/schemas/"


def _by_discriminator(value: Any) -> Any:
    if isinstance(value, list):
        return [_by_discriminator(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _by_discriminator(v) for k, v in value.items() if k != "discriminator"}
    mapping = value.get("discriminator", {}).get("mapping") if isinstance(
        value.get("discriminator"), dict) else None
    if mapping and "oneOf" in value:
        name = value["discriminator"]["propertyName"]
        del out["oneOf"]
        out["allOf"] = [*out.get("allOf", []), *[
            {"if": {"properties": {name: {"const": tag}}, "required": [name]},
             "then": {"$ref": ref}} for tag, ref in sorted(mapping.items())],
            {"properties": {name: {"enum": sorted(mapping)}}, "required": [name]}]
    return out


@functools.cache
def _schemas() -> dict[str, Any]:
    return {name: _by_discriminator(schema) for name, schema in official()["schemas"].items()}


@functools.cache
def _validator(ref: str) -> Draft7Validator:
    # draft 4 and draft 7 agree on every keyword the TMF files use (no exclusive bounds)
    return Draft7Validator({"$ref": ref, "components": {"schemas": _schemas()}})


@functools.cache
def _request_schemas() -> dict[tuple[str, str], str]:
    """(served path template, method) → the official request schema reference."""
    found = {}
    for api in official()["apis"].values():
        for path, operations in api["operations"].items():
            for method, operation in operations.items():
                request = operation.get("request")
                if isinstance(request, dict) and isinstance(request.get("$ref"), str):
                    found[(api["base"] + path, method.upper())] = request["$ref"]
    return found


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _type_only(error: Any) -> bool:
    """A missing ``@type``: the operation says what the body is (v5 ``*_FVO``)."""
    return bool(error.validator == "required" and isinstance(error.instance, dict)
                and "@type" not in error.instance and error.message.startswith("'@type'"))


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def check_body(template: str, method: str, body: Any) -> None:
    """InvalidInput unless ``body`` validates against the official request schema."""
    ref = _request_schemas().get((template, method.upper()))
    if ref is None:
        return
    patch = method.upper() == "PATCH"
    if patch:
        body = _without_nulls(body)
    errors = [e for e in _validator(ref).iter_errors(body)
              # a merge patch names only what changes: the top-level ``required`` of an
              # ``_Update`` schema (TMF622 v4 lists ``productOrderItem``) cannot apply
              if not (patch and e.validator == "required" and not e.absolute_path)
              and not _type_only(e)]
    error = min(errors, key=lambda e: (len(e.absolute_path), str(e.message)), default=None)
    if error is None:
        return
    where = _pointer(error.absolute_path)
    name = ref.removeprefix(_SCHEMAS).split("_", 1)[1]
    raise InvalidInput(f"the body does not match the official {name} schema at {where}:"
                       f" {error.validator} {_short(error.validator_value)}",
                       attribute=where)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


async def official_body(request: Request) -> None:
    """FastAPI dependency: the TMF route's body against its official request schema."""
    if request.method not in ("POST", "PATCH", "PUT"):
        return
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        return  # the route's own decoder answers malformed JSON
    if not isinstance(body, dict):
        return  # and a body that is not an object (422, as every route's)
    check_body(template, request.method, body)
