"""simtrust as a buyer: TMF622, TMF641 and TMF638 calls to a partner seller's API.

The official operations a buyer makes on a seller's node (any TMF implementation,
simtrust included), at the official base paths:

- TMF622 Product Ordering v4.0.0: ``POST productOrder`` (``ProductOrder_Create``),
  ``GET productOrder/{id}``, ``POST cancelProductOrder``
  (``CancelProductOrder_Create``), ``DELETE productOrder/{id}`` (204); v5.0.0 the
  same at ``/v5``, where ``DELETE`` answers 202 (cancellation accepted) or 204;
- TMF641 Service Ordering v4.1.0: ``POST serviceOrder`` (``ServiceOrder_Create``),
  ``GET serviceOrder/{id}``, ``POST cancelServiceOrder``;
- TMF638 Service Inventory v4.0.0: ``POST service`` (``Service_Create``),
  ``PATCH service/{id}`` (``Service_Update`` as a JSON Merge Patch, RFC 7386),
  ``DELETE service/{id}``.

Each request is authenticated by ``authenticate`` (the seller's API key as a
bearer token, or an RFC 9421 signature by this operator's DID:
:func:`._federation.sign_request`). A refusal (4xx) becomes :class:`InvalidInput`
naming the seller's TMF ``Error`` (``code``, ``reason``), a 5xx or a network
failure :class:`Unavailable`; neither carries the credentials. Nothing is kept
locally: the seller holds the orders, :class:`._federation.Federation` keeps
anchored purchases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from simtrust.errors import InvalidInput, Unavailable
from simtrust.market._events import BASE_PATHS

__all__ = ["PartnerSeller", "bearer"]

ORDERING = BASE_PATHS["productOrdering"]
ORDERING_V5 = BASE_PATHS["productOrderingV5"]
SERVICE_ORDERING = BASE_PATHS["serviceOrdering"]
SERVICE_INVENTORY = BASE_PATHS["serviceInventory"]
Authenticate = Callable[[httpx.Request], None]


def bearer(key: str) -> Authenticate:
    """Authenticate with the seller's API key (``Authorization: Bearer``)."""

    def add(request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {key}"

    return add


class PartnerSeller:
    """The TMF operations of one seller's API at ``url`` (its scheme, host and port)."""

    def __init__(self, client: httpx.Client, url: str, authenticate: Authenticate) -> None:
        parts = httpx.URL(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise InvalidInput("the seller's URL must be an http or https URL",
                               attribute="url")
        self._client = client
        self.url = url.rstrip("/")
        self._authenticate = authenticate

    def __repr__(self) -> str:
        return f"PartnerSeller({self.url!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              media: str = "application/json") -> httpx.Response:
        request = self._client.build_request(
            method, self.url + path,
            content=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": media, "Accept": "application/json"}
            if body is not None else {"Accept": "application/json"})
        self._authenticate(request)
        where = f"{method} {path}"
        try:
            answer = self._client.send(request)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{where}: the seller did not answer ({type(exc).__name__})",
                              seller=self.url) from None
        if answer.status_code < 400:
            return answer
        code, reason = _error(answer)
        detail = f"{where}: the seller answered {answer.status_code} {code}: {reason}"
        if answer.status_code >= 500:
            raise Unavailable(detail, seller=self.url, status=answer.status_code)
        raise InvalidInput(detail, seller=self.url, status=answer.status_code, code=code)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              media: str = "application/json") -> dict[str, Any]:
        answer = self._call(method, path, body, media=media)
        try:
            doc = answer.json()
        except ValueError:
            raise Unavailable(f"{method} {path}: the seller's answer is not JSON",
                              seller=self.url) from None
        if not isinstance(doc, dict):
            raise Unavailable(f"{method} {path}: the seller's answer is not a JSON object",
                              seller=self.url)
        return doc

    # -- TMF622 product ordering ----------------------------------------------------------

    def order_product(self, body: dict[str, Any], *, v5: bool = False) -> dict[str, Any]:
        """``POST productOrder``: the seller's ProductOrder (201; v5 may answer 202)."""
        return self._json("POST", f"{ORDERING_V5 if v5 else ORDERING}/productOrder", body)

    def product_order(self, order_id: str, *, v5: bool = False) -> dict[str, Any]:
        return self._json("GET", f"{ORDERING_V5 if v5 else ORDERING}/productOrder/"
                                 f"{_segment(order_id)}")

    def cancel_product_order(self, order_id: str, reason: str | None = None, *,
                             v5: bool = False) -> dict[str, Any]:
        """``POST cancelProductOrder``: the seller's CancelProductOrder task."""
        body: dict[str, Any] = {"productOrder": {"id": order_id,
                                                 "@referredType": "ProductOrder"}}
        if reason:
            body["cancellationReason"] = reason
        return self._json("POST", f"{ORDERING_V5 if v5 else ORDERING}/cancelProductOrder",
                          body)

    def delete_product_order(self, order_id: str, *, v5: bool = False) -> int:
        """``DELETE productOrder/{id}``: 204 removed, or (v5) 202 cancellation accepted."""
        return self._call("DELETE", f"{ORDERING_V5 if v5 else ORDERING}/productOrder/"
                                    f"{_segment(order_id)}").status_code

    # -- TMF641 service ordering ----------------------------------------------------------

    def order_service(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST serviceOrder``: the seller's ServiceOrder."""
        return self._json("POST", f"{SERVICE_ORDERING}/serviceOrder", body)

    def service_order(self, order_id: str) -> dict[str, Any]:
        return self._json("GET", f"{SERVICE_ORDERING}/serviceOrder/{_segment(order_id)}")

    def cancel_service_order(self, order_id: str, reason: str | None = None
                             ) -> dict[str, Any]:
        """``POST cancelServiceOrder``: the seller's CancelServiceOrder task."""
        body: dict[str, Any] = {"serviceOrder": {"id": order_id,
                                                 "@referredType": "ServiceOrder"}}
        if reason:
            body["cancellationReason"] = reason
        return self._json("POST", f"{SERVICE_ORDERING}/cancelServiceOrder", body)

    # -- TMF638 service inventory ---------------------------------------------------------

    def create_service(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"{SERVICE_INVENTORY}/service", body)

    def patch_service(self, service_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", f"{SERVICE_INVENTORY}/service/{_segment(service_id)}",
                          patch, media="application/merge-patch+json")

    def delete_service(self, service_id: str) -> int:
        return self._call("DELETE", f"{SERVICE_INVENTORY}/service/"
                                    f"{_segment(service_id)}").status_code


def _segment(value: str) -> str:
    """An id as one path segment (no traversal to another resource of the seller)."""
    if not value or "/" in value or value in (".", ".."):
        raise InvalidInput(f"{value!r} is not an id", attribute="id")
    return httpx.URL("/" + value).raw_path.decode("ascii").lstrip("/")


def _error(answer: httpx.Response) -> tuple[str, str]:
    """(code, reason) of a TMF Error answer; one line, bounded."""
    try:
        doc = answer.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        code = str(doc.get("code") or doc.get("type") or answer.status_code)
        reason = str(doc.get("reason") or doc.get("detail") or doc.get("title") or "")
    else:
        code, reason = str(answer.status_code), answer.reason_phrase
    reason = " ".join(reason.split())
    return code[:80], reason[:300]
