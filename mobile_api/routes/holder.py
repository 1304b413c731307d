"""The holder's own page (``idsvc.wallet.holder``) and the registrars' queue of correction
requests (``idsvc.wallet.corrections``).

The holder's routes: ``POST /v1/holder/nonce`` and ``POST /v1/holder/sessions`` are open to
anyone (rate-limited per address, as the public verifier is); the session they open is a
bearer token of its own (``holderSession`` in the OpenAPI), never an API client's secret:
``GET /v1/holder/me``, ``GET /v1/holder/who-checked``, ``POST /v1/holder/corrections``.

The registrars' queue over HTTP, for an admin client: ``GET /v1/corrections`` and
``POST /v1/corrections/{id}/decision`` (the same use cases as ``idsvc corrections``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from idsvc.errors import HolderSessionInvalid
from mobile_api import problems
from mobile_api.auth import Admin, Anyone
from mobile_api.deps import JsonBody, Now, Wallet
from mobile_api.json_body import StrictJsonRoute
from mobile_api.limits import PATH_LIMITS
from mobile_api.schemas.holder import (
    MAX_PRESENTATION,
    CorrectionCreateRequest,
    CorrectionDecisionRequest,
    CorrectionDecisionResponse,
    CorrectionQueueResponse,
    CorrectionRequestResponse,
    HolderChecksResponse,
    HolderNonceResponse,
    HolderPageResponse,
    HolderSessionRequest,
    HolderSessionResponse,
)

router = APIRouter(tags=["holder"], route_class=StrictJsonRoute)

SESSIONS_PATH = "/v1/holder/sessions"
# A presentation may carry the photo's disclosure: more than the API's default body limit.
PATH_LIMITS[SESSIONS_PATH] = MAX_PRESENTATION + 4096


class HolderBearer(SecurityBase):
    """``Authorization: Bearer <session token>`` from ``POST /v1/holder/sessions``."""

    def __init__(self) -> None:
        self.scheme_name = "holderSession"
        self.model = HTTPBearerModel(
            bearerFormat="holder session token",
            description="A session of the holder's own page (5 minutes), opened by "
            "`POST /v1/holder/sessions` with a presentation of the phone credential.",
        )

    async def __call__(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HolderSessionInvalid()
        return token.strip()


SessionToken = Annotated[str, Depends(HolderBearer())]


@router.post(
    "/v1/holder/nonce",
    response_model=HolderNonceResponse,
    responses=problems.responses(401, 429, 503),
    operation_id="createHolderNonce",
    summary="A single-use nonce for opening a holder session",
)
def create_holder_nonce(caller: Anyone, wallet: Wallet, now: Now) -> dict[str, Any]:
    nonce, expires_at = wallet.holder_nonce(now=now)
    return {"nonce": nonce, "expires_at": expires_at.isoformat()}


@router.post(
    SESSIONS_PATH,
    status_code=201,
    response_model=HolderSessionResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 403, 413, 415, 422, 429, 503),
    operation_id="createHolderSession",
    summary="Open the holder's own page with a presentation of the phone credential",
    description="401 `HOLDER_PROOF_INVALID` for a presentation that does not verify (issuer "
    "signature, disclosures, key-binding JWT: `aud` must be `{public_url}/v1/holder`), 401 "
    "`HOLDER_NONCE_INVALID` for a nonce not handed out here, used already or expired (a "
    "replay), 403 `HOLDER_CREDENTIAL_NOT_LIVE` for a credential revoked, suspended, "
    "superseded or expired, or not a phone credential of this register.",
)
def create_holder_session(
    body: HolderSessionRequest, caller: Anyone, wallet: Wallet, now: Now
) -> dict[str, Any]:
    opened = wallet.open_holder_session(body.presentation, now=now)
    return {"token": opened.token, "expires_at": opened.expires_at.isoformat()}


_SESSION_ERRORS = problems.responses(401, 403, 503)


@router.get(
    "/v1/holder/me",
    response_model=HolderPageResponse,
    responses=_SESSION_ERRORS,
    operation_id="getHolderPage",
    summary="The holder's record as the register holds it, credentials, correction requests",
)
def get_holder_page(token: SessionToken, wallet: Wallet, now: Now) -> dict[str, Any]:
    return wallet.holder_page(token, now=now)


@router.get(
    "/v1/holder/who-checked",
    response_model=HolderChecksResponse,
    responses=_SESSION_ERRORS,
    operation_id="getHolderChecks",
    summary="Who checked the holder, newest first",
)
def get_holder_checks(
    token: SessionToken,
    wallet: Wallet,
    now: Now,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"checks": wallet.holder_checks(token, now=now, limit=limit)}


@router.post(
    "/v1/holder/corrections",
    status_code=201,
    response_model=CorrectionRequestResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 403, 415, 422, 429, 503),
    operation_id="createCorrectionRequest",
    summary="Report an error in the holder's record to HR",
    description="It changes nothing in the record: the request joins the registrars' queue, "
    "and its answer shows on `GET /v1/holder/me`. 422 `CORRECTION_REQUEST_INVALID` for a "
    "field not of the record or a text empty or longer than 1000 characters; 429 "
    "`TOO_MANY_OPEN_CORRECTIONS` when 5 of the person's requests are open.",
)
def create_correction_request(
    body: CorrectionCreateRequest, token: SessionToken, wallet: Wallet, now: Now
) -> dict[str, Any]:
    made = wallet.request_correction(token, field=body.field, text=body.text, now=now)
    return made.for_holder()


@router.get(
    "/v1/corrections",
    response_model=CorrectionQueueResponse,
    responses=problems.responses(401, 403, 422, 429, 503),
    operation_id="listCorrectionRequests",
    summary="The registrars' queue of correction requests, oldest first",
    tags=["administration"],
)
def list_correction_requests(
    caller: Admin,
    wallet: Wallet,
    status: Annotated[str | None, Query(description="open, accepted or rejected")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    queue = wallet.correction_queue(status=status, limit=limit)
    return {"corrections": [c.as_dict() for c in queue]}


@router.post(
    "/v1/corrections/{request_id}/decision",
    response_model=CorrectionDecisionResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 403, 404, 409, 415, 422, 429, 503),
    operation_id="decideCorrectionRequest",
    summary="Accept or reject a correction request, with the answer the holder reads",
    description="Decided once: 409 `CORRECTION_ALREADY_DECIDED` afterwards. Accepting records "
    "the decision only: correct the record through HR and say in the answer what was done.",
    tags=["administration"],
)
def decide_correction_request(
    request_id: Annotated[str, Path(max_length=64)],
    body: CorrectionDecisionRequest,
    caller: Admin,
    wallet: Wallet,
    now: Now,
) -> dict[str, Any]:
    decided = wallet.decide_correction(
        request_id,
        accept=body.decision == "accept",
        answer=body.answer,
        actor=f"client:{caller.client_name}",
        now=now,
    )
    return decided.as_dict()
