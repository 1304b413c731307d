"""Request-scoped dependencies every route module shares: the service, the clock, JSON bodies.

They are ``async def`` on purpose: they do no I/O, and FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request.

The app factory puts the service, the clock and the API's use-case objects on ``app.state``;
these functions hand them to routes as ``Annotated`` dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from idsvc.audit.who_checked import CheckLog
from idsvc.service import IdService
from idsvc.verification.card_challenges import CardChallenges
from idsvc.verification.online import OnlineVerifier
from mobile_api.json_body import is_json

Clock = Callable[[], datetime]


async def get_service(request: Request) -> IdService:
    service: IdService = request.app.state.service
    return service


async def get_verifier(request: Request) -> OnlineVerifier:
    verifier: OnlineVerifier = request.app.state.verifier
    return verifier


async def get_challenges(request: Request) -> CardChallenges:
    challenges: CardChallenges = request.app.state.challenges
    return challenges


async def get_check_log(request: Request) -> CheckLog:
    log: CheckLog = request.app.state.check_log
    return log


async def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``*+json``)."""
    if not is_json(request.headers.get("content-type", "")):
        raise HTTPException(415, "send the body as application/json")


Service = Annotated[IdService, Depends(get_service)]
Now = Annotated[datetime, Depends(get_now)]
Verifier = Annotated[OnlineVerifier, Depends(get_verifier)]
Challenges = Annotated[CardChallenges, Depends(get_challenges)]
Checks = Annotated[CheckLog, Depends(get_check_log)]
JsonBody = Depends(require_json)
