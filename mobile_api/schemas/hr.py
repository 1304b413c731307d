"""HR systems keep the register current: ``POST /v1/hr/records``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from idsvc.formats.hr_csv import COLUMNS


class HrRecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, str | None]] = Field(
        min_length=1,
        max_length=10_000,
        description="HR records with the HR CSV's columns: " + ", ".join(COLUMNS),
    )


class HrRejection(BaseModel):
    record: int = Field(description="1-based position of the record in the request")
    employee_id: str | None
    reason: str


class HrRecordsResponse(BaseModel):
    records: int
    created: int
    updated: int
    unchanged: int
    status_changes: int
    credentials_changed: int
    rejected: list[HrRejection]
