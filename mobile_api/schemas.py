"""Request and response bodies (separate from the tables)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VerifyRequest(BaseModel):
    credential: str = Field(min_length=1, max_length=16384, description="compact JWT")


class VerifyResponse(BaseModel):
    valid: bool
    status: str
    reasons: list[str]
    holder: dict[str, str] | None = None
    credential_id: str | None = None
    issuer: str | None = None
    expires_at: str | None = None


class Health(BaseModel):
    status: str
