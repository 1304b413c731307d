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

Depth: a JSON body nests at most ``MAX_DEPTH`` arrays and objects. Python's parsers recurse
once per level, so a few kilobytes of ``[`` were a ``RecursionError`` (a 500) in whichever
parser met them first; no request of this API needs more than a handful of levels. The depth is
measured before any parser runs, without recursion (``too_deep``), and a deeper body is a 422
``JSON_TOO_DEEP``. Every router of the app is built with ``StrictJsonRoute``
(tests/mobile_api/test_request_limits.py sends a deep body to every operation that takes one), so
the
rule holds for every body that FastAPI, pydantic or a route parses as JSON.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Coroutine
from email.message import Message
from itertools import accumulate
from typing import Any, Final

from fastapi import Request, Response
from fastapi.routing import APIRoute

from idsvc.formats.jws import first_duplicate
from mobile_api.problems import problem

__all__ = [
    "MAX_DEPTH",
    "DuplicateMember",
    "StrictJsonRoute",
    "TooDeep",
    "check_strict",
    "is_json",
    "loads_strict",
    "too_deep",
]

MAX_DEPTH: Final = 64


class DuplicateMember(ValueError):
    """A JSON object names the same member twice (or the text holds NaN/Infinity)."""


class TooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than ``MAX_DEPTH``."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


# Bytes that are not a quote or a bracket, deleted before the depth is measured.
_NOT_MARK: Final = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP: Final = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def too_deep(text: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when ``text`` opens more than ``limit`` arrays/objects inside one another, not
    counting brackets inside strings. Any bytes may come in (invalid JSON too); no recursion,
    and C-speed byte operations on the whole text: a 10,000-item payroll batch costs about
    half of its ``json.loads``, a 16 MiB body of brackets a few tenths of a second."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False  # the common case (a verification: one object)
    if b"\\" in text:
        # Escaped backslashes, then escaped quotes: what is left of an escape is harmless.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Quotes and brackets only; then strings without brackets (nearly all) vanish as '""'.
    marks = text.translate(None, _NOT_MARK).replace(b'""', b"")
    if b'"' in marks:  # strings holding brackets: keep what lies between strings
        marks = b"".join(marks.split(b'"')[::2])
    depth = 0
    # Chunks of ``limit`` brackets: a chunk can cross the limit only if the depth before it
    # plus its openings does, and only such a chunk is walked bracket by bracket.
    for start in range(0, len(marks), limit):
        chunk = marks[start : start + limit]
        opens = chunk.count(b"[") + chunk.count(b"{")
        if (
            depth + opens > limit
            and max(accumulate(map(_STEP.__getitem__, chunk), initial=depth)) > limit
        ):
            return True
        depth += 2 * opens - len(chunk)
    return False


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The dict is built in C and compared by size; the pairs are walked in Python only to
    # name the first duplicate (a loop per member cost a payroll batch a third of its parse).
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # The name is the caller's own field name, cut short; never the value.
        raise DuplicateMember(f"duplicate member name {first_duplicate(pairs)[:40]!r}")
    return obj


def _constant(name: str) -> Any:
    raise DuplicateMember(f"{name} is not JSON")


def _checked(pairs: list[tuple[str, Any]]) -> None:
    _object(pairs)  # built and dropped at once: only the check is wanted (``check_strict``)


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)
_CHECKER: Final = json.JSONDecoder(object_pairs_hook=_checked, parse_constant=_constant)


def loads_strict(body: bytes) -> Any:
    """Parse JSON text; raises ``TooDeep``, ``DuplicateMember`` or ``ValueError`` (syntax,
    not UTF-8)."""
    if too_deep(body):
        raise TooDeep()
    return _DECODER.decode(body.decode("utf-8"))


def check_strict(body: bytes) -> None:
    """``loads_strict`` without the value, for a body that its route parses again (FastAPI,
    pydantic's ``model_validate_json``): the same refusals, but each object is dropped as soon
    as it is checked. Kept to the end of the parse, the 10,000 objects of a payroll batch and
    their member lists were promoted through the garbage collector's generations (13 young
    collections a batch, none now) and walked again by its full collections."""
    if too_deep(body):
        raise TooDeep()
    _CHECKER.decode(body.decode("utf-8"))


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
                        check_strict(body)
                    except TooDeep as exc:
                        return problem(422, "JSON_TOO_DEEP", "request body invalid", str(exc))
                    except DuplicateMember as exc:
                        return problem(422, "INVALID_REQUEST", "request body invalid", str(exc))
                    except ValueError:
                        pass  # bad syntax: FastAPI answers it in its usual words
            return await handler(request)

        return strict_handler
