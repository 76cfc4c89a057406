"""Federated CSP marketplace: TMF620 catalog, TMF622 ordering, TMF637 inventory.

What exists and what does not yet is in ``docs/market.md``.
"""

from simtrust.market._query import RESERVED_PARAMS, matches, merge_patch, select_fields
from simtrust.market._service import (
    CATALOG_KINDS,
    ORDER_TRANSITIONS,
    Cancellation,
    CatalogItem,
    MarketService,
    Order,
    Product,
    parse_datetime,
)

__all__ = [
    "CATALOG_KINDS",
    "ORDER_TRANSITIONS",
    "RESERVED_PARAMS",
    "Cancellation",
    "CatalogItem",
    "MarketService",
    "Order",
    "Product",
    "matches",
    "merge_patch",
    "parse_datetime",
    "select_fields",
]
