"""Federated CSP marketplace: TM Forum catalogs, ordering, orchestration, inventories, events.

TMF620 product catalog, TMF633 service catalog, TMF622 product ordering, TMF641
service ordering, TMF637 / TMF638 inventories, hub notifications, the partner listener
(events from the sellers this operator bought from); what exists and what does not
yet is in ``docs/market.md``.
"""

from simtrust.market._buyer import PartnerSeller, bearer
from simtrust.market._cancel import CANCELLING, Cancellations
from simtrust.market._contracts import LedgerContract, build_provisioners
from simtrust.market._events import BASE_PATHS, MAX_ATTEMPTS, MarketEvents, listener_url
from simtrust.market._federation import (
    CATALOG_TAG,
    EVENT_TAG,
    ORDER_TAG,
    SIGNATURE_TAG,
    Federation,
    Publication,
    sign_request,
)
from simtrust.market._inbox import LISTENER_EVENTS, PartnerInbox
from simtrust.market._jobs import CONTENT_TYPE, JOB_KINDS, JOB_STATES, CatalogJobs, Job
from simtrust.market._operators import (
    CREDENTIAL_HEADER,
    OPERATOR_CREDENTIAL_TYPE,
    OperatorAdmission,
    OperatorRevoked,
    OperatorUnknown,
    StatusListFetch,
    credential_verifier,
    operator_credential,
)
from simtrust.market._orchestrate import Orchestrator, resolve_plan, spec_function
from simtrust.market._provision import (
    FUNCTION_ORDER,
    Provisioner,
    Provisioners,
)
from simtrust.market._query import RESERVED_PARAMS, matches, merge_patch, select_fields
from simtrust.market._records import (
    CATALOG_KINDS,
    ORDER_TRANSITIONS,
    REMOVABLE,
    SERVICE_CATALOG_KINDS,
    Cancellation,
    CatalogItem,
    Order,
    Product,
    ServiceOrder,
    ServiceRecord,
    parse_datetime,
)
from simtrust.market._service import MarketService
from simtrust.market._v5 import V5_BASE, cancellation_v5, event_v5, order_v5

__all__ = [
    "BASE_PATHS",
    "CANCELLING",
    "CATALOG_KINDS",
    "CATALOG_TAG",
    "CONTENT_TYPE",
    "CREDENTIAL_HEADER",
    "EVENT_TAG",
    "FUNCTION_ORDER",
    "JOB_KINDS",
    "JOB_STATES",
    "LISTENER_EVENTS",
    "MAX_ATTEMPTS",
    "OPERATOR_CREDENTIAL_TYPE",
    "ORDER_TAG",
    "ORDER_TRANSITIONS",
    "REMOVABLE",
    "RESERVED_PARAMS",
    "SERVICE_CATALOG_KINDS",
    "SIGNATURE_TAG",
    "V5_BASE",
    "Cancellation",
    "Cancellations",
    "CatalogItem",
    "CatalogJobs",
    "Federation",
    "Job",
    "LedgerContract",
    "MarketEvents",
    "MarketService",
    "OperatorAdmission",
    "OperatorRevoked",
    "OperatorUnknown",
    "Orchestrator",
    "Order",
    "PartnerInbox",
    "PartnerSeller",
    "Product",
    "Provisioner",
    "Provisioners",
    "Publication",
    "ServiceOrder",
    "ServiceRecord",
    "StatusListFetch",
    "bearer",
    "build_provisioners",
    "cancellation_v5",
    "credential_verifier",
    "event_v5",
    "listener_url",
    "matches",
    "merge_patch",
    "operator_credential",
    "order_v5",
    "parse_datetime",
    "resolve_plan",
    "select_fields",
    "sign_request",
    "spec_function",
]
