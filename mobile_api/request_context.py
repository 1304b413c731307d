"""``RequestContext``: the outermost middleware. Per request it

- takes the caller's ``X-Request-ID`` when well formed (1-64 of ``A-Za-z0-9._:-``: a load
  balancer's or a bank's correlation id), else makes one (32 hex digits), and echoes it in the
  answer's ``X-Request-ID``;
- makes it the current request id (``idsvc.audit.request_scope``) while the request runs, so the
  audit events the request writes carry it (``details.request_id``);
- counts the request and its latency by route *template* and status (``mobile_api.metrics``);
- writes one access-log line (logger ``idsvc.access``) with request_id, method, route template,
  status and duration_ms. Never the raw path or query (they can hold employee ids), headers,
  bodies or the caller's address. Probes (/healthz, /readyz, /metrics) log at DEBUG only.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idsvc.audit.request_scope import current_request_id
from mobile_api.metrics import request_counter, request_timer

HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
PROBES = frozenset({"/healthz", "/readyz", "/metrics", "/health"})
UNMATCHED = "unmatched"  # no route: one label for every unknown path, whatever was asked

access_log = logging.getLogger("idsvc.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            if _WELL_FORMED.match(value):
                return bytes(value).decode("ascii")
            break
    # 128 random bits as 32 hex digits, as uuid4().hex gave (less its fixed version digit)
    # without building a UUID object: that was a fifth of this middleware's own Python work.
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        started = time.perf_counter()
        status = 500  # if the app ends without answering, the server sends a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != HEADER]
                headers.append((HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
            elapsed = time.perf_counter() - started
            route, method = route_template(scope), str(scope.get("method", "?"))
            request_counter(route, method, status).inc()
            request_timer(route, method).observe(elapsed)
            access_log.log(
                logging.DEBUG if route in PROBES else logging.INFO,
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "request_id": request_id,
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
