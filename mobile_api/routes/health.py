"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (may take traffic), ``/metrics``.

``/healthz`` touches nothing (a process that answers is alive: restart it only when this
fails). ``/readyz`` runs ``idsvc.operations.readiness`` (cached a few seconds per worker) and
answers 503
with ``Retry-After`` and the failing check named when the worker must not get traffic.
``/metrics`` is the Prometheus text format; with ``IDSVC_METRICS_ACCESS=admin`` (the default)
only an API client with scope ``admin`` may read it (Prometheus: ``authorization:
credentials_file``), with ``open`` anyone who reaches the port.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mobile_api import problems
from mobile_api.auth import require_scope
from mobile_api.deps import Now, Operations
from mobile_api.metrics import CONTENT_TYPE, DatabaseCollector, exposition

router = APIRouter(tags=["system"])

RETRY_AFTER = "5"
# /metrics needs the admin scope unless IDSVC_METRICS_ACCESS=open (declared in /openapi.json).
_metrics_reader = require_scope("admin", waived=lambda s: s.metrics_access == "open")


async def get_database_metrics(request: Request) -> DatabaseCollector:
    collector: DatabaseCollector = request.app.state.database_metrics  # made by create_app
    return collector


@router.get("/healthz", operation_id="getLiveness", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Database, migrations, signing key and status lists are usable",
    responses={503: {"description": "not ready: the failing checks are named"}},
)
def readyz(operations: Operations, now: Now) -> JSONResponse:
    report = operations.readiness.report(now=now)
    if report.ready:
        return JSONResponse(report.as_dict())
    return JSONResponse(report.as_dict(), status_code=503, headers={"Retry-After": RETRY_AFTER})


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics of every worker",
    dependencies=[Depends(_metrics_reader)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, **problems.responses(401, 403, 429)},
)
async def metrics(
    database: Annotated[DatabaseCollector, Depends(get_database_metrics)],
) -> Response:
    # Reading the workers' files and the database totals blocks: off the event loop.
    body = await run_in_threadpool(exposition, database)
    return Response(body, media_type=CONTENT_TYPE)
