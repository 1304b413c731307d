"""The bank's payroll API: ``POST /v1/payroll/checks`` and the change feed
``GET /v1/payroll/changes``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idsvc.bank.payroll import MAX_IDENTIFIER, MAX_ITEMS
from idsvc.bank.payroll_reasons import MEANING

ACCOUNT_RULE = (
    "Compared in one written form: Unicode NFKC, every decimal digit of any script as its "
    "ASCII digit (full-width, Lao, Khmer, Thai, Arabic-Indic…), letters in capitals, every other "
    "character (spaces of any kind, zero-width and other format characters, `-./_`) dropped; "
    "so `001/234 5678` and `００１２３４５６７８` are one account. At least one digit or letter."
)


class PayrollItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str | None = Field(default=None, min_length=1, max_length=MAX_IDENTIFIER)
    card_serial: str | None = Field(default=None, min_length=1, max_length=MAX_IDENTIFIER)
    credential: str | None = Field(
        default=None, min_length=1, max_length=16384, description="JWT or printed-card QR text"
    )
    account: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the account about to be paid; kept only as a keyed hash. " + ACCOUNT_RULE,
    )
    ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDENTIFIER,
        description="your own reference for this line (e.g. your payment line id): "
        "returned as given on its result",
    )

    @model_validator(mode="after")
    def _one_identifier(self) -> PayrollItem:
        given = [v for v in (self.employee_id, self.card_serial, self.credential) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of employee_id, card_serial, credential")
        return self


class PayrollCheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"employee_id": "KH-MCS-010002", "account": "001-234-5678"},
                        {"card_serial": "7K3M9Q2XJ4T8", "ref": "PAY-0002"},
                    ]
                }
            ]
        },
    )

    items: list[PayrollItem] = Field(min_length=1, max_length=MAX_ITEMS)


class PayrollResult(BaseModel):
    employee_id: str | None = Field(
        description="the person's employee id; on an `employee_id` line, the id as you sent "
        "it, also when the register does not know it; null when a card or credential line "
        "names nobody known"
    )
    card_serial: str | None = Field(
        default=None, description="on a `card_serial` line: the serial as you sent it"
    )
    ref: str | None = Field(default=None, description="the line's `ref`, when you sent one")
    status: str = Field(description="HR status (active, suspended, retired…) or unknown")
    active_for_payroll: bool
    reasons: list[str] = Field(
        description="Codes, each with what to do: "
        + "; ".join(f"{code}: {meaning}" for code, meaning in MEANING.items())
        + "; or a verification reason for a credential item"
    )


class PayrollCheckResponse(BaseModel):
    results: list[PayrollResult]


class ChangeEvent(BaseModel):
    id: str = Field(description="unique event id; webhooks send it as webhook-id msg_<id>")
    type: str = Field(description="employee.retired, credential.revoked, …")
    employee_id: str
    status: str | None
    effective_date: str | None = Field(description="the date HR gives for the change")
    credential_id: str | None
    card_serial: str | None
    reason: str | None = Field(
        description="why: HR_STATUS_CHANGE, CARD_REPLACED, CARD_LOST or OPERATOR_DECISION"
    )
    recorded_at: str


class PayrollChangesResponse(BaseModel):
    events: list[ChangeEvent]
    next_cursor: str = Field(description="pass as `since` for the next page (opaque)")
