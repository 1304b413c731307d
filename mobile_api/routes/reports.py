"""Reports over HTTP: ``GET /v1/reports/controls`` (scope ``admin``), the monthly payroll-
controls report as JSON, or as CSV with ``Accept: text/csv`` (``idsvc.reports``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from idsvc.reports import controls_output
from mobile_api import problems
from mobile_api.auth import Admin
from mobile_api.deps import Now, Reports
from mobile_api.negotiation import prefers_csv
from mobile_api.schemas.reports import ControlsReportResponse

router = APIRouter(tags=["administration"])


@router.get(
    "/v1/reports/controls",
    response_model=ControlsReportResponse,
    responses={
        **problems.responses(401, 403, 409, 429, 503),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    operation_id="getControlsReport",
    summary="The monthly payroll-controls report (JSON, or CSV with Accept: text/csv)",
)
def get_controls_report(
    request: Request,
    caller: Admin,
    reports: Reports,
    now: Now,
    as_of: Annotated[date | None, Query(description="the day reported on; default today")] = None,
    ministry: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    report = reports.controls(
        as_of=as_of, ministry=ministry, actor=f"client:{caller.client_name}", now=now
    )
    if prefers_csv(request.headers.get("accept", "")):
        return Response(
            controls_output.as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="controls-{report.as_of}.csv"'},
        )
    return controls_output.as_json(report)
