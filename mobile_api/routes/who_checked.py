"""The who-checked log over HTTP: ``GET /v1/holders/{employee_id}/checks`` (scope ``admin``),
who verified or payroll-checked this person (``idsvc.audit.who_checked``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mobile_api import problems
from mobile_api.auth import Admin
from mobile_api.deps import Checks
from mobile_api.schemas.who_checked import HolderChecksResponse

router = APIRouter(tags=["administration"])


@router.get(
    "/v1/holders/{employee_id}/checks",
    response_model=HolderChecksResponse,
    responses=problems.responses(401, 403, 404, 429, 503),
    operation_id="listHolderChecks",
    summary="Who verified or payroll-checked this person, newest first",
)
def list_holder_checks(
    employee_id: str,
    caller: Admin,
    checks: Checks,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = checks.of_holder(employee_id, limit=limit)
    return {"employee_id": employee_id, "checks": [r.as_dict() for r in rows]}
