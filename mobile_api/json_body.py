"""Strict JSON request bodies: a member name twice in one object is refused, never "last wins".

Why: the JWS layer already refuses duplicate member names, because two readers that pick
different duplicates see two different requests (one logs ``credential`` A, the other checks
``credential`` B). Bodies get the same rule, plus RFC 8259's: ``NaN`` and ``Infinity`` are not
JSON.

How routes use it: build the router with ``APIRouter(route_class=StrictJsonRoute)`` (or pass
``route_class=StrictJsonRoute`` to a single ``add_api_route``). Every route of that router that
receives a JSON body (``application/json`` or ``*+json``) then answers a duplicate name with a
422 ``INVALID_REQUEST`` problem naming the member, before any dependency or handler runs;
bodies that are not JSON, and JSON syntax errors, are left to FastAPI's own handling.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any, Final

from fastapi import Request, Response
from fastapi.routing import APIRoute

from mobile_api.problems import problem

__all__ = ["DuplicateMember", "StrictJsonRoute", "is_json", "loads_strict"]


class DuplicateMember(ValueError):
    """A JSON object names the same member twice (or the text holds NaN/Infinity)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            # The name is the caller's own field name, cut short; never the value.
            raise DuplicateMember(f"duplicate member name {name[:40]!r}")
        obj[name] = value
    return obj


def _constant(name: str) -> Any:
    raise DuplicateMember(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


def loads_strict(body: bytes) -> Any:
    """Parse JSON text; raises ``DuplicateMember`` or ``ValueError`` (syntax, not UTF-8)."""
    return _DECODER.decode(body.decode("utf-8"))


@functools.lru_cache(maxsize=256)
def is_json(content_type: str | None) -> bool:
    # Cached: parsing a header with email.message costs more than the JSON body of a
    # verification, and callers send the same few values.
    message = Message()
    message["content-type"] = content_type or ""
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if request.method not in ("GET", "HEAD") and is_json(
                request.headers.get("content-type")
            ):
                body = await request.body()  # cached: FastAPI's own parsing reads it again
                if body:
                    try:
                        loads_strict(body)
                    except DuplicateMember as exc:
                        return problem(422, "INVALID_REQUEST", "request body invalid", str(exc))
                    except ValueError:
                        pass  # bad syntax: FastAPI answers it in its usual words
            return await handler(request)

        return strict_handler
