"""RFC 9457 problem+json responses with stable machine codes; no stack trace ever leaves.

Details shown to callers are fixed texts or come from errors whose messages are meant for
them (unknown credential, invalid state change); storage, key and configuration errors get a
generic text, since their messages name files, hosts and database URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsvc.credentials.status_lists import StatusListNotFound
from idsvc.errors import (
    IdsvcError,
    NotInitialised,
    UnknownCredential,
    UnknownEmployee,
    UnknownIssuer,
)
from idsvc.storage.db import ConcurrentUpdate, DatabaseUnavailable
from mobile_api.repeated_log import RepeatedLogLine
from mobile_api.schemas import Problem

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
    ref = {"$ref": f"#/components/schemas/{Problem.__name__}"}
    return {
        s: {"description": HTTPStatus(s).phrase, "content": {PROBLEM: {"schema": ref}}}
        for s in statuses
    }


def install(app: FastAPI) -> None:
    # Every request of an outage ends in one of these: a line per window, not per request
    # (per app, i.e. per worker process).
    database_down = RepeatedLogLine(log, "database unavailable")
    not_initialised = RepeatedLogLine(log, "service not initialised (run `idsvc init`)")

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

    @app.exception_handler(StatusListNotFound)
    async def no_list(_: Request, exc: StatusListNotFound) -> JSONResponse:
        return problem(404, "STATUS_LIST_NOT_FOUND", "no such status list")

    @app.exception_handler(IdsvcError)
    async def domain(_: Request, exc: IdsvcError) -> JSONResponse:
        if isinstance(exc, NotInitialised):
            not_initialised.error()
            return problem(503, exc.code, "the service is not initialised")
        if isinstance(exc, UnknownCredential | UnknownEmployee | UnknownIssuer):
            # Say what was not found, not echo the caller's input back.
            what = exc.code.removeprefix("UNKNOWN_").lower()
            return problem(404, exc.code, f"no such {what}")
        return problem(409, exc.code, str(exc))

    @app.exception_handler(ConcurrentUpdate)
    async def concurrent(_: Request, exc: ConcurrentUpdate) -> JSONResponse:
        # Another writer held the same people; the database rolled this request back whole.
        return problem(
            409, "CONCURRENT_UPDATE", "concurrent update", str(exc), headers={"Retry-After": "1"}
        )

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        database_down.error()
        return problem(
            503,
            "DATABASE_UNAVAILABLE",
            "the register is temporarily unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # Reached only for errors outside ErrorGuard (in the outer middleware).
        log.error("internal error: %s", type(exc).__name__)
        return problem(500, "INTERNAL", "internal error")
