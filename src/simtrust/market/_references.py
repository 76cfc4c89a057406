"""References inside the catalogs must name resources that exist and that the owner can see.

TMF620 Product Catalog v4.1.0 and TMF633 Service Catalog v4.0.0 link their
resources by ``*Ref`` objects (``ProductSpecificationRef``, ``CategoryRef``,
``ServiceSpecificationRef``, …: an ``id``, optionally ``href`` and ``name``).
The files leave their integrity to the implementation; a catalog whose
offering names a specification that does not exist cannot be ordered, so a
create or a patch whose document references a missing resource — or a tenant's
private resource from another tenant or from the public catalog — is refused
with 422 ``unknown-reference`` naming the member (``attribute``) and the id,
and nothing is written. A reference to another tenant's resource answers the
very same as a missing one (no existence leak). ``ProductOfferingPriceRefOrValue``
members that carry a price value (no ``id``) are values, not references.
Deleting a referenced resource is not blocked (TMF620 has no such rule and
orders keep their own copies); ordering checks what it follows again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from simtrust.errors import InvalidInput, NotFound, Rejected

__all__ = ["REFERENCES", "check_references"]

#: kind → (member, referenced kind, whether the member is an array).
REFERENCES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "productOffering": (("productSpecification", "productSpecification", False),
                        ("productOfferingPrice", "productOfferingPrice", True),
                        ("category", "category", True),
                        ("bundledProductOffering", "productOffering", True)),
    "productSpecification": (("serviceSpecification", "serviceSpecification", True),
                             ("bundledProductSpecification", "productSpecification", True)),
    "catalog": (("category", "category", True),),
    "category": (("subCategory", "category", True),
                 ("productOffering", "productOffering", True)),
    "serviceSpecification": (("serviceSpecRelationship", "serviceSpecification", True),),
    "serviceCatalog": (("category", "serviceCategory", True),),
    "serviceCategory": (("category", "serviceCategory", True),
                        ("serviceCandidate", "serviceCandidate", True)),
    "serviceCandidate": (("serviceSpecification", "serviceSpecification", False),
                         ("category", "serviceCategory", True)),
}
#: Members holding one id of the same kind (``parentId`` of a category).
_PARENTS = {"category": "category", "serviceCategory": "serviceCategory"}


def _refs(doc: dict[str, Any], member: str, many: bool) -> Iterator[tuple[str, Any]]:
    value = doc.get(member)
    if value is None:
        return
    if many:
        if not isinstance(value, list):
            raise InvalidInput(f"{member} must be an array", attribute=member)
        for i, entry in enumerate(value):
            yield f"{member}[{i}]", entry
    else:
        yield member, value


def check_references(kind: str, doc: dict[str, Any], tenant_id: str | None,
                     owner_of: Callable[[str, str], str | None]) -> None:
    """Rejected ``unknown-reference`` unless every reference of ``doc`` resolves.

    ``owner_of(kind, id)`` is the owning tenant of an existing resource (None: public)
    and raises NotFound for a missing one. A public resource may reference public
    resources only; a tenant's may reference public ones and its own.
    """
    found: list[tuple[str, str, str]] = []
    for member, target, many in REFERENCES.get(kind, ()):
        for where, ref in _refs(doc, member, many):
            if not isinstance(ref, dict):
                raise InvalidInput(f"{where} must be a reference object", attribute=where)
            ref_id = ref.get("id")
            if ref_id is None and member == "productOfferingPrice":
                continue  # a price given by value
            if not isinstance(ref_id, str) or not ref_id:
                raise InvalidInput(f"{where} must name the id of a {target}", attribute=where)
            found.append((where, target, ref_id))
    parent = doc.get("parentId")
    if kind in _PARENTS and parent is not None:
        if not isinstance(parent, str):
            raise InvalidInput("parentId must be a string", attribute="parentId")
        found.append(("parentId", _PARENTS[kind], parent))
    for where, target, ref_id in found:
        try:
            owner = owner_of(target, ref_id)
        except NotFound:
            owner = "\x00missing"
        if owner is not None and owner != tenant_id:
            raise Rejected("unknown-reference",
                           f"{where} names no {target} {ref_id!r}", attribute=where, id=ref_id)
