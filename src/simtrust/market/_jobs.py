"""TMF620 / TMF633 ``importJob`` and ``exportJob``: catalog files moved by asynchronous jobs.

TMF620 Product Catalog v4.1.0 and TMF633 Service Catalog v4.0.0 (paths
``/importJob``, ``/exportJob``; definitions ``ImportJob``, ``ExportJob``,
``JobStateType``) and the TMF630 guidelines' job pattern: ``POST`` answers 201
with the job ``Not Started``; the job then runs (``Running``) and ends
``Succeeded`` or ``Failed`` (``errorLog`` says why), with ``completionDate``.

- **Export**: the resources under ``path`` (the API root: every kind of the API;
  ``productOffering``: one kind; ``productOffering/{id}``: one resource; with or
  without the ``/tmf-api/<api>/v4`` prefix), scoped by ``query`` (TMF630 attribute
  filters, ``lifecycleStatus=Launched&name=x``) to what the job's owner may read,
  are written as one ``application/json`` file: a JSON array of the TMF resources
  as ``GET`` returns them (``href``, ``@type``). The file is sent with HTTP ``PUT``
  to ``url``.
- **Import**: the file at ``url`` (``GET``; the same format: an array of
  resources, or one resource) is applied under ``path``: each element becomes the
  resource its ``@type`` names (or the kind ``path`` names), keeping its ``id`` so
  that the file's own references hold; an element whose id the owner already has
  replaces it. Every element passes the rules of a create (name, member types,
  references that resolve, within the file or the store); one bad element fails the
  job and nothing is written: the elements and the job's ``Succeeded`` are one
  transaction.

Both URLs are chosen by clients, so they get the hub callbacks' guard against
server-side request forgery (``_events.resolve_callback``: public addresses or the
operator's allowed networks, the checked address connected to, no redirects).

Jobs are rows of ``market_jobs`` written durably before the 201, so an accepted job
survives a restart. A runner claims a job (``Not Started``, or ``Running`` whose
lease expired because its process stopped) with one conditional update; whichever
process claims it runs it, and the import's writes commit only if the claim is
still its own, so a job taken over by another runner is never applied twice.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from simtrust.audit import AuditLog
from simtrust.errors import InvalidInput, InvalidTransition, NotFound, SimtrustError
from simtrust.market._events import BASE_PATHS, RefusedTarget, check_address, resolve_callback
from simtrust.market._query import matches
from simtrust.market._records import (
    ALL_KINDS,
    CATALOG_KINDS,
    SERVICE_CATALOG_KINDS,
    api_of,
    check_document,
    iso,
)
from simtrust.market._references import check_references
from simtrust.store import Database

__all__ = ["CONTENT_TYPE", "JOB_KINDS", "JOB_STATES", "CatalogJobs", "Job"]

#: Resource path segment → its ``@type``.
JOB_KINDS = {"importJob": "ImportJob", "exportJob": "ExportJob"}
#: TMF620 / TMF633 ``JobStateType``.
JOB_STATES = ("Not Started", "Running", "Succeeded", "Failed")
CONTENT_TYPE = "application/json"
#: Largest file an import reads.
MAX_FILE = 16 * 1024 * 1024
#: Seconds a runner holds a job; past that a stopped runner's job is taken over.
LEASE = 120.0
_SERVER_OWNED = ("id", "href", "status", "creationDate", "completionDate", "errorLog")
_API_KINDS = {"productCatalog": CATALOG_KINDS, "serviceCatalog": SERVICE_CATALOG_KINDS}
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Emit = Callable[[str, str, str, dict[str, Any], str | None], None]


@dataclass(frozen=True, slots=True)
class Job:
    """An import or export job (``document``: the TMF ``ImportJob`` / ``ExportJob``)."""

    api: str
    kind: str
    tenant_id: str | None
    document: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.document["status"])


class _Lost(Exception):
    """The job was taken over by another runner (its lease expired)."""


class CatalogJobs:
    """Import and export jobs of the two catalogs; :meth:`run` carries one out."""

    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime], *,
                 emit: Emit, owner_of: Callable[[str, str], str | None],
                 networks: Callable[[], tuple[_Network, ...]]) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._emit = emit
        self._owner_of = owner_of
        self._networks = networks
        #: Name resolution of the guarded URLs (tests pin it).
        self.resolve: Callable[[str, int], list[str]] | None = None
        self.timeout = 30.0
        self._client_made: httpx.Client | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"CatalogJobs({self._db!r})"

    @property
    def _client(self) -> httpx.Client:
        # made on first use: most runtimes build the market without ever running a job
        if self._client_made is None:
            self._client_made = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._client_made

    # -- the resource -------------------------------------------------------------------

    def create(self, api: str, kind: str, tenant_id: str | None, everything: bool,
               body: dict[str, Any], actor: str, base: str) -> Job:
        """Accept a job (``Not Started``, durable); :meth:`run` carries it out."""
        if kind not in JOB_KINDS or api not in _API_KINDS:
            raise NotFound(f"no {kind} resource")
        fixed = [name for name in _SERVER_OWNED if name in body]
        if fixed:
            raise InvalidInput(f"{fixed[0]} is set by the server", attribute=fixed[0])
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidInput("url is required", attribute="url")
        self._check_url(url)
        content_type = body.get("contentType", CONTENT_TYPE)
        if not isinstance(content_type, str) or \
                content_type.split(";", 1)[0].strip().lower() != CONTENT_TYPE:
            raise InvalidInput(f"contentType must be {CONTENT_TYPE}", attribute="contentType")
        path = body.get("path", "")
        if not isinstance(path, str):
            raise InvalidInput("path must be a string", attribute="path")
        _scope(api, path, export=kind == "exportJob")
        query = body.get("query")
        if kind == "exportJob" and query is not None:
            if not isinstance(query, str):
                raise InvalidInput("query must be a string", attribute="query")
            _filters(query)
        now = self._clock()
        doc = {**body, "id": str(uuid.uuid4()), "@type": body.get("@type", JOB_KINDS[kind]),
               "url": url, "path": path, "contentType": content_type,
               "creationDate": iso(now)}
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO market_jobs (id, api, kind, tenant_id, everything, base, status,"
                " lease_until, owner, body, completion, error_log, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, NULL, NULL, ?)",
                (doc["id"], api, kind, tenant_id, 1 if everything else 0, base, JOB_STATES[0],
                 json.dumps(doc), now.isoformat()))
            self._audit.append(actor=actor, action=f"market.{kind}.create",
                               subject=f"{kind}:{doc['id']}", outcome="success",
                               tenant_id=tenant_id, details={"path": path})
        return Job(api, kind, tenant_id, {**doc, "status": JOB_STATES[0]})

    def _check_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("url must be an http or https URL", attribute="url")
        host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: checked after resolution, when the job runs
        try:
            check_address(literal, self._networks())
        except RefusedTarget as exc:
            raise InvalidInput(str(exc).replace("callback", "url"), attribute="url") from None

    _COLUMNS = "api, kind, tenant_id, status, body, completion, error_log"

    @staticmethod
    def _job(row: Any) -> Job:
        doc = {**json.loads(row[4]), "status": row[3]}
        if row[5] is not None:
            doc["completionDate"] = row[5]
        if row[6] is not None:
            doc["errorLog"] = row[6]
        return Job(row[0], row[1], row[2], doc)

    def get(self, api: str, kind: str, job_id: str) -> Job:
        row = self._db.query_one(
            f"SELECT {self._COLUMNS} FROM market_jobs WHERE id = ? AND api = ? AND kind = ?",
            (job_id, api, kind))
        if row is None:
            raise NotFound(f"no {kind} {job_id!r}", id=job_id)
        return self._job(row)

    def list(self, api: str, kind: str, tenant_id: str | None, everything: bool) -> list[Job]:
        sql = f"SELECT {self._COLUMNS} FROM market_jobs WHERE api = ? AND kind = ?"
        args: tuple[Any, ...] = (api, kind)
        if not everything:
            sql += " AND tenant_id = ?"
            args += (tenant_id,)
        return [self._job(r) for r in self._db.query(sql + " ORDER BY created_at, id", args)]

    def delete(self, job: Job, actor: str) -> None:
        """Remove a job; a running one is 409 (a ``Not Started`` one never runs)."""
        current = job.status
        if current == "Running":
            raise InvalidTransition(f"a {job.kind} that is Running cannot be deleted",
                                    state=current)
        job_id = job.document["id"]
        with self._db.transaction(durable=True):
            if self._db.execute("DELETE FROM market_jobs WHERE id = ? AND status = ?",
                                (job_id, current)) != 1:
                raise InvalidTransition(f"the {job.kind} changed concurrently; retry",
                                        state=current)
            self._audit.append(actor=actor, action=f"market.{job.kind}.delete",
                               subject=f"{job.kind}:{job_id}", outcome="success",
                               tenant_id=job.tenant_id, details={"status": current})

    # -- running ------------------------------------------------------------------------

    def run(self, job_id: str) -> str | None:
        """Claim and carry out a job; its final status, or None if another runner has it."""
        token = uuid.uuid4().hex
        now = time.time()
        with self._db.transaction(durable=True):
            claimed = self._db.execute(
                "UPDATE market_jobs SET status = 'Running', owner = ?, lease_until = ?"
                " WHERE id = ? AND (status = 'Not Started'"
                " OR (status = 'Running' AND lease_until < ?))",
                (token, now + LEASE, job_id, now))
        if claimed != 1:
            return None
        row = self._db.query_one(
            "SELECT api, kind, tenant_id, everything, base, body FROM market_jobs WHERE id = ?",
            (job_id,))
        if row is None:
            return None
        api, kind, tenant_id, everything, base, body = row
        doc = json.loads(body)
        try:
            if kind == "exportJob":
                self._export(api, tenant_id, bool(everything), base, doc)
                self._finish(job_id, token, "Succeeded", None)
            else:
                self._import(api, tenant_id, doc, job_id, token)
            return "Succeeded"
        except _Lost:
            return None
        except (SimtrustError, RefusedTarget, httpx.HTTPError, _FileError) as exc:
            # an httpx message may repeat the URL (and its credentials): its name only
            reason = exc.detail if isinstance(exc, SimtrustError) else \
                f"{type(exc).__name__} reaching the file" if isinstance(exc, httpx.HTTPError) \
                else str(exc).replace("callback", "url")
            try:
                self._finish(job_id, token, "Failed", reason)
            except _Lost:
                return None
            return "Failed"

    def _finish(self, job_id: str, token: str, status: str, error: str | None) -> None:
        with self._db.transaction(durable=True):
            self._close(job_id, token, status, error)

    def _close(self, job_id: str, token: str, status: str, error: str | None) -> None:
        done = self._db.execute(
            "UPDATE market_jobs SET status = ?, completion = ?, error_log = ?, owner = NULL"
            " WHERE id = ? AND owner = ? AND status = 'Running'",
            (status, iso(self._clock()), error, job_id, token))
        if done != 1:
            raise _Lost(job_id)

    def run_due(self) -> int:
        """Run every job not started, and every job whose runner stopped; how many ran."""
        rows = self._db.query(
            "SELECT id FROM market_jobs WHERE status = 'Not Started'"
            " OR (status = 'Running' AND lease_until < ?) ORDER BY created_at",
            (time.time(),))
        return sum(1 for (job_id,) in rows if self.run(job_id) is not None)

    def start(self, interval: float = 1.0) -> None:
        """Run due jobs now and every ``interval`` seconds (the node's main process)."""
        if self._worker is None:
            def loop() -> None:
                while not self._stop.is_set():
                    self.run_due()
                    self._stop.wait(interval)

            self._worker = threading.Thread(target=loop, name="tmf-jobs", daemon=True)
            self._worker.start()

    def close(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
        if self._client_made is not None:
            self._client_made.close()

    # -- export -------------------------------------------------------------------------

    def _export(self, api: str, tenant_id: str | None, everything: bool, base: str,
                doc: dict[str, Any]) -> None:
        kinds, item_id = _scope(api, doc.get("path", ""), export=True)
        wanted = _filters(doc.get("query") or "")
        found = []
        for kind in kinds:
            sql = "SELECT body FROM market_catalog WHERE kind = ?"
            args: tuple[Any, ...] = (kind,)
            if not everything:
                sql += " AND (tenant_id IS NULL OR tenant_id = ?)"
                args += (tenant_id,)
            if item_id is not None:
                sql += " AND id = ?"
                args += (item_id,)
            for (body,) in self._db.query(sql + " ORDER BY created_at, id", args):
                item = json.loads(body)
                item["href"] = f"{base}{BASE_PATHS[api_of(kind)]}/{kind}/{item['id']}"
                if matches(item, wanted):
                    found.append(item)
        if item_id is not None and not found:
            raise NotFound(f"no {kinds[0]} {item_id!r}", id=item_id)
        answer = self._send("PUT", doc["url"], json.dumps(found).encode(), doc["contentType"])
        answer.close()

    def _send(self, method: str, url: str, content: bytes | None,
              content_type: str) -> httpx.Response:
        target, host, _ = resolve_callback(url, self._networks(), self.resolve)
        netloc = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1]
        headers = {"Host": netloc, "Accept" if content is None else "Content-Type": content_type}
        request = self._client.build_request(method, target, content=content, headers=headers,
                                             extensions={"sni_hostname": host})
        answer = self._client.send(request, stream=True)
        if not 200 <= answer.status_code < 300:
            answer.close()
            raise _FileError(f"{method} {_shown(url)} answered status {answer.status_code}")
        return answer

    # -- import -------------------------------------------------------------------------

    def _read(self, url: str, content_type: str) -> Any:
        answer = self._send("GET", url, None, content_type)
        try:
            chunks, size = [], 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_FILE:
                    raise _FileError(f"the file is over {MAX_FILE} bytes")
                chunks.append(chunk)
        finally:
            answer.close()
        try:
            return json.loads(b"".join(chunks))
        except ValueError:
            raise _FileError("the file is not JSON") from None

    def _import(self, api: str, tenant_id: str | None, doc: dict[str, Any], job_id: str,
                token: str) -> None:
        kinds, _ = _scope(api, doc.get("path", ""), export=False)
        content = self._read(doc["url"], doc["contentType"])
        elements = content if isinstance(content, list) else [content]
        pending = [(i, *_element(i, e, kinds)) for i, e in enumerate(elements)]
        with self._db.transaction(durable=True):
            self._close(job_id, token, "Succeeded", None)
            # an element may reference one later in the file: apply what resolves, again
            # and again, until nothing is left or nothing more resolves
            while pending:
                waiting, error = [], None
                for index, kind, element in pending:
                    try:
                        check_references(kind, element, tenant_id, self._owner_of)
                    except SimtrustError as exc:
                        waiting.append((index, kind, element))
                        error = error or _at(index, exc)
                        continue
                    self._apply(kind, element, tenant_id, job_id)
                if len(waiting) == len(pending):
                    assert error is not None
                    raise error
                pending = waiting

    def _apply(self, kind: str, element: dict[str, Any], tenant_id: str | None,
               job_id: str) -> None:
        now = self._clock()
        item = {**element, "lastUpdate": iso(now)}
        row = self._db.query_one("SELECT tenant_id FROM market_catalog WHERE kind = ? AND id = ?",
                                 (kind, item["id"]))
        if row is None:
            self._db.execute(
                "INSERT INTO market_catalog (kind, id, tenant_id, body, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (kind, item["id"], tenant_id, json.dumps(item), now.isoformat(),
                 now.isoformat()))
            event = f"{ALL_KINDS[kind]}CreateEvent"
        elif row[0] == tenant_id:
            self._db.execute(
                "UPDATE market_catalog SET body = ?, updated_at = ? WHERE kind = ? AND id = ?",
                (json.dumps(item), now.isoformat(), kind, item["id"]))
            event = (f"{ALL_KINDS[kind]}ChangeEvent" if kind in SERVICE_CATALOG_KINDS
                     else f"{ALL_KINDS[kind]}AttributeValueChangeEvent")
        else:
            raise InvalidInput(f"{kind} id {item['id']!r} is not available",
                               attribute="id")
        self._audit.append(actor=f"importJob:{job_id}", action=f"market.{kind}.import",
                           subject=f"{kind}:{item['id']}", outcome="success",
                           tenant_id=tenant_id, details={"name": item.get("name")})
        self._emit(api_of(kind), event, kind, item, tenant_id)


class _FileError(Exception):
    """The file could not be written or read."""


def _shown(url: str) -> str:
    """``url`` without credentials or query (errorLog is readable by the job's owner)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def _at(index: int, exc: SimtrustError) -> InvalidInput:
    return InvalidInput(f"element {index}: {exc.detail}")


def _scope(api: str, path: str, *, export: bool) -> tuple[list[str], str | None]:
    """(kinds, one resource id or None) that ``path`` names within ``api``."""
    kinds = _API_KINDS[api]
    base = BASE_PATHS[api].strip("/")
    rest = path.strip().strip("/")
    for prefix in (base, base.removeprefix("tmf-api/")):
        if rest == prefix or rest.startswith(prefix + "/"):
            rest = rest[len(prefix):].strip("/")
            break
    if not rest:
        return list(kinds), None
    parts = rest.split("/")
    if parts[0] not in kinds or len(parts) > (2 if export else 1) or not all(parts):
        raise InvalidInput(f"path must be the API root or a resource of {BASE_PATHS[api]}"
                           + (" (or one resource of it)" if export else ""),
                           attribute="path")
    return [parts[0]], parts[1] if len(parts) == 2 else None


def _filters(query: str) -> dict[str, str]:
    if not query:
        return {}
    try:
        return dict(urllib.parse.parse_qsl(query.lstrip("?"), strict_parsing=True))
    except ValueError:
        raise InvalidInput("query must be attr=value pairs joined by '&'",
                           attribute="query") from None


def _element(index: int, element: Any, kinds: list[str]) -> tuple[str, dict[str, Any]]:
    """(kind, document to store) of one element of an import file, or InvalidInput."""
    where = f"element {index}"
    if not isinstance(element, dict):
        raise InvalidInput(f"{where} is not a JSON object")
    types = {ALL_KINDS[k]: k for k in kinds}
    given = element.get("@type")
    if given is None and len(kinds) == 1:
        kind = kinds[0]
    elif isinstance(given, str) and given in types:
        kind = types[given]
    else:
        raise InvalidInput(f"{where}: @type must be one of {', '.join(sorted(types))}",
                           attribute="@type")
    item_id = element.get("id", str(uuid.uuid4()))
    if not isinstance(item_id, str) or not item_id or len(item_id) > 128 or "/" in item_id:
        raise InvalidInput(f"{where}: id must be a non-empty string without '/'",
                           attribute="id")
    name = element.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}: name is required", attribute="name")
    doc = {k: v for k, v in element.items() if k not in ("href", "lastUpdate")}
    doc.update({"id": item_id, "@type": ALL_KINDS[kind]})
    doc.setdefault("lifecycleStatus", "In design")
    try:
        check_document(doc)
    except SimtrustError as exc:
        raise _at(index, exc) from None
    return kind, doc
