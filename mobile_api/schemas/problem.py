"""The body of every error answer: RFC 9457 problem details (``mobile_api.problems``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProblemResponse(BaseModel):
    """RFC 9457 problem details, served as ``application/problem+json``."""

    type: str = Field(description="urn:idsvc:problem:<code in lower case>")
    title: str
    status: int
    code: str = Field(description="stable machine code, e.g. BODY_TOO_LARGE")
    detail: str | None = None
