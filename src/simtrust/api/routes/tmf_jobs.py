"""TMF620 Product Catalog v4.1.0 and TMF633 Service Catalog v4.0.0 ``importJob`` / ``exportJob``.

The official paths (``{base}/importJob``, ``{base}/importJob/{id}``, and the same
for ``exportJob``) and models (``ImportJob_Create`` → ``ImportJob``,
``ExportJob_Create`` → ``ExportJob``, ``JobStateType``): ``POST`` accepts a job
(201, ``Not Started``, ``Location``) that runs after the answer; ``GET`` lists
(``fields``, attribute filters, ``offset``/``limit`` with ``X-Total-Count`` and
``X-Result-Count``, TMF630) or reads one; ``DELETE`` removes a job that is not
``Running`` (409 otherwise). Creating needs an admin key; a job belongs to its
creator's tenant (the operator's: the operator's), another tenant's answers 404.
What the jobs do, the file format and the URL guard: ``market/_jobs.py``.
Errors are the TMF ``Error`` model (api/problems.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse

from simtrust.api.deps import CurrentRuntime
from simtrust.api.routes.tmf import (
    _ERRORS,
    _MAX_LIMIT,
    CurrentPrincipal,
    Fields,
    JsonBody,
    Limit,
    Offset,
    _base,
    _official_body,
    _page,
)
from simtrust.errors import NotFound
from simtrust.market import BASE_PATHS, JOB_KINDS, Job, select_fields

__all__ = ["router"]

router = APIRouter(tags=["tmf"], dependencies=[Depends(_official_body)])


def _doc(request: Request, job: Job) -> dict[str, Any]:
    return {**job.document, "href": f"{_base(request)}{BASE_PATHS[job.api]}/{job.kind}/"
                                    f"{job.document['id']}"}


def _job_routes(api: str, kind: str) -> None:
    path = f"{BASE_PATHS[api]}/{kind}"
    model = JOB_KINDS[kind]
    suffix = "" if api == "productCatalog" else "ServiceCatalog"

    def _mine(rt: Any, who: Any, job_id: str) -> Job:
        job: Job = rt.market.jobs.get(api, kind, job_id)
        who.check_tenant(job.tenant_id, NotFound(f"no {kind} {job_id!r}", id=job_id))
        return job

    @router.post(path, status_code=201, responses=_ERRORS,
                 operation_id=f"create{model}{suffix}", summary=f"Creates a {model}")
    def create(body: JsonBody, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
               background: BackgroundTasks) -> JSONResponse:
        who.require_admin()
        job = rt.market.jobs.create(api, kind, None if who.is_operator else who.tenant_id,
                                    who.is_operator, body, who.actor, _base(request))
        background.add_task(rt.market.jobs.run, job.document["id"])
        doc = _doc(request, job)
        return JSONResponse(doc, status_code=201, headers={"Location": doc["href"]})

    @router.get(path, responses=_ERRORS, operation_id=f"list{model}{suffix}",
                summary=f"List or find {model} objects")
    def listing(request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                fields: Fields = None, offset: Offset = 0, limit: Limit = _MAX_LIMIT,
                ) -> JSONResponse:
        jobs = rt.market.jobs.list(api, kind, who.tenant_id, who.is_operator)
        return _page(request, [_doc(request, j) for j in jobs], fields, offset, limit)

    @router.get(path + "/{id}", responses=_ERRORS, operation_id=f"retrieve{model}{suffix}",
                summary=f"Retrieves a {model} by ID")
    def retrieve(id: str, request: Request, rt: CurrentRuntime, who: CurrentPrincipal,
                 fields: Fields = None) -> dict[str, Any]:
        return select_fields(_doc(request, _mine(rt, who, id)), fields)

    @router.delete(path + "/{id}", status_code=204, responses=_ERRORS,
                   operation_id=f"delete{model}{suffix}", summary=f"Deletes a {model}")
    def delete(id: str, rt: CurrentRuntime, who: CurrentPrincipal) -> Response:
        job = _mine(rt, who, id)
        who.require_admin()
        rt.market.jobs.delete(job, who.actor)
        return Response(status_code=204)


for _api in ("productCatalog", "serviceCatalog"):
    for _kind in JOB_KINDS:
        _job_routes(_api, _kind)
