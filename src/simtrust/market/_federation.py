"""Federation between operators: catalogs published on the ledger, DID-signed orders, anchors.

Each operator runs its own simtrust; the consortium shares the ledger, where
every operator's ``did:simtrust`` lives. A seller *publishes* its catalog as a
``tagged-data`` message (tag ``simtrust/market/catalog/v1``): the offerings'
ids, names and update times, the SHA-256 of their RFC 8785 canonical TMF620
documents, the seller's API base URL, and an Ed25519 signature over the
canonical publication by a key of the seller's DID (``assertionMethod``). A
buyer *discovers* publications on the ledger, verifies each signature by
resolving the DID from ledger state, and checks the offerings it fetches from
the seller's API against the published hash.

A partner calls the seller's TMF APIs with an HTTP Message Signature
(RFC 9421, Ed25519, ``keyid`` a verification method of its did:simtrust
listed under ``authentication``, covering ``@method``, ``@target-uri`` and
``content-digest`` (RFC 9530), with ``created`` and the application ``tag``
``simtrust-tmf``, a random ``nonce`` and ``expires``); no API key is shared.
A signature is accepted once: its (``keyid``, ``nonce``) pair is recorded in
the store, shared by every process of the node, until the signature stops being
valid (the earlier of ``expires`` and ``created`` plus five minutes), so a
captured request replayed within that window is refused (RFC 9421 §7.2.2,
replay of signed messages), and the records never outgrow that window.
When the seller names consortium credential issuers, the partner also
presents its ``OperatorCredential`` (``market/_operators.py``). The seller maps
each partner DID to a partner tenant of its own. Every state a
partner's product order reaches is
anchored on the ledger (tag ``simtrust/market/order/v1``: order id, state,
SHA-256 of the canonical order, seller and buyer DIDs, signed by the seller's
DID), so buyer and seller read the same history. The RFC 9421 signature base
and header handling come from ``http-message-signatures``; keys stay in the
secure elements (the library prepares the base, the element signs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from simtrust.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    SimtrustError,
)
from simtrust.identity import DidResolver
from simtrust.ledger import LedgerNode, TaggedData, verify_ed25519
from simtrust.market._operators import CREDENTIAL_HEADER, OperatorAdmission
from simtrust.store import Database, TenantStore

__all__ = [
    "CATALOG_TAG",
    "EVENT_TAG",
    "ORDER_TAG",
    "SIGNATURE_TAG",
    "Federation",
    "Publication",
    "sign_request",
]

CATALOG_TAG = b"simtrust/market/catalog/v1"
ORDER_TAG = b"simtrust/market/order/v1"
#: The RFC 9421 ``tag`` parameter of partner requests.
SIGNATURE_TAG = "simtrust-tmf"
#: The RFC 9421 ``tag`` of event deliveries to a partner's listener (``market/_inbox.py``).
EVENT_TAG = "simtrust-tmf-event"
_COVERED = ("@method", "@target-uri", "content-digest")
_MAX_AGE = timedelta(minutes=5)
ORDERING = "/tmf-api/productOrderingManagement/v4"
CATALOG = "/tmf-api/productCatalogManagement/v4"


def _canonical(value: Any) -> bytes:
    return bytes(rfc8785.dumps(value))


def _sha256(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_request(request: httpx.Request, signer: Any, *, now: datetime | None = None,
                 tag: str = SIGNATURE_TAG) -> None:
    """Add ``Content-Digest``, ``Signature-Input`` and ``Signature`` (RFC 9421) to ``request``."""
    body = request.content
    hms = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=None)
    created = now or datetime.now(UTC)
    prepared = hms.prepare(request, key_id=signer.verification_method,
                           created=created, expires=created + _MAX_AGE,
                           nonce=secrets.token_urlsafe(18), tag=tag,
                           covered_component_ids=_COVERED, body=body)
    hms.apply(request, prepared, signer.sign(prepared.signature_base))


class _DidKeys(HTTPSignatureKeyResolver):
    def __init__(self, resolver: DidResolver) -> None:
        self._resolver = resolver

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        if not key_id.startswith("did:simtrust:"):
            return None
        try:
            raw = self._resolver.verification_key(key_id, "authentication")
        except SimtrustError:
            return None
        return Ed25519PublicKey.from_public_bytes(raw)

    def resolve_private_key(self, key_id: str) -> Any:
        raise KeyError(key_id)


@dataclass(frozen=True, slots=True)
class Publication:
    """A verified catalog publication found on the ledger."""

    seller: str
    api: str
    offerings: list[dict[str, Any]]
    sha256: str
    published: str
    message_id: str


class Federation:
    """The operator's side of the consortium marketplace (seller and buyer roles)."""

    def __init__(self, db: Database, tenants: TenantStore, ledger: Callable[[], LedgerNode],
                 resolver: Callable[[], DidResolver], signer: Callable[[], Any],
                 clock: Callable[[], datetime],
                 admission: OperatorAdmission | None = None,
                 credential: str | None = None) -> None:
        self._db = db
        #: Consortium admission of partners by operator credential (None: open).
        self.admission = admission
        #: This operator's own OperatorCredential (vc+jwt), sent to sellers.
        self.credential = credential
        self._tenants = tenants
        self._ledger = ledger
        self._resolver = resolver
        self._signer = signer
        self._clock = clock
        self._partners: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._nonce_inserts = 0

    def __repr__(self) -> str:
        return f"Federation({self._db!r})"

    @property
    def did(self) -> str:
        return str(self._signer().verification_method).split("#", 1)[0]

    def _sign(self, body: dict[str, Any]) -> dict[str, Any]:
        signer = self._signer()
        return {**body, "proof": {"verificationMethod": signer.verification_method,
                                  "signature": _b64(signer.sign(_canonical(body)))}}

    def _verify(self, document: Mapping[str, Any], party: str) -> dict[str, Any]:
        body = {k: v for k, v in document.items() if k != "proof"}
        proof = document.get("proof")
        if not isinstance(proof, dict) or not isinstance(proof.get("verificationMethod"), str):
            raise InvalidInput("no proof")
        method = str(proof["verificationMethod"])
        if method.split("#", 1)[0] != party:
            raise InvalidInput("the proof is not by the named party")
        key = self._resolver().verification_key(method, "assertionMethod")
        verify_ed25519(key, _unb64(str(proof.get("signature", ""))), _canonical(body))
        return body

    # -- seller -------------------------------------------------------------------------

    def publish(self, api_base: str, offerings: list[dict[str, Any]]) -> Publication:
        """Put the seller's public catalog on the ledger, signed by its DID."""
        if not offerings:
            raise InvalidInput("nothing to publish")
        entries = [{"id": o["id"], "name": o["name"], "lastUpdate": o.get("lastUpdate")}
                   for o in offerings]
        body: dict[str, Any] = {"type": "TMF620CatalogPublication", "seller": self.did,
                "api": api_base.rstrip("/"), "offerings": entries,
                "sha256": _sha256([_strip(o) for o in offerings]),
                "published": self._clock().astimezone(UTC).isoformat()}
        signed = self._sign(body)
        message = self._ledger().issue_data(CATALOG_TAG, _canonical(signed))
        return Publication(self.did, str(body["api"]), entries, str(body["sha256"]),
                           str(body["published"]), message.hex())

    def partner(self, did: str) -> str:
        """The tenant of partner ``did`` (created on its first authenticated request)."""
        with self._lock:
            if self._partners is None:
                self._partners = {str(d): str(t) for d, t in self._db.query(
                    "SELECT did, tenant_id FROM market_partners")}
            found = self._partners.get(did)
            if found is not None:
                return found
            tenant = "partner-" + hashlib.sha256(did.encode()).hexdigest()[:16]
            with self._db.transaction():
                self._tenants.create_tenant(tenant, did[:200])
                self._db.execute(
                    "INSERT INTO market_partners (did, tenant_id, created_at) VALUES (?, ?, ?)",
                    (did, tenant, self._clock().isoformat()))
            self._partners[did] = tenant
            return tenant

    def buyer_of(self, tenant_id: str | None) -> str | None:
        if tenant_id is None or not tenant_id.startswith("partner-"):
            return None
        row = self._db.query_one("SELECT did FROM market_partners WHERE tenant_id = ?",
                                 (tenant_id,))
        return None if row is None else str(row[0])

    def authenticate(self, request: Any, body: bytes, *, tag: str = SIGNATURE_TAG) -> str:
        """The DID that signed ``request`` (RFC 9421); AuthenticationRequired otherwise.

        ``tag``: :data:`SIGNATURE_TAG` for API calls, :data:`EVENT_TAG` for event
        deliveries (a signature made for one is refused as the other).
        """
        verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519,
                                       key_resolver=_DidKeys(self._resolver()))
        try:
            results = verifier.verify(request, expect_tag=tag, max_age=_MAX_AGE,
                                      require_components=_COVERED, body=body)
        except (HTTPMessageSignaturesException, ValueError, KeyError) as exc:
            raise AuthenticationRequired(
                f"the request signature does not verify ({type(exc).__name__})") from None
        params = results[0].parameters
        key_id = str(params.get("keyid", ""))
        self._once(key_id, params)
        did = key_id.split("#", 1)[0]
        if tag == SIGNATURE_TAG and self.admission is not None:
            self.admission.admit(did, request.headers.get(CREDENTIAL_HEADER))
        return did

    def _once(self, key_id: str, params: Mapping[str, Any]) -> None:
        """Record the signature's nonce; AuthenticationRequired when it was seen before."""
        nonce = params.get("nonce")
        created = params.get("created")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise AuthenticationRequired("the request signature has no nonce of 16 to 128"
                                         " characters")
        if not isinstance(created, int):
            raise AuthenticationRequired("the request signature has no created time")
        until = created + _MAX_AGE.total_seconds()
        expires = params.get("expires")
        if isinstance(expires, int):
            until = min(until, expires)
        now = time.time()
        if until < now:
            raise AuthenticationRequired("the request signature has expired")
        self._nonce_inserts += 1
        try:
            with self._db.transaction():
                if self._nonce_inserts % 64 == 1:
                    self._db.execute("DELETE FROM market_nonces WHERE expires_at < ?", (now,))
                self._db.execute(
                    "INSERT INTO market_nonces (keyid, nonce, expires_at) VALUES (?, ?, ?)",
                    (key_id, nonce, until))
        except Conflict:
            raise AuthenticationRequired("the request signature was already used") from None

    def anchor(self, order: Mapping[str, Any], tenant_id: str | None) -> None:
        """Anchor a partner order's state on the ledger (other buyers' orders: nothing)."""
        buyer = self.buyer_of(tenant_id)
        if buyer is None:
            return
        body = {"type": "TMF622OrderState", "order": order["id"], "state": order["state"],
                "sha256": _sha256(_strip(dict(order))), "seller": self.did, "buyer": buyer,
                "at": self._clock().astimezone(UTC).isoformat()}
        self._ledger().issue_data(ORDER_TAG, _canonical(self._sign(body)))

    # -- buyer --------------------------------------------------------------------------

    def _tagged(self, tag: bytes) -> list[tuple[str, dict[str, Any]]]:
        ledger = self._ledger()
        found: list[tuple[str, dict[str, Any]]] = []
        after = 0
        while True:
            page = ledger.finalized_since(after, 1000)
            if not page:
                return found
            after = page[-1]["order"]
            for entry in page:
                if entry["payload_type"] != "tagged-data" or entry["state"] != "finalized":
                    continue
                payload = ledger.get_message(bytes.fromhex(entry["message_id"])).body
                if not isinstance(payload, TaggedData) or payload.tag != tag:
                    continue
                try:
                    doc = json.loads(payload.data)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    found.append((entry["message_id"], doc))

    def discover(self) -> list[Publication]:
        """Every catalog publication on the ledger whose signature verifies (latest per seller)."""
        latest: dict[str, Publication] = {}
        for message_id, doc in self._tagged(CATALOG_TAG):
            seller = doc.get("seller")
            if not isinstance(seller, str):
                continue
            try:
                body = self._verify(doc, seller)
            except SimtrustError:
                continue
            latest[seller] = Publication(seller, str(body["api"]), list(body["offerings"]),
                                         str(body["sha256"]), str(body["published"]),
                                         message_id)
        return list(latest.values())

    def _send(self, client: httpx.Client, method: str, url: str,
              body: dict[str, Any] | None = None) -> Any:
        request = client.build_request(
            method, url, content=b"" if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"} if body is not None else {})
        if self.credential:
            request.headers[CREDENTIAL_HEADER] = self.credential
        sign_request(request, self._signer(), now=self._clock())
        answer = client.send(request)
        if answer.status_code >= 400:
            raise InvalidInput(f"{method} {url}: {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def fetch_catalog(self, client: httpx.Client, publication: Publication,
                      ) -> list[dict[str, Any]]:
        """The published offerings from the seller's API, checked against the ledger hash."""
        offerings = [self._send(client, "GET", f"{publication.api}{CATALOG}/productOffering/"
                                                f"{entry['id']}")
                     for entry in publication.offerings]
        if _sha256([_strip(o) for o in offerings]) != publication.sha256:
            raise InvalidInput("the seller's offerings differ from what it published")
        return offerings

    def order(self, client: httpx.Client, publication: Publication,
              body: dict[str, Any]) -> dict[str, Any]:
        """Place a TMF622 order with the seller, signed by this operator's DID."""
        order: dict[str, Any] = self._send(client, "POST", f"{publication.api}{ORDERING}"
                                                            "/productOrder", body)
        self._db.execute(
            "INSERT INTO market_purchases (id, seller, api, body, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (order["id"], publication.seller, publication.api,
                                        json.dumps(order), self._clock().isoformat()))
        return order

    def subscribe(self, client: httpx.Client, publication: Publication, callback: str,
                  *, api: str = ORDERING, query: str | None = None) -> dict[str, Any]:
        """Register ``callback`` (this node's listener base) on the seller's ``api`` hub.

        The seller POSTs each event to ``{callback}/listener/{eventName}``, signed by its
        DID (TMF630 part 2; ``market/_events.py``).
        """
        body: dict[str, Any] = {"callback": callback}
        if query:
            body["query"] = query
        hub: dict[str, Any] = self._send(client, "POST", f"{publication.api}{api}/hub", body)
        return hub

    def refresh(self, client: httpx.Client, order_id: str) -> dict[str, Any]:
        """The seller's current view of a purchase, kept locally."""
        row = self._db.query_one("SELECT api FROM market_purchases WHERE id = ?", (order_id,))
        if row is None:
            raise NotFound(f"no purchase {order_id!r}", id=order_id)
        order: dict[str, Any] = self._send(client, "GET",
                                           f"{row[0]}{ORDERING}/productOrder/{order_id}")
        self._db.execute("UPDATE market_purchases SET body = ? WHERE id = ?",
                         (json.dumps(order), order_id))
        return order

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """The anchored states of a partner order, each signed by its seller (verified)."""
        out = []
        for message_id, doc in self._tagged(ORDER_TAG):
            if doc.get("order") != order_id or not isinstance(doc.get("seller"), str):
                continue
            try:
                body = self._verify(doc, str(doc["seller"]))
            except SimtrustError:
                continue
            out.append({**body, "message_id": message_id})
        return out

    def matches_anchor(self, order: Mapping[str, Any]) -> bool:
        """Whether ``order`` (as a seller's API returned it) is its last anchored state."""
        anchored = self.history(str(order["id"]))
        return bool(anchored) and anchored[-1]["sha256"] == _sha256(_strip(dict(order))) \
            and anchored[-1]["state"] == order["state"]


def _strip(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the members that depend on who serves it (``href``s)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("href", "productOrderHref")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    result: dict[str, Any] = clean(document)
    return result
