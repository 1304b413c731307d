"""The bank API (scope ``payroll``): payroll checks, the change feed, the webhook public key.

``POST /v1/payroll/checks`` takes JSON (``{"items": [...]}``) or CSV (``text/csv``, columns in
``idsvc.formats.payroll_csv``) and answers JSON, or CSV when the caller prefers it
(``Accept: text/csv``). Its body limit is ``PAYROLL_MAX_BODY`` (16 MiB: 10,000 items even when
every item carries a presented credential), not the app's global 64 KiB.
"""

from __future__ import annotations

from email.message import Message
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from idsvc.bank.change_feed import MAX_PAGE, sees_everyone
from idsvc.bank.payroll import PayrollItem
from idsvc.formats.payroll_csv import PayrollCsvError, parse_payroll_csv, write_payroll_csv
from mobile_api import problems
from mobile_api.auth import Caller, require_scope
from mobile_api.bank_deps import Bank
from mobile_api.deps import Now
from mobile_api.json_body import StrictJsonRoute
from mobile_api.limits import PATH_LIMITS
from mobile_api.metrics import count_payroll
from mobile_api.negotiation import prefers_csv
from mobile_api.schemas.payroll import (
    PayrollChangesResponse,
    PayrollCheckRequest,
    PayrollCheckResponse,
)
from mobile_api.schemas.webhooks import WebhookPublicKeyResponse
from mobile_api.verdicts import checked_by

PAYROLL_MAX_BODY = 16 * 1024 * 1024
CHECKS_PATH = "/v1/payroll/checks"
PATH_LIMITS[CHECKS_PATH] = PAYROLL_MAX_BODY

Payroll = Annotated[Caller, Depends(require_scope("payroll"))]
router = APIRouter(tags=["payroll"], route_class=StrictJsonRoute)


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A pydantic schema with its ``$defs`` references replaced by the definitions, for an
    ``openapi_extra`` request body (which FastAPI does not register as components)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


_REQUEST_SCHEMA = PayrollCheckRequest.model_json_schema()
_CSV_EXAMPLE = "employee_id,account\r\nKH-MCS-010002,001-234-5678\r\n"
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _inline(_REQUEST_SCHEMA, _REQUEST_SCHEMA.get("$defs", {}))
            },
            "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
        },
    }
}


def _json(content: Any) -> Response:
    """A JSON answer encoded by pydantic-core: the same bytes as ``JSONResponse`` (UTF-8, no
    spaces) in a quarter of the time (10,000 payroll lines: 1.9 ms, not 7.6 ms; a feed page:
    4.5 ms, not 17 ms). Returning a ``Response`` also skips FastAPI's validation and
    serialisation of the content against the route's ``response_model``, which stays the
    documented schema (tests/mobile_api/test_payroll_api.py holds the answers to it): 25 ms
    a feed page, a second pass over what this module builds from typed results."""
    return Response(to_json(content), media_type="application/json")


def _media_type(value: str) -> str:
    message = Message()
    message["content-type"] = value
    return message.get_content_type()


def _items(content_type: str, body: bytes) -> list[PayrollItem] | Response:
    media = _media_type(content_type)
    if media == "application/json":
        try:
            request = PayrollCheckRequest.model_validate_json(body)
        except ValidationError as exc:
            # Location and pydantic's message only: never the input (it may be a token).
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return problems.problem(
                422, "INVALID_REQUEST", "request body invalid", f"{where}: {first['msg']}"
            )
        # Field by field: model_dump() per item cost more than the whole register lookup.
        return [
            PayrollItem(i.employee_id, i.card_serial, i.credential, i.account, i.ref)
            for i in request.items
        ]
    if media == "text/csv":
        try:
            rows = parse_payroll_csv(body)
        except PayrollCsvError as exc:
            return problems.problem(422, "INVALID_CSV", "payroll CSV invalid", str(exc))
        return [PayrollItem(**row) for row in rows]
    return problems.problem(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Unsupported Media Type",
        "send the batch as application/json or text/csv",
    )


@router.post(
    CHECKS_PATH,
    response_model=PayrollCheckResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problems.responses(401, 403, 413, 415, 422, 429, 503),
    },
    openapi_extra=_BODY,
    operation_id="checkPayroll",
    summary="Check a payroll batch (up to 10,000 people): who is active for payroll",
    description="Each item names one person by `employee_id`, `card_serial` or a presented "
    "`credential`, optionally with the `account` about to be paid. The answer has one result "
    "per item, in order, with the line's own `employee_id` (also when unknown), `card_serial` "
    "and `ref` (your reference for the line, optional) as you sent them. Unknown people are "
    "`active_for_payroll: false` with a reason, never an error for the batch. One account paid "
    "for several employees (in this batch or in your recent batches) is flagged "
    "`ACCOUNT_SHARED` on each of them; accounts are compared in one written form (see "
    "`account`). One person on several lines of the batch (by any identifier, with one "
    "account or several) is flagged `DUPLICATE_IN_BATCH` on each line. CSV in and out: "
    "`text/csv` with columns employee_id, card_serial, credential, account, ref; `Accept: "
    "text/csv` answers item, employee_id, status, active_for_payroll, reasons, card_serial, "
    "ref (a cell you sent that starts like a formula gets a leading `'`).",
)
async def check_payroll(request: Request, caller: Payroll, bank: Bank, now: Now) -> Response:
    items = _items(request.headers.get("content-type", ""), await request.body())
    if isinstance(items, Response):
        return items
    by = checked_by(caller)
    # A refused batch (PayrollError) answers by mobile_api.problems' table: 422.
    results = await run_in_threadpool(bank.payroll.check, items, by=by, now=now)
    answers = [r.as_dict(item) for r, item in zip(results, items, strict=True)]
    count_payroll(r.status for r in results)  # mobile_api.metrics
    if prefers_csv(request.headers.get("accept", "")):
        return Response(write_payroll_csv(answers), media_type="text/csv; charset=utf-8")
    return _json({"results": answers})


_CHANGES_400 = problems.responses(400)[400] | {
    "description": "`INVALID_CURSOR`: `since` is not a cursor this feed handed out (forged, "
    "corrupted, or past the newest event); `CHANGE_FEED_ERROR`: another bad parameter"
}


@router.get(
    "/v1/payroll/changes",
    response_model=PayrollChangesResponse,
    responses={400: _CHANGES_400, **problems.responses(401, 403, 422, 429, 503)},
    operation_id="listPayrollChanges",
    summary="Status changes since a cursor, oldest first",
    description="Retirements, deaths, dismissals, suspensions, reinstatements, revoked and "
    "superseded cards, of the people your payroll checks have named (a client with the "
    "`admin` scope sees everyone); `reason` is a stable code: HR_STATUS_CHANGE, "
    "CARD_REPLACED, CARD_LOST or OPERATOR_DECISION. Start without `since` (everything) or "
    "with `since=now` (only what comes next); then pass each answer's `next_cursor`. No event "
    "is missed or repeated across pages, also while HR writes. An empty page is the end for "
    "now: poll again later with its `next_cursor`. A cursor this feed did not hand out is "
    "refused with `INVALID_CURSOR`.",
)
def list_payroll_changes(
    caller: Payroll,
    bank: Bank,
    since: Annotated[str | None, Query(max_length=64, description="cursor or `now`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> Response:
    # An admin client reads everyone's events; a bank, those of the people it checked.
    reader = None if sees_everyone(caller.scopes) else (caller.client_id or "")
    # A bad cursor or limit (ChangeFeedError) answers by mobile_api.problems' table: 400.
    page = bank.changes.page(since, limit=limit, reader=reader)
    return _json({"events": page.as_dicts(), "next_cursor": page.next_cursor})


@router.get(
    "/v1/webhooks/public-key",
    response_model=WebhookPublicKeyResponse,
    responses=problems.responses(503),
    operation_id="getWebhookPublicKey",
    summary="The Ed25519 key that verifies this service's webhook signatures (scheme v1a)",
)
def webhook_public_key(bank: Bank) -> dict[str, str]:
    return {"public_key": bank.webhooks.public_key(), "scheme": "v1a"}
