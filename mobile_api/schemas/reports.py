"""The monthly payroll-controls report: ``GET /v1/reports/controls`` (``idsvc.reports``)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class ReportGroup(BaseModel):
    ministry: str
    office: str = Field(description="empty where HR recorded no office")
    active: int
    enrolled: int = Field(description="active with a live credential and a photo")
    enrolment_rate: float = Field(description="enrolled / active, 0 when nobody is active")
    flags: dict[str, int] = Field(description="flag code → people flagged")


class ReportFlagged(BaseModel):
    employee_id: str
    ministry: str
    office: str
    flag: str


class ReportChange(BaseModel):
    employee_id: str
    ministry: str
    office: str
    status: str
    status_date: date
    recorded_on: date
    lag_days: int = Field(description="days from the status date to the register")
    pay_periods_at_risk: int
    retroactive: bool = Field(description="effective before the period began")


class ReportMonthLag(BaseModel):
    month: str
    changes: int
    median_lag_days: float | None


class ControlsReportResponse(BaseModel):
    as_of: date
    period_start: date
    ministry: str | None
    pay_period_days: int
    late_after_days: int
    groups: list[ReportGroup]
    total: ReportGroup
    flagged: list[ReportFlagged]
    changes: list[ReportChange] = Field(description="the period's status changes, latest first")
    late: list[ReportChange] = Field(description="changes reported after late_after_days")
    median_lag_days: float | None
    p90_lag_days: float | None
    retroactive_share: float | None = Field(description="PEFA PI-23: retroactive changes share")
    lag_by_month: list[ReportMonthLag]
    approvals: dict[str, dict[str, int]] = Field(description="action → outcome → count")
