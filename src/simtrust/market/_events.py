"""TMF event notifications: ``hub`` listener registration and delivery with retries.

TMF630 REST API Design Guidelines 4.x part 2 (notifications): a client registers
a listener with ``POST {api}/hub`` (``EventSubscriptionInput``: ``callback``,
optional ``query``), gets an ``EventSubscription`` (``id``, ``callback``,
``query``) and removes it with ``DELETE {api}/hub/{id}``. Each event (``eventId``,
``eventTime``, ``eventType``, ``event: {<resource>: {...}}``, as the APIs'
``*Event`` definitions) is POSTed as JSON to the callback. TMF622 v5.0.0 has
the same hub (``Hub_FVO`` → ``Hub``); its listeners get the product ordering
events in the v5 model (``@type`` on the event and every extensible object). The ``query`` filters
the events with the TMF630 attribute syntax over the event document
(``eventType=ProductOrderStateChangeEvent``, ``event.productOrder.state=completed``).

Events are written to an outbox table in the same transaction as the change
they report, so an acknowledged change never loses its notification; a worker
thread delivers them, retrying a failed delivery (no answer, or a status other
than 2xx) with exponential back-off up to :data:`MAX_ATTEMPTS`. Every process of a
node (the API workers and the main one) runs such a worker over the same outbox:
a worker claims an event in the store before posting it, so that one event is
posted by one of them, and listeners are read from the store, so that a listener
registered through one process hears the events of all. A listener
registered by a tenant hears only about that tenant's resources and the public
catalog; the operator's listeners hear everything.

The callback is the listener's base: an event goes to
``{callback}/listener/{eventName}`` (``eventName`` the event type with a lower-case
first letter), the client-side listener paths of the official files
(``/listener/productOrderStateChangeEvent`` in TMF622, ``/listener/productCreateEvent``
in TMF637). Deliveries to a partner operator's listener (a hub its DID-signed
request registered) carry an RFC 9421 signature by this operator's DID (tag
``simtrust-tmf-event``, covering ``@method``, ``@target-uri`` and
``content-digest``), made afresh for every attempt; the ``eventId`` stays the
same across attempts, so the receiver drops a repeat (``market/_inbox.py``).
Decision: ``docs/decisions/market-partner-listener.md``.

Callbacks are URLs chosen by clients, so delivery guards against server-side
request forgery (OWASP SSRF prevention): a callback whose address is loopback,
private (RFC 1918, RFC 4193), link-local (RFC 3927, RFC 4291), shared (RFC 6598),
multicast, reserved or unspecified is refused, at registration when the host is
an address literal or ``localhost`` and at every delivery after resolution,
unless the operator allows that network (setting ``market_callback_allow``).
Delivery connects to the address that was checked (the URL's host is replaced
by it, ``Host`` and the TLS server name keep the name), so a second DNS answer
cannot redirect it, and redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from simtrust.errors import InvalidInput, NotFound, SimtrustError
from simtrust.market._federation import EVENT_TAG, sign_request
from simtrust.market._query import matches
from simtrust.market._v5 import V5_BASE, event_v5
from simtrust.store import Database

__all__ = ["BASE_PATHS", "MAX_ATTEMPTS", "MarketEvents", "RefusedTarget", "listener_url",
           "resolve_callback"]

#: Short API name → its official base path.
BASE_PATHS = {
    "productCatalog": "/tmf-api/productCatalogManagement/v4",
    "serviceCatalog": "/tmf-api/serviceCatalogManagement/v4",
    "productOrdering": "/tmf-api/productOrderingManagement/v4",
    "serviceOrdering": "/tmf-api/serviceOrdering/v4",
    "productInventory": "/tmf-api/productInventory/v4",
    "serviceInventory": "/tmf-api/serviceInventory/v4",
    "productOrderingV5": V5_BASE,
}
MAX_ATTEMPTS = 8
_BATCH = 100
#: Seconds a worker holds the event it is posting (longer than any post can take).
_CLAIM = 60.0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Failed(Exception):
    """A delivery the listener did not accept."""


def listener_url(callback: str, event: dict[str, Any]) -> str:
    """Where ``event`` goes: ``{callback}/listener/{eventName}`` (TMF630 part 2)."""
    kind = str(event.get("eventType", "event"))
    parts = urllib.parse.urlsplit(callback)
    path = f"{parts.path.rstrip('/')}/listener/{kind[:1].lower()}{kind[1:]}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


class RefusedTarget(Exception):
    """A callback address that delivery must not reach."""


def _public(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(address: _Address, allowed: tuple[_Network, ...]) -> None:
    """RefusedTarget unless ``address`` is public or inside an allowed network."""
    if _public(address) or any(address in net for net in allowed):
        return
    raise RefusedTarget(f"callback address {address} is not a public address")


def resolve_callback(url: str, allowed: tuple[_Network, ...],
                     resolve: Callable[[str, int], list[str]] | None = None
                     ) -> tuple[str, str, _Address]:
    """(URL to connect to, host name, checked address) for a callback ``url``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedTarget("callback must be an http or https URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: _Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    candidates = [str(literal)] if literal is not None else (resolve or _getaddrinfo)(host, port)
    address = None
    for text in candidates:
        candidate = ipaddress.ip_address(text.split("%", 1)[0])
        try:
            check_address(candidate, allowed)
        except RefusedTarget:
            continue
        address = candidate
        break
    if address is None:
        raise RefusedTarget(f"callback host {host!r} resolves to no allowed address")
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), host, address


def _getaddrinfo(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RefusedTarget(f"callback host {host!r} does not resolve") from None
    return [str(info[4][0]) for info in infos]


def _query(text: str) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=False, strict_parsing=True)
    except ValueError:
        raise InvalidInput("query must be attr=value pairs joined by '&'",
                           attribute="query") from None
    return dict(pairs)


class MarketEvents:
    """Listener registrations, the event outbox and its delivery worker."""

    def __init__(self, db: Database, clock: Callable[[], datetime], *,
                 base_url: str = "http://localhost",
                 transport: httpx.BaseTransport | None = None,
                 allowed_networks: tuple[_Network, ...] = (),
                 signer_for: Callable[[str | None], Any] | None = None) -> None:
        self._db = db
        #: Hub tenant → the signer of its deliveries, or None (unsigned posts).
        self._signer_for = signer_for
        #: Non-public networks callbacks may reach (setting ``market_callback_allow``).
        self.allowed_networks = allowed_networks
        #: Host name → addresses (tests point names at their own listeners).
        self.resolve: Callable[[str, int], list[str]] | None = None
        self._clock = clock
        self._base = base_url.rstrip("/")
        self._client = httpx.Client(timeout=5.0, transport=transport, follow_redirects=False,
                                    trust_env=False)
        #: Listener id → (parsed query, callback), for the listeners seen so far.
        self._parsed: dict[str, tuple[dict[str, str], str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        #: Seconds before the first retry; each further retry waits twice as long.
        self.retry_base = 0.5
        self.delivered = 0
        self.failed_attempts = 0

    def __repr__(self) -> str:
        return f"MarketEvents({self._db!r})"

    # -- listeners ----------------------------------------------------------------------

    def _load(self) -> list[tuple[str, str | None, str, dict[str, str], str]]:
        """The listeners as stored now (other processes of the node register too).

        One small query per call; each listener's filters are parsed once.
        """
        rows = self._db.query("SELECT id, tenant_id, api, body FROM market_hubs ORDER BY id")
        hubs = []
        with self._lock:
            for hub_id, tenant, api, body in rows:
                key = str(hub_id)
                parsed = self._parsed.get(key)
                if parsed is None:
                    doc = json.loads(body)
                    parsed = self._parsed[key] = (
                        _query(doc["query"]) if doc.get("query") else {}, str(doc["callback"]))
                hubs.append((key, tenant, str(api), parsed[0], parsed[1]))
            if len(self._parsed) > len(rows):
                live = {h[0] for h in hubs}
                self._parsed = {k: v for k, v in self._parsed.items() if k in live}
        return hubs

    def register(self, api: str, tenant_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Store an EventSubscriptionInput; the EventSubscription."""
        if api not in BASE_PATHS:
            raise NotFound(f"no API {api!r}")
        callback = body.get("callback")
        if not isinstance(callback, str):
            raise InvalidInput("callback must be a URL", attribute="callback")
        parts = urllib.parse.urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("callback must be an http or https URL", attribute="callback")
        host = parts.hostname.rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            host = "127.0.0.1"
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            try:
                check_address(literal, self.allowed_networks)
            except RefusedTarget as exc:
                raise InvalidInput(str(exc), attribute="callback") from None
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise InvalidInput("query must be a string", attribute="query")
        filters = _query(query) if query else {}
        doc: dict[str, Any] = {"id": str(uuid.uuid4()), "callback": callback}
        if query:
            doc["query"] = query
        if api == "productOrderingV5":
            doc["@type"] = "Hub"  # TMF622 v5 Hub (an Entity: @type required)
        self._db.execute(
            "INSERT INTO market_hubs (id, tenant_id, api, body, created_at) VALUES (?, ?, ?, ?, ?)",
            (doc["id"], tenant_id, api, json.dumps(doc), self._clock().isoformat()))
        with self._lock:
            self._parsed[doc["id"]] = (filters, callback)
        return doc

    def get(self, api: str, hub_id: str) -> tuple[str | None, dict[str, Any]]:
        row = self._db.query_one(
            "SELECT tenant_id, body FROM market_hubs WHERE id = ? AND api = ?", (hub_id, api))
        if row is None:
            raise NotFound(f"no hub {hub_id!r}", id=hub_id)
        return row[0], json.loads(row[1])

    def unregister(self, api: str, hub_id: str) -> None:
        self.get(api, hub_id)
        with self._db.transaction():
            self._db.execute("DELETE FROM market_hubs WHERE id = ?", (hub_id,))
            self._db.execute("DELETE FROM market_events WHERE hub_id = ? AND delivered = 0",
                             (hub_id,))
        with self._lock:
            self._parsed.pop(hub_id, None)

    # -- emitting -----------------------------------------------------------------------

    def emit(self, api: str, event_type: str, resource: str, document: dict[str, Any],
             tenant_id: str | None) -> int:
        """Queue one event per matching listener (inside the caller's transaction)."""
        hubs = self._load()
        if not hubs:
            return 0
        now = self._clock()
        body = {**document,
                "href": f"{self._base}{BASE_PATHS[api]}/{resource}/{document['id']}"}
        event = {"eventId": str(uuid.uuid4()), "eventTime": _iso(now), "eventType": event_type,
                 "event": {resource: body}}
        rows = []
        v5: dict[str, Any] | None = None
        for hub_id, hub_tenant, hub_api, filters, _ in list(hubs):
            if hub_tenant is not None and tenant_id not in (None, hub_tenant):
                continue
            if hub_api == api:
                sent = event
            elif api == "productOrdering" and hub_api == "productOrderingV5":
                # TMF622 v5 listeners hear the same orders in the v5 model.
                sent = v5 = v5 or event_v5(event, self._base)
            else:
                continue
            if filters and not matches(sent, filters):
                continue
            rows.append((hub_id, json.dumps(sent), 0, time.time(), 0))
        if rows:
            self._db.executemany(
                "INSERT INTO market_events (hub_id, body, attempts, next_at, delivered)"
                " VALUES (?, ?, ?, ?, ?)", rows)
            self.start()
            self._wake.set()
        return len(rows)

    # -- delivery -----------------------------------------------------------------------

    def start(self) -> None:
        """Run the delivery worker (events left from an earlier run go out too)."""
        with self._lock:
            if self._worker is None and not self._stop.is_set():
                self._worker = threading.Thread(target=self._run, name="tmf-events",
                                                daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.deliver_due()
            self._wake.wait(wait)

    def deliver_due(self) -> float:
        """Attempt every due event once; seconds until the next one is due (at most 1)."""
        now = time.time()
        rows = self._db.query(
            "SELECT e.seq, e.body, e.attempts, h.body, h.tenant_id FROM market_events e"
            " JOIN market_hubs h ON h.id = e.hub_id"
            " WHERE e.delivered = 0 AND e.next_at <= ? ORDER BY e.seq LIMIT ?", (now, _BATCH))
        for seq, body, attempts, hub, hub_tenant in rows:
            if self._stop.is_set():
                return 0.0
            # Claim the row first: every process of the node runs a worker over the same
            # outbox, and only the one whose claim lands posts (at-least-once: a worker
            # that dies mid-post leaves the row due again when the claim expires).
            claimed = self._db.execute(
                "UPDATE market_events SET next_at = ? WHERE seq = ? AND delivered = 0"
                " AND attempts = ? AND next_at <= ?", (time.time() + _CLAIM, seq, attempts, now))
            if claimed != 1:
                continue
            error = None
            try:
                self._post(listener_url(json.loads(hub)["callback"], json.loads(body)),
                           body, hub_tenant)
            except _Failed as exc:
                error = str(exc)
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            except (RefusedTarget, SimtrustError) as exc:
                error = str(exc)
            if error is None:
                self.delivered += 1
                self._db.execute("UPDATE market_events SET delivered = 1, attempts = ?"
                                 " WHERE seq = ?", (attempts + 1, seq))
                continue
            self.failed_attempts += 1
            tries = attempts + 1
            gave_up = tries >= MAX_ATTEMPTS
            self._db.execute(
                "UPDATE market_events SET attempts = ?, next_at = ?, delivered = ?,"
                " last_error = ? WHERE seq = ?",
                (tries, time.time() + self.retry_base * 2 ** (tries - 1), -1 if gave_up else 0,
                 error, seq))
        row = self._db.query_one(
            "SELECT MIN(next_at) FROM market_events WHERE delivered = 0")
        if row is None or row[0] is None:
            return 1.0
        return float(min(1.0, max(0.0, float(row[0]) - time.time())))

    def _post(self, url: str, body: str, hub_tenant: str | None) -> None:
        """POST one event to ``url`` (the checked address), signed for a partner's hub."""
        target, host, _ = resolve_callback(url, self.allowed_networks, self.resolve)
        netloc = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1]
        headers = {"Content-Type": "application/json"}
        signer = self._signer_for(hub_tenant) if self._signer_for is not None else None
        if signer is not None:
            # signed over the URL the listener sees (its Host), not the checked address
            request = httpx.Request("POST", url, content=body.encode(), headers=headers)
            sign_request(request, signer, tag=EVENT_TAG)
            headers = {k: request.headers[k] for k in (
                "Content-Type", "Content-Digest", "Signature-Input", "Signature")}
        answer = self._client.post(target, content=body, extensions={"sni_hostname": host},
                                   headers={**headers, "Host": netloc})
        if not 200 <= answer.status_code < 300:
            raise _Failed(f"status {answer.status_code}")

    def pending(self) -> int:
        row = self._db.query_one("SELECT COUNT(*) FROM market_events WHERE delivered = 0")
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=10)
        self._client.close()
