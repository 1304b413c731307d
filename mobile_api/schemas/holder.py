"""The holder's own page (``/v1/holder/…``) and the registrars' queue of correction requests
(``/v1/corrections``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A presentation carries the issuer JWT and the disclosures the phone chose (the page needs
# none; the photo is the largest): as long as an SD-JWT may be (idsvc.formats.sd_jwt).
MAX_PRESENTATION = 256 * 1024


class HolderNonceResponse(BaseModel):
    nonce: str = Field(description="single use: the `nonce` of the key-binding JWT")
    expires_at: str


class HolderSessionRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"presentation": "eyJ…~WyJ…~eyJ0eXAiOiJrYitqd3Qi…"}]}
    )

    presentation: str = Field(
        min_length=1,
        max_length=MAX_PRESENTATION,
        description="the phone credential presented with a key-binding JWT: "
        "`<issuer JWT>~<disclosures>~<KB-JWT>`, the KB-JWT's `aud` being "
        "`{public_url}/v1/holder` and its `nonce` one from `POST /v1/holder/nonce`",
    )


class HolderSessionResponse(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`; stored hashed")
    expires_at: str


class HolderRecord(BaseModel):
    employee_id: str
    name_local: str
    name_latin: str
    sex: str
    date_of_birth: str | None
    ministry: str
    ministry_local: str | None
    unit: str
    position: str
    position_local: str | None
    grade: str
    category: str
    status: str
    status_date: str | None
    hire_date: str | None
    contract_end: str | None


class HolderCredential(BaseModel):
    id: str
    kind: str = Field(description="card or phone")
    state: str = Field(description="pending, live, suspended, revoked or superseded")
    issued_at: str
    expires_at: str


class HolderCorrection(BaseModel):
    id: str
    field: str
    text: str
    status: str = Field(description="open, accepted or rejected")
    answer: str | None = Field(description="HR's answer once decided")
    created_at: str
    decided_at: str | None


class HolderPageResponse(BaseModel):
    record: HolderRecord
    credentials: list[HolderCredential]
    corrections: list[HolderCorrection]


class HolderCheck(BaseModel):
    checked_at: str
    kind: str = Field(description="verification, card or payroll")
    caller: Literal["client", "anonymous"] = Field(
        description="a registered API client (a bank, a ministry), or the public verifier"
    )
    by: str | None = Field(description="the client's name; null for an anonymous caller")
    result: str
    reasons: list[str]


class HolderChecksResponse(BaseModel):
    checks: list[HolderCheck]


class CorrectionCreateRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"field": "position", "text": "I was promoted to Director in June."}]
        }
    )

    # Bounds against abuse only: the rules (the allow-list, 1 to 1000 characters) answer
    # 422 CORRECTION_REQUEST_INVALID with what is wrong (idsvc.wallet.corrections).
    field: str = Field(max_length=64, description="the record's field the error is in")
    text: str = Field(max_length=4000, description="what is wrong, 1 to 1000 characters")


class CorrectionRequestResponse(HolderCorrection):
    pass


class CorrectionQueueItem(HolderCorrection):
    employee_id: str
    credential_id: str
    decided_by: str | None


class CorrectionQueueResponse(BaseModel):
    corrections: list[CorrectionQueueItem]


class CorrectionDecisionRequest(BaseModel):
    decision: Literal["accept", "reject"]
    answer: str = Field(
        max_length=4000, description="what was done, for the holder: 1 to 1000 characters"
    )


class CorrectionDecisionResponse(CorrectionQueueItem):
    pass
