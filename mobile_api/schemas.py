"""Request and response bodies (separate from the tables)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VerifyRequest(BaseModel):
    credential: str = Field(min_length=1, max_length=16384, description="compact JWT")


class VerifyResponse(BaseModel):
    valid: bool
    status: str = Field(description="valid, revoked, suspended, expired, not_genuine, unknown…")
    reasons: list[str] = Field(description="stable reason codes, e.g. REVOKED, BAD_SIGNATURE")
    holder: dict[str, str] | None = Field(default=None, description="minimal holder data")
    credential_id: str | None = None
    issuer: str | None = None
    expires_at: str | None = None


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    """RFC 9457 problem details, served as ``application/problem+json``."""

    type: str = Field(description="urn:idsvc:problem:<code in lower case>")
    title: str
    status: int
    code: str = Field(description="stable machine code, e.g. BODY_TOO_LARGE")
    detail: str | None = None
