"""The who-checked log of one person: ``GET /v1/holders/{employee_id}/checks``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HolderCheck(BaseModel):
    checked_at: str
    kind: str = Field(description="verification, card or payroll")
    employee_id: str | None
    credential_id: str | None
    client_id: str | None = Field(description="the API client; null for anonymous")
    client_name: str | None
    address: str | None = Field(description="anonymous caller's address; null for clients")
    result: str
    reasons: list[str]


class HolderChecksResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "employee_id": "KH-MCS-010002",
                    "checks": [
                        {
                            "checked_at": "2026-11-25T10:00:00+00:00",
                            "kind": "verification",
                            "employee_id": "KH-MCS-010002",
                            "credential_id": "0b8f6a52-3d1e-4c57-9a55-6f2e2f5d9c11",
                            "client_id": None,
                            "client_name": None,
                            "address": "203.0.113.7",
                            "result": "valid",
                            "reasons": [],
                        }
                    ],
                }
            ]
        }
    )

    employee_id: str
    checks: list[HolderCheck]
