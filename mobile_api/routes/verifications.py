"""``POST /v1/verifications``: is this credential (JWT or printed QR text) valid right now?

Anyone may call it (the public web verifier, rate-limited per address); an API client may
authenticate and then sees more of the holder (``idsvc.verification.online.holder_for``). A
credential that fails is an answer (200, ``valid: false``), not an error. ``/v1/verify`` is the
deprecated first name of the same operation.

``GET /v1/credentials/{credential_id}/verification`` answers for a card link that lost its
QR fragment: the same verdict for the credential issued under that id, in the anonymous view
without the photo for every caller (``OnlineVerifier.verify_by_id``), counted against the
same per-address budget.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from idsvc.verification.online import OnlineVerifier
from mobile_api import problems
from mobile_api.auth import Anyone, Caller, anyone
from mobile_api.deps import Now, Verifier, now_of, require_json, services_of
from mobile_api.json_body import StrictJsonRoute
from mobile_api.schemas.verification import VerificationRequest, VerificationResponse
from mobile_api.verdicts import checked_by, verdict

router = APIRouter(tags=["verification"], route_class=StrictJsonRoute)

ERRORS = problems.responses(401, 413, 415, 422, 429, 503)


class Check(NamedTuple):
    """What a verification needs besides its body: the caller, the verifier and the clock."""

    caller: Caller
    verifier: OnlineVerifier
    now: datetime


async def verification_check(request: Request) -> Check:
    """``JsonBody``, ``Anyone``, ``Verifier`` and ``Now`` as one dependency, in that order,
    with the clock read once. Why: FastAPI solves every dependency of every request anew (a
    recursive solve, its cache key, four parameter lookups); the four of them were a fifth of
    a worker's CPU on this, the busiest route (py-spy of ``idsvc serve`` under wrk). Still a
    dependency, not a call in the handler: it must answer 415, 401 and 429 before the body
    is validated (a malformed body from a caller over its budget is a 429, and counted)."""
    await require_json(request)
    now = now_of(request)
    caller = await anyone(request, now)
    return Check(caller, services_of(request).verification.online, now)


Checking = Annotated[Check, Depends(verification_check)]


@router.post(
    "/v1/verifications",
    response_model=VerificationResponse,
    responses=ERRORS,
    operation_id="createVerification",
    summary="Verify a credential (JWT or printed-card QR text)",
    description="Always 200 with the result when the request is well formed: an invalid "
    "credential is an answer (`valid: false` and reason codes), not an error. Anonymous "
    "callers are rate-limited per address; send `Authorization: Bearer <client secret>` to be "
    "counted as your client and to see more of the holder.",
)
async def create_verification(body: VerificationRequest, check: Checking) -> Response:
    # The common case is answered on the event loop from the worker's caches (no thread hop);
    # only a check that needs the database goes to a thread.
    caller, verifier, now = check
    by = checked_by(caller)
    result = verifier.verify_cached(body.credential, by=by, now=now)
    if result is None:
        result = await run_in_threadpool(verifier.verify, body.credential, by=by, now=now)
    # A ready response: the body is built by our own code from a fixed shape, so FastAPI's
    # second validation against response_model (kept for the schema) is skipped.
    return JSONResponse(verdict(result, caller, now))


@router.get(
    "/v1/credentials/{credential_id}/verification",
    response_model=VerificationResponse,
    responses=problems.responses(401, 404, 429, 503),
    operation_id="getCredentialVerification",
    summary="Verify a credential by its id (a card link without its code)",
    description="For a card's tap link `/v/<credential id>` that reached the verifier without "
    "its `#<QR>` fragment: the verdict and reason codes a scan of that card would get, and "
    "the holder's names, ministry and position, never the photo nor ids, whoever asks (an id "
    "is no proof of holding the card). 404 `UNKNOWN_CREDENTIAL` for an id never issued. "
    "Counted against the same per-address budget as `POST /v1/verifications`, and recorded "
    "in the who-checked log as a verification.",
)
async def get_credential_verification(
    credential_id: Annotated[str, Path(description="the id in the card's link /v/<id>")],
    caller: Anyone,
    verifier: Verifier,
    now: Now,
) -> Response:
    result = await run_in_threadpool(
        verifier.verify_by_id, credential_id, by=checked_by(caller), now=now
    )
    # Every caller gets the anonymous view: an id is no proof of holding the card.
    return JSONResponse(verdict(result, dataclasses.replace(caller, scopes=frozenset()), now))


@router.post(
    "/v1/verify",
    response_model=VerificationResponse,
    responses=ERRORS,
    operation_id="verifyCredentialDeprecated",
    summary="Verify a credential (deprecated: use POST /v1/verifications)",
    deprecated=True,
)
async def verify(body: VerificationRequest, check: Checking) -> Response:
    return await create_verification(body, check)
