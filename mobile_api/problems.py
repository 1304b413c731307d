"""RFC 9457 problem+json responses with stable machine codes; no stack trace ever leaves."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsvc.errors import IdsvcError, NotInitialised, UnknownCredential, UnknownEmployee
from idsvc.status_store import StatusListNotFound
from idsvc.storage.db import DatabaseUnavailable

log = logging.getLogger("mobile_api")

PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str | None = None) -> JSONResponse:
    body = {
        "type": f"urn:idsvc:problem:{code.lower()}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(
            422,
            "INVALID_REQUEST",
            "request body invalid",
            f"{where}: {first.get('msg', 'invalid')}",
        )

    @app.exception_handler(StatusListNotFound)
    async def no_list(_: Request, exc: StatusListNotFound) -> JSONResponse:
        return problem(404, "STATUS_LIST_NOT_FOUND", "no such status list")

    @app.exception_handler(IdsvcError)
    async def domain(_: Request, exc: IdsvcError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownCredential | UnknownEmployee) else 409
        if isinstance(exc, NotInitialised):
            status = 503
        return problem(status, exc.code, str(exc))

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.error("database unavailable")
        return problem(503, "DATABASE_UNAVAILABLE", "the register is temporarily unavailable")

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__)
        return problem(500, "INTERNAL", "internal error")
