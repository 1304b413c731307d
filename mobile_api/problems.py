"""RFC 9457 problem+json responses with stable machine codes; no stack trace ever leaves.

``ANSWERS`` is the one error → HTTP answer table, for every route (the desk routes too): an
error takes the row of the nearest listed class among its bases. Details shown to callers are
fixed texts or come from errors whose messages are meant for them (unknown credential, invalid
state change); storage, key and configuration errors get a generic text, since their messages
name files, hosts and database URLs. An error no row fits is a bug: 500, with nothing of it in
the answer. tests/mobile_api/test_problem_table.py checks that every domain error has a row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsvc import errors
from idsvc.credentials.status_lists import StatusListNotFound
from idsvc.staff.secrets import OperatorSecretsError
from idsvc.storage.errors import ConcurrentUpdate, DatabaseUnavailable
from mobile_api.repeated_log import RepeatedLogLine
from mobile_api.schemas.problem import ProblemResponse

log = logging.getLogger("mobile_api")

PROBLEM = "application/problem+json"

_HTTP_CODES = {
    401: "UNAUTHENTICATED",
    403: "INSUFFICIENT_SCOPE",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BODY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


@dataclass(frozen=True)
class Answer:
    """How the errors of one class answer over HTTP."""

    status: int
    title: str | None = None  # a fixed title; None: the error's message (written for callers)
    detail: bool = False  # the error's message as ``detail``, under the fixed title
    code: str | None = None  # for errors outside idsvc.errors, which carry no ``code``
    retry_after: int | None = None
    # Every request of an outage ends in this row: logged once per window, not per request
    # (per app, i.e. per worker process; mobile_api.repeated_log).
    outage: str | None = None
    # A ``WWW-Authenticate`` header for a 401 whose caller holds a bearer token (RFC 6750 §3).
    challenge: str | None = None


_REFUSED = Answer(409)  # a refusal whose message says why
_DESK_REFUSED = Answer(403, "refused", detail=True)
_NOT_AUTHENTICATED = Answer(401, "not authenticated", detail=True)
_NOT_FOUND = Answer(404, "not found", detail=True)

ANSWERS: dict[type[Exception], Answer] = {
    # The root is never raised itself: every family below has its own row (tested).
    errors.IdsvcError: _REFUSED,
    errors.NotInitialised: Answer(
        503,
        "the service is not initialised",
        outage="service not initialised (run `idsvc init`)",
    ),
    # Say what was not found, not echo the caller's input back.
    errors.UnknownCredential: Answer(404, "no such credential"),
    errors.UnknownEmployee: Answer(404, "no such employee"),
    errors.UnknownIssuer: Answer(404, "no such issuer"),
    errors.HolderNotEligible: _REFUSED,
    errors.WalletOfferRefused: _REFUSED,
    # The OpenID4VCI routes answer it in the spec's form themselves (mobile_api.routes.openid4vci).
    errors.WalletRequestRefused: Answer(400, "wallet request refused", detail=True),
    errors.InvalidTransition: _REFUSED,
    errors.IssuanceNotPending: _REFUSED,
    errors.ConfigurationInvalid: _REFUSED,
    errors.CorrectionRefused: _REFUSED,
    errors.CardIssuanceFailed: _REFUSED,
    errors.CardNotIssued: _REFUSED,
    errors.PrintedQrError: _REFUSED,
    errors.PrintRefused: _REFUSED,
    errors.FaceDetectorUnavailable: _REFUSED,
    errors.ApiClientError: _REFUSED,  # mobile_api.auth answers the sign-in ones (401 + challenge)
    errors.RateLimited: _REFUSED,  # mobile_api.auth answers 429 + Retry-After
    errors.OperationRefused: _REFUSED,
    errors.CentreProblem: _REFUSED,  # raised at a desk only
    # The bank side.
    errors.BankApiError: _REFUSED,
    errors.PayrollError: Answer(422, "payroll batch invalid", detail=True),
    errors.ChangeFeedError: Answer(400, "bad change-feed request", detail=True),
    errors.HrSyncError: Answer(422, "HR records refused", detail=True),
    # Desks, operators and approvals (the desk routes).
    errors.DeskError: _DESK_REFUSED,
    errors.DeskRequestInvalid: _NOT_AUTHENTICATED,
    errors.UnknownDesk: _NOT_FOUND,
    errors.OperatorError: _DESK_REFUSED,
    errors.LoginRefused: _NOT_AUTHENTICATED,
    errors.SessionInvalid: _NOT_AUTHENTICATED,
    errors.OperatorLocked: Answer(423, "locked", detail=True),
    errors.ApprovalError: Answer(409, "refused", detail=True),
    errors.UnknownApproval: _NOT_FOUND,
    # Its message names a file on the centre: the log says which, the desk gets a fixed text.
    OperatorSecretsError: Answer(
        503,
        "operator sign-in is not configured at the centre",
        outage="operator secrets unusable: operator sign-in refused",
    ),
    # Outside idsvc.errors.
    ConcurrentUpdate: Answer(
        # Another writer held the same people; the database rolled this request back whole.
        409,
        "concurrent update",
        detail=True,
        code="CONCURRENT_UPDATE",
        retry_after=1,
    ),
    DatabaseUnavailable: Answer(
        503,
        "the register is temporarily unavailable",
        code="DATABASE_UNAVAILABLE",
        retry_after=5,
        outage="database unavailable",
    ),
    StatusListNotFound: Answer(404, "no such status list", code="STATUS_LIST_NOT_FOUND"),
    # The holder's own page (mobile_api/routes/holder.py) and the correction requests.
    errors.HolderError: _REFUSED,
    errors.HolderProofInvalid: Answer(401, "holder proof refused", detail=True),
    errors.HolderNonceInvalid: Answer(401, "holder proof refused", detail=True),
    errors.HolderCredentialNotLive: Answer(403, "phone credential not live", detail=True),
    errors.HolderSessionInvalid: Answer(
        401,
        "not authenticated",
        detail=True,
        challenge='Bearer realm="idsvc-holder", error="invalid_token"',
    ),
    errors.CorrectionRequestInvalid: Answer(422, "correction request invalid", detail=True),
    errors.TooManyOpenCorrections: Answer(429, "too many open correction requests", detail=True),
    errors.UnknownCorrectionRequest: Answer(404, "no such correction request"),
    errors.CorrectionAlreadyDecided: Answer(409, "decided already", detail=True),
}


def resolve(kind: type[BaseException]) -> type[Exception] | None:
    """The nearest class of ``ANSWERS`` among ``kind``'s bases (None: not listed)."""
    return next((base for base in kind.__mro__ if base in ANSWERS), None)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "type": f"urn:idsvc:problem:{code.lower()}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: these statuses answer with a problem+json body."""
    ref = {"$ref": f"#/components/schemas/{ProblemResponse.__name__}"}
    return {
        s: {"description": HTTPStatus(s).phrase, "content": {PROBLEM: {"schema": ref}}}
        for s in statuses
    }


def install(app: FastAPI) -> None:
    outages = {
        kind: RepeatedLogLine(log, answer.outage)
        for kind, answer in ANSWERS.items()
        if answer.outage is not None
    }

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "HTTP error"
        detail = str(exc.detail) if exc.detail and exc.detail != phrase else None
        return problem(status, _HTTP_CODES.get(status, "HTTP_ERROR"), phrase, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Only location and pydantic's message: never the rejected input, which may be a token.
        first = exc.errors()[0] if exc.errors() else {}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            # pydantic says "body.14: JSON decode error"; a caller with curl needs plainer words.
            at = f" (error at character {loc[-1]})" if loc and isinstance(loc[-1], int) else ""
            detail = f"the body is not valid JSON{at}"
        else:
            detail = f"{'.'.join(str(p) for p in loc)}: {first.get('msg', 'invalid')}"
        return problem(422, "INVALID_REQUEST", "request body invalid", detail)

    async def listed(_: Request, exc: Exception) -> JSONResponse:
        kind = resolve(type(exc))
        if kind is None:  # pragma: no cover - registered for the listed classes only
            raise exc
        answer = ANSWERS[kind]
        if kind in outages:
            outages[kind].error()
        message = str(exc)
        headers = {} if answer.retry_after is None else {"Retry-After": str(answer.retry_after)}
        if answer.challenge is not None:
            headers["WWW-Authenticate"] = answer.challenge
        return problem(
            answer.status,
            answer.code or str(getattr(exc, "code", "ERROR")),
            message if answer.title is None else answer.title,
            message if answer.detail else None,
            headers or None,
        )

    for kind in ANSWERS:
        app.add_exception_handler(kind, listed)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # Reached only for errors outside ErrorGuard (in the outer middleware).
        log.error("internal error: %s", type(exc).__name__)
        return problem(500, "INTERNAL", "internal error")
