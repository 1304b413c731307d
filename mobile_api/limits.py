"""Refuse oversized request bodies before they are read into memory (pure ASGI middleware).

A declared ``Content-Length`` over the limit is refused before the body is read. A chunked
body is counted as it arrives: the read that crosses the limit raises ``HTTPException(413)``,
which FastAPI passes through its body parsing to the problem handler.

A body must also arrive in time: each read waits at most ``BODY_TIMEOUT`` seconds for the next
part, else ``HTTPException(408)``, so a client trickling a body cannot hold a worker (the
server's own header timeout and limits are in ``idsvc/cli/server.py``).
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api.problems import problem

# Routes whose documented bodies are larger than the global limit (bulk endpoints: a payroll
# batch of 10,000 items, an HR upsert of 10,000 records), by exact path. A route module registers
# its own entry at import time, next to the route it concerns.
PATH_LIMITS: dict[str, int] = {}

BODY_TIMEOUT = 10.0


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self, limit: int | None = None) -> str:
        return f"limit {self.max_bytes if limit is None else limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = PATH_LIMITS.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                response = problem(
                    413, "BODY_TOO_LARGE", "Content Too Large", self._detail(max_bytes)
                )
                await response(scope, receive, send)
                return
        seen = 0
        complete = False

        async def limited() -> Message:
            nonlocal seen, complete
            if complete:  # after the body, receive() waits for a disconnect: no deadline
                return await receive()
            try:
                # asyncio.timeout, not wait_for: no task per read (a few % of a verification).
                async with asyncio.timeout(BODY_TIMEOUT):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408, f"the body did not arrive within {BODY_TIMEOUT:g} s"
                ) from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise HTTPException(413, self._detail(max_bytes))
            return message

        await self.app(scope, limited, send)
