"""What every desk route shares: the signed request and the operator's session as dependencies
(the desk gateway itself is ``mobile_api.deps.Desks``), and ``answer``, which runs one use case and
answers with its result (``mobile_api.routes.desk`` and ``desk_actions`` both use it; errors
take the app's table in ``mobile_api.problems``, as on every route).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from idsvc.desks.registry import DeskRequest
from idsvc.formats.desk_proof import HEADER
from mobile_api import problems

# The error answers every desk route documents.
ERRORS = problems.responses(401, 403, 404, 409, 422, 423, 503)


async def desk_request(request: Request) -> DeskRequest:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return DeskRequest(
        proof=request.headers.get(HEADER),
        method=request.method,
        path=path,
        body=await request.body(),
    )


Signed = Annotated[DeskRequest, Depends(desk_request)]
SessionToken = Annotated[str, Header(alias="Desk-Session", description="operator session token")]
MaybeSession = Annotated[
    str | None, Header(alias="Desk-Session", description="operator session token, if any")
]


def answer(call: Callable[[], Any], status: int = 200) -> Response:
    """Run one use case and answer with its result; an error goes to the app's one table
    (``mobile_api.problems.ANSWERS``), as on every route."""
    result = call()
    if result is None:
        return Response(status_code=204)
    return JSONResponse(result, status_code=status)
