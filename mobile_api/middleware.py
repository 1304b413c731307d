"""Pure ASGI middleware: response headers every answer carries, and the last-resort error guard."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api.problems import problem

log = logging.getLogger("mobile_api")


# Scripts, styles and images only from the service itself (the /docs page's vendored Swagger
# UI; its CSS carries small data: images), no framing, no plugins, no <base> rewriting. JSON
# answers need none of it, but a browser that renders one anyway is then still locked down.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

# Added to every answer unless the route set the header itself (a page that needs another
# policy sets its own Content-Security-Policy).
_DEFAULT_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_DEFAULT_NAMES = frozenset(name for name, _ in _DEFAULT_HEADERS)


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff``, a strict Content-Security-Policy,
    ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` everywhere;
    ``Cache-Control: no-store`` unless the route chose a cache policy (keys and status lists
    are public and cacheable; verification results, errors and health are not). No ``server``
    header is sent: ``idsvc serve`` turns uvicorn's banner off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if names.isdisjoint(_DEFAULT_NAMES):  # the common case: no walk of the five
                    headers.extend(_DEFAULT_HEADERS)
                else:
                    headers.extend((n, v) for n, v in _DEFAULT_HEADERS if n not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find the bug, holds no request data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


class ErrorGuard:
    """Turn any unhandled exception into a generic 500 problem.

    The log names the exception type, the route template and where it was raised, never the
    exception's message or a traceback: messages can carry tokens, names or SQL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "?")
            log.error(
                "internal error: %s in %s %s at %s",
                type(exc).__name__,
                scope.get("method", "?"),
                route,
                _where(exc),
            )
            if started:  # too late for a problem body; the server closes the connection
                return
            await problem(500, "INTERNAL", "internal error")(scope, receive, send)
