"""TMF622 Product Ordering v5.0.0: the stored (v4-shaped) order documents in the v5 model.

TMF622 v5.0.0 (``TMF622-ProductOrdering-v5.0.0.oas.yaml``) requires ``@type`` on
every ``Extensible`` (``components.schemas.Extensible.required``) and types the
characteristics (``StringCharacteristic``, ``IntegerCharacteristic``, …, the
``Characteristic`` discriminator mapping); otherwise the order, item and
cancellation members used here are the same as in v4.0.0. The HTTP routes
and the v5 hub's event notifications both use these conversions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["V5_BASE", "cancellation_v5", "event_v5", "order_v5"]

V5_BASE = "/tmf-api/productOrderingManagement/v5"
#: Member → the ``@type`` TMF622 v5.0.0 gives it (v4 documents leave it out).
_V5_TYPES = {"productOrderItem": "ProductOrderItem", "productOffering": "ProductOfferingRef",
             "note": "Note", "product": "Product", "productSpecification":
             "ProductSpecificationRef", "channel": "RelatedChannel"}
_V5_VALUE_TYPES = ((bool, "BooleanCharacteristic"), (int, "IntegerCharacteristic"),
                   (float, "FloatCharacteristic"), (str, "StringCharacteristic"),
                   (dict, "ObjectCharacteristic"))


def _characteristic(char: dict[str, Any]) -> dict[str, Any]:
    if "@type" in char:
        return char
    value = char.get("value")
    kind = next((name for cls, name in _V5_VALUE_TYPES if isinstance(value, cls)),
                "Characteristic")
    if isinstance(value, list):
        kind = "ObjectArrayCharacteristic" if value and all(isinstance(v, dict) for v in value) \
            else "StringArrayCharacteristic"
    return {**char, "@type": kind}


def _typed(value: Any, member: str | None = None) -> Any:
    if isinstance(value, list):
        return [_typed(v, member) for v in value]
    if not isinstance(value, dict):
        return value
    if member == "productCharacteristic":
        return _characteristic(value)
    out = {k: _typed(v, k) for k, v in value.items()}
    if member == "product" and "@type" not in out and "id" in out \
            and "productCharacteristic" not in out:
        out["@type"] = "ProductRef"  # the installed product a modify/delete item names
    if member in _V5_TYPES and "@type" not in out:
        out["@type"] = _V5_TYPES[member]
    return out


def order_v5(document: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A product order in the v5 model, ``href`` under the v5 base path."""
    doc: dict[str, Any] = _typed(document)
    doc["href"] = f"{base_url}{V5_BASE}/productOrder/{document['id']}"
    doc.setdefault("@type", "ProductOrder")
    return doc


def cancellation_v5(document: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A cancelProductOrder task in the v5 model."""
    ref = document["productOrder"]
    return {**document, "@type": "CancelProductOrder",
            "href": f"{base_url}{V5_BASE}/cancelProductOrder/{document['id']}",
            "productOrder": {**ref, "@type": "ProductOrderRef",
                             "href": f"{base_url}{V5_BASE}/productOrder/{ref['id']}"}}


def event_v5(event: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A v4 TMF622 event (``event: {resource: document}``) in the v5 model."""
    (resource, document), = event["event"].items()
    convert = cancellation_v5 if resource == "cancelProductOrder" else order_v5
    return {**event, "@type": event["eventType"],
            "event": {resource: convert(document, base_url)}}
