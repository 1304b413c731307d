"""``POST /v1/hr/records`` (scope ``hr:write``): HR systems keep the register current.

Same rules and same per-row reasons as ``idsvc import-hr`` (one use case behind both).
``Idempotency-Key`` replays the first answer (with ``Idempotent-Replayed: true``); the same key
with another body is a 422 ``IDEMPOTENCY_CONFLICT``. Body limit: ``HR_MAX_BODY`` (8 MiB, about
10,000 records). Concurrent writers for one person are serialised (``idsvc.storage.person_locks``);
a broken lock cycle is a 409 ``CONCURRENT_UPDATE``, nothing stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mobile_api import problems
from mobile_api.auth import Caller, require_scope
from mobile_api.deps import JsonBody, Now, Register
from mobile_api.json_body import StrictJsonRoute
from mobile_api.limits import PATH_LIMITS
from mobile_api.schemas.hr import HrRecordsRequest, HrRecordsResponse

HR_MAX_BODY = 8 * 1024 * 1024
RECORDS_PATH = "/v1/hr/records"
PATH_LIMITS[RECORDS_PATH] = HR_MAX_BODY

HrWriter = Annotated[Caller, Depends(require_scope("hr:write"))]
router = APIRouter(tags=["hr"], route_class=StrictJsonRoute)


@router.post(
    RECORDS_PATH,
    response_model=HrRecordsResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 403, 409, 413, 415, 422, 429, 503),
    operation_id="upsertHrRecords",
    summary="Create or update HR records (the HR CSV's columns as JSON members)",
    description="Rows that break a rule are listed in `rejected` (record number, employee id, "
    "reason) and the others land, exactly as `idsvc import-hr` does with a file. A status "
    "change (retired, deceased, dismissed, suspended, active again) reaches the person's "
    "credentials, the change feed and webhooks in the same transaction. Requests for the same "
    "person are judged one after the other, whatever the interleaving; a 409 "
    "`CONCURRENT_UPDATE` (with `Retry-After`) means the database broke a lock cycle with another "
    "writer after three tries: nothing was stored, send the same request again.",
)
async def upsert_hr_records(
    body: HrRecordsRequest,
    caller: HrWriter,
    register: Register,
    now: Now,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, description="replays the first answer for the same key"),
    ] = None,
) -> Any:
    # Refused records (HrSyncError) answer by mobile_api.problems' table: 422.
    answer = await run_in_threadpool(
        register.hr_sync.upsert,
        body.records,
        client_id=caller.client_id or "",
        client_name=caller.client_name or "",
        idempotency_key=idempotency_key,
        now=now,
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, headers=headers)
